"""Float input to stored int32 rows through the conversion kernel, with the spec's errors.

The kernel only flags a bad row; on any flag :func:`raise_for` runs the spec
(:mod:`valori_store.spec`) on the input to raise the precise, index-naming error. Results
equal the spec bit for bit: ``stored = normalize(quantize(x))`` under cosine, else
``quantize(x)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from valori_store import spec
from valori_store.errors import ZeroVectorError
from valori_store.kernels import (
    BAD_VALUE,
    SMALL_BATCH,
    ZERO_VECTOR,
    convert_rows,
    convert_rows_serial,
    normalize_rows_serial,
)

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_NO_ROWS = np.zeros((0, 0), dtype=np.int32)


def float_rows(vectors: Any, dim: int) -> np.ndarray:
    """Checked (n, dim) C-contiguous float32/float64 rows whose values equal the input exactly."""
    x = spec.to_float64_matrix(vectors, dim)
    if x.dtype not in (np.float64, np.float32, np.float16):
        x = x.astype(np.float64)  # ints, already range-checked: exact
    elif x.dtype == np.float16:
        x = x.astype(np.float32)  # exact; numba has no float16 arithmetic
    return np.ascontiguousarray(x)


def raise_for(status: np.ndarray, x: np.ndarray) -> None:
    """Raise the spec's error for the first bad row of a kernel run (nothing if all are OK).

    Value errors come first, as the spec checks values before directions.
    """
    if not status.any():
        return
    if (status == BAD_VALUE).any():
        spec.quantize(x, x.shape[1])  # raises the error naming the offending index
        raise AssertionError("conversion kernel and spec disagree")  # pragma: no cover
    raise zero_vector(int(np.flatnonzero(status == ZERO_VECTOR)[0]))


def _kernel(n: int) -> Any:
    return convert_rows_serial if n < SMALL_BATCH else convert_rows


def stored_rows_into(x: np.ndarray, metric: spec.Metric, out: np.ndarray, rowmax: np.ndarray) -> None:
    """Write the stored form of float rows ``x`` (from :func:`float_rows`) into ``out`` and
    each row's max |value| into ``rowmax``; on error raise, leaving both unspecified."""
    if len(x):
        no_raw = np.zeros((0, x.shape[1]), dtype=np.int32)
        raise_for(_kernel(len(x))(x, metric.normalised, no_raw, out, rowmax), x)


def stored_rows(x: np.ndarray, metric: spec.Metric) -> tuple[np.ndarray, np.ndarray]:
    """(stored int32 rows, int64 row maxima) of float rows ``x`` in fresh arrays."""
    out = np.empty(x.shape, dtype=np.int32)
    rowmax = np.empty(len(x), dtype=np.int64)
    stored_rows_into(x, metric, out, rowmax)
    return out, rowmax


def query_forms(vectors: Any, dim: int, metric: spec.Metric) -> tuple[np.ndarray, np.ndarray]:
    """(Q16.16 rows as given, C-contiguous rows in stored form) of query vectors, with the
    spec's errors."""
    if (  # the common query: a C-ordered float array of the right width (no checks needed)
        isinstance(vectors, np.ndarray) and vectors.dtype in _FLOATS and vectors.ndim in (1, 2)
        and vectors.shape[-1] == dim and vectors.flags.c_contiguous
    ):
        x = vectors.reshape(-1, dim)
    else:
        x = float_rows(vectors, dim)
    raw = np.empty(x.shape, dtype=np.int32)
    stored = np.empty(x.shape, dtype=np.int32)
    rowmax = np.empty(len(x), dtype=np.int64)
    if len(x):
        raise_for(_kernel(len(x))(x, metric.normalised, raw, stored, rowmax), x)
    return raw, stored


def stored_from_raw(raw: np.ndarray, metric: spec.Metric) -> np.ndarray:
    """The stored form of Q16.16 rows (as receipts record queries): normalised under cosine."""
    rows = np.ascontiguousarray(raw, dtype=np.int32).reshape(-1, raw.shape[-1])
    if not metric.normalised or not len(rows):
        return rows
    normed, zero = normalize_rows_serial(rows)
    if zero.any():
        raise zero_vector(int(np.flatnonzero(zero)[0]))
    return normed


def zero_vector(index: int) -> ZeroVectorError:
    """The error for a zero vector under cosine."""
    return ZeroVectorError(
        f"vector #{index} is zero (after rounding to Q16.16); the cosine metric needs a direction"
    )
