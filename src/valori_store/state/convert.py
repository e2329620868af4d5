"""Float input to stored int32 rows through the kernels, with the spec's exact errors.

The kernels only flag a bad row; on any flag the spec (:mod:`valori_store.spec`) is run
on the input to raise the precise, index-naming error. Results equal the spec bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from valori_store import spec
from valori_store.errors import ZeroVectorError
from valori_store.kernels import SMALL_BATCH, normalize_rows, normalize_rows_serial, quantize_rows, quantize_rows_serial
from valori_store.kernels.convert import BAD_VALUE, ZERO_VECTOR, ingest_rows, ingest_rows_serial, query_rows

_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def float_rows(vectors: Any, dim: int) -> np.ndarray:
    """Checked (n, dim) C-contiguous float32/float64 rows whose values equal the input exactly."""
    x = spec.to_float64_matrix(vectors, dim)
    if x.dtype not in (np.float64, np.float32, np.float16):
        x = x.astype(np.float64)  # ints, already range-checked: exact
    elif x.dtype == np.float16:
        x = x.astype(np.float32)  # exact; numba has no float16 arithmetic
    return np.ascontiguousarray(x)


def quantize(vectors: Any, dim: int) -> np.ndarray:
    """:func:`spec.quantize` through the kernel (Q16.16 rows, not normalised)."""
    x = float_rows(vectors, dim)
    rows, status = (quantize_rows_serial if len(x) < SMALL_BATCH else quantize_rows)(x)
    if status.any():
        spec.quantize(x, dim)  # raises the error naming the offending index
        raise AssertionError("quantize kernel and spec disagree")  # pragma: no cover
    return rows


def normalise(rows: np.ndarray, metric: str) -> np.ndarray:
    """Q16.16 rows in stored form: :func:`spec.normalize` under cosine, else unchanged."""
    if metric == "cosine" and len(rows):
        normed, zero = (normalize_rows_serial if len(rows) < SMALL_BATCH else normalize_rows)(rows)
        if zero.any():
            raise _zero_vector(int(np.flatnonzero(zero)[0]))
        return normed
    return rows


def stored_rows_into(x: np.ndarray, metric: str, out: np.ndarray, rowmax: np.ndarray) -> None:
    """Write the stored form of float rows ``x`` (from :func:`float_rows`) into ``out``
    and each row's max |value| into ``rowmax``; on error raise, leaving both unspecified."""
    if not len(x):
        return
    kernel = ingest_rows_serial if len(x) < SMALL_BATCH else ingest_rows
    status = kernel(x, metric == "cosine", out, rowmax)
    if status.any():
        if (status == BAD_VALUE).any():  # value errors first, as the spec checks them first
            spec.quantize(x, x.shape[1])
            raise AssertionError("ingest kernel and spec disagree")  # pragma: no cover
        raise _zero_vector(int(np.flatnonzero(status == ZERO_VECTOR)[0]))


def query_forms(vectors: Any, dim: int, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(Q16.16 rows as given, C-contiguous rows in stored form) of query vectors; equals
    ``(quantize(v), normalise(quantize(v), metric))``, with the same errors."""
    if (  # the common query: a C-ordered float array of the right width (no checks needed)
        isinstance(vectors, np.ndarray) and vectors.dtype in _FLOATS and vectors.ndim in (1, 2)
        and vectors.shape[-1] == dim and vectors.flags.c_contiguous
    ):
        x = vectors.reshape(-1, dim)
    else:
        x = float_rows(vectors, dim)
    if len(x) >= SMALL_BATCH:
        raw = quantize(x, dim)
        return raw, np.ascontiguousarray(normalise(raw, metric))
    raw, stored, status = query_rows(x, metric == "cosine")
    if status.any():
        if (status == BAD_VALUE).any():
            spec.quantize(x, dim)
            raise AssertionError("query kernel and spec disagree")  # pragma: no cover
        raise _zero_vector(int(np.flatnonzero(status == ZERO_VECTOR)[0]))
    return raw, stored


def stored_rows(x: np.ndarray, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(stored int32 rows, int64 row maxima) of float rows ``x`` in fresh arrays."""
    out = np.empty(x.shape, dtype=np.int32)
    rowmax = np.empty(len(x), dtype=np.int64)
    stored_rows_into(x, metric, out, rowmax)
    return out, rowmax


def _zero_vector(index: int) -> ZeroVectorError:
    return ZeroVectorError(
        f"vector #{index} is zero (after rounding to Q16.16); the cosine metric needs a direction"
    )
