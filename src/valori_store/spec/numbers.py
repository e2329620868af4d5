"""The numeric spec, part 1: Q16.16 conversion and cosine normalisation (reference code).

Written for clarity, not speed: the numba kernels in :mod:`valori_store.kernels` must give
bit-identical integers, and the tests prove it. Scores and the metric registry are in
:mod:`.metrics`, the total order in :mod:`.order`.

Numbers (the same in spec versions 1 and 2)
------------------------
* **Q16.16**: a real ``v`` is stored as the int32 ``q = rint(v * 2**16)``; the range is
  ``[-32768, 32768 - 2**-16]``. Input is converted to float64 first (exact for Python
  floats and ints up to 2**53, numpy float16/32/64 and ints), NaN and +-inf are rejected,
  the multiplication by 65536 is exact, ``rint`` rounds half to even (IEEE exact on every
  platform), and values outside int32 are rejected (never saturated). Floats wider than
  float64 (``np.longdouble``) are not rounded to float64 first: ``rint(v * 2**16)`` is
  taken in their own precision (exact product, half to even), so they round once too.
* **Cosine normalisation** (at ingest and for queries), a pure integer function of ``q``:

  1. ``m = max|q_i|``; ``m == 0`` is rejected (zero vector).
  2. Rescale to 23 significant bits: with ``b = bit_length(m)``, if ``b <= 23`` then
     ``r = q << (23 - b)`` (exact), else ``r = sign(q) * ((|q| + 2**(s-1)) >> s)`` with
     ``s = b - 23`` (round half away from zero). So ``|r_i| <= 2**23``.
  3. ``S = sum r_i**2`` (exact; ``< 2**62`` because dim ``<= 65536``), ``R = isqrt(S)``.
  4. ``n_i = sign(r_i) * ((|r_i| * 2**17 + R) // (2 * R))``: ``|r_i| * 2**16 / R`` rounded
     half away from zero. Then ``|n_i| <= 2**16``; the vector has norm ~``2**16`` (1.0).

Scores, the reported float score and the int64 overflow bounds of each metric are in
:mod:`.metrics`; the total order of results is in :mod:`.order`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from valori_store.errors import DimensionError, InputError, RangeError, VectorError, ZeroVectorError

#: Version of the spec (these numbers plus the state tree of :mod:`.state_tree`), stored in
#: every snapshot and log header. Version 1 (valori-store 0.1) had the same numbers and
#: hashed the whole snapshot as the state hash; stores and snapshots of version 1 still open.
SPEC_VERSION = 2
#: Spec versions this code reads.
SPEC_VERSIONS = (1, 2)
#: Fixed-point scale: 2**16.
SCALE = 1 << 16
#: Inclusive int32 bounds of a Q16.16 value.
Q_MIN = -(1 << 31)
Q_MAX = (1 << 31) - 1
#: Largest supported dimension (keeps cosine sums of squares below 2**62).
MAX_DIM = 1 << 16
#: Longest record id, in UTF-8 bytes (ids are non-empty).
MAX_ID_BYTES = 4096
#: Bits kept by the cosine rescaling step.
NORM_BITS = 23
def check_dim(dim: Any) -> int:
    """Return ``dim`` as int if ``1 <= dim <= MAX_DIM``, else raise InputError."""
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise InputError(f"dim must be an int, got {type(dim).__name__}")
    if not 1 <= int(dim) <= MAX_DIM:
        raise InputError(f"dim must be between 1 and {MAX_DIM}, got {dim}")
    return int(dim)


def to_float64_matrix(vectors: Any, dim: int) -> np.ndarray:
    """Check array-like input: a numeric (n, dim) matrix whose float64 conversion is exact.

    Accepts a single vector (1-D) or a batch (2-D) of floats or ints (ints are range-checked
    first, so widening them to float64 is exact). Returns the array in its own dtype.
    Raises VectorError for non-numeric input and DimensionError for a wrong length.
    """
    if isinstance(vectors, np.ndarray):
        arr = vectors
    else:
        try:
            arr = np.asarray(vectors)
        except (ValueError, TypeError) as exc:  # ragged lists and similar
            raise VectorError(f"vectors must be a numeric array of shape (n, {dim}): {exc}") from None
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)
    ):
        if arr.dtype == object or arr.dtype.kind in "USV":
            raise VectorError(
                f"vectors must be numbers (float or int); got dtype {arr.dtype} "
                f"(ragged rows or non-numeric values?)"
            )
        raise VectorError(f"vectors must be float or int numbers, got dtype {arr.dtype}")
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2:
        raise VectorError(f"vectors must be 1-D or 2-D, got shape {arr.shape}")
    if arr.shape[1] != dim:
        raise DimensionError(f"vectors have dimension {arr.shape[1]}, the store has dimension {dim}")
    if np.issubdtype(arr.dtype, np.integer):
        # ints beyond 2**53 are out of Q16.16 range anyway; check before any conversion.
        if arr.size and (int(arr.max()) > 32768 or int(arr.min()) < -32768):
            bad = np.argwhere((arr > 32768) | (arr < -32768))[0]
            raise RangeError(
                f"value {arr[tuple(bad)]} at index {tuple(int(i) for i in bad)} is outside "
                f"the Q16.16 range [-32768, 32768)"
            )
    elif np.finfo(arr.dtype).nmant > 52:  # long double: wider than float64 on x86-64 and aarch64
        arr = _exact_wide_floats(arr)
    return arr


def _exact_wide_floats(x: np.ndarray) -> np.ndarray:
    """float64 values that quantize exactly like the wider floats ``x`` (np.longdouble).

    Rounding ``x`` to float64 first and then ``x * 2**16`` to an integer would round twice
    (a value just above a half-way point can land on it, then go to even). So the spec's
    rounding is applied in ``x``'s own precision: ``q = rint(x * 2**16)`` (the product is
    exact, rint rounds half to even), after the NaN/inf and range checks; ``q / 2**16`` is
    then exact in float64 (``|q| < 2**31``) and quantizes back to ``q``.
    """
    return _scaled(x).astype(np.float64) / float(SCALE)


def _scaled(x: np.ndarray) -> np.ndarray:
    """``rint(x * 2**16)`` in ``x``'s own float precision (exact product, half to even);
    VectorError for NaN/inf, RangeError outside int32, naming the first offending index."""
    finite = np.isfinite(x)
    if not finite.all():
        bad = np.argwhere(~finite)[0]
        raise VectorError(
            f"value {x[tuple(bad)]} at index {tuple(int(i) for i in bad)} is not finite; "
            f"NaN and infinity cannot be stored"
        )
    scaled = np.rint(x * x.dtype.type(SCALE))
    out_of_range = (scaled < Q_MIN) | (scaled > Q_MAX)
    if out_of_range.any():
        bad = np.argwhere(out_of_range)[0]
        raise RangeError(
            f"value {x[tuple(bad)]} at index {tuple(int(i) for i in bad)} is outside the "
            f"Q16.16 range [-32768, 32768 - 2**-16]; scale your vectors down"
        )
    return scaled


def quantize(vectors: Any, dim: int) -> np.ndarray:
    """Convert float input to Q16.16 int32, shape (n, dim).

    ``q = rint(float64(v) * 65536)``, round half to even. NaN/inf raise VectorError;
    values outside int32 raise RangeError naming the first offending (row, column).
    """
    return _scaled(to_float64_matrix(vectors, dim).astype(np.float64)).astype(np.int32)


def _sign(v: int) -> int:
    return -1 if v < 0 else 1


def normalize_row(q: Sequence[int]) -> list[int]:
    """Integer cosine normalisation of one Q16.16 vector (see module docstring)."""
    qs = [int(v) for v in q]
    m = max((abs(v) for v in qs), default=0)
    if m == 0:
        raise ZeroVectorError("a zero vector has no direction and cannot be used with the cosine metric")
    b = m.bit_length()
    if b <= NORM_BITS:
        r = [v << (NORM_BITS - b) for v in qs]
    else:
        s = b - NORM_BITS
        r = [_sign(v) * ((abs(v) + (1 << (s - 1))) >> s) for v in qs]
    total = sum(v * v for v in r)
    root = math.isqrt(total)
    return [_sign(v) * ((abs(v) * (SCALE << 1) + root) // (2 * root)) for v in r]


def normalize(q: np.ndarray) -> np.ndarray:
    """Row-wise :func:`normalize_row` of an int32 (n, dim) matrix; returns int32."""
    return np.array([normalize_row(row) for row in np.asarray(q).tolist()], dtype=np.int32).reshape(
        np.asarray(q).shape
    )
