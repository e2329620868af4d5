"""The conversion kernel: Q16.16 conversion and cosine normalisation in one pass.

:func:`convert_rows` equals :func:`valori_store.spec.quantize` followed (under cosine) by
:func:`valori_store.spec.normalize`, exactly, written straight into caller-provided rows:
upserts pass the free rows at the end of the store's matrix (no scratch matrices, no second
copy); queries also ask for the Q16.16 rows as given, which receipts record.

The conversion loop has no early exit (so it vectorises): a value that is NaN, infinite
or outside int32 after rounding marks its row bad; that row's output is unspecified and
the caller re-runs the spec to raise the precise error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.normalize import normalize_row_into
from valori_store.kernels.options import PARALLEL, SERIAL, serial_twin
from valori_store.spec import Q_MAX, Q_MIN, SCALE

#: Per-row status codes.
OK, BAD_VALUE, ZERO_VECTOR = 0, 1, 2
#: Rows per parallel work item (one scratch row each); results never depend on it.
CHUNK = 64


@njit(**SERIAL)
def quantize_row_into(x: np.ndarray, out: np.ndarray) -> int:
    """Q16.16 of one float row into int32 ``out``; returns how many values are NaN, infinite
    or outside int32 after rounding (``out`` is then unspecified). No early exit, so the
    loop vectorises."""
    lo = np.float64(Q_MIN)
    hi = np.float64(Q_MAX)
    scale = np.float64(SCALE)
    bad = 0
    for j in range(x.shape[0]):
        r = np.rint(np.float64(x[j]) * scale)  # exact product; NaN/inf stay NaN/inf
        inside = (r >= lo) & (r <= hi)  # False for NaN and +-inf too
        bad += np.int64(not inside)
        out[j] = np.int32(r) if inside else np.int32(0)
    return bad


@njit(**PARALLEL)
def convert_rows(x: np.ndarray, cosine: bool, raw: np.ndarray, stored: np.ndarray, rowmax: np.ndarray) -> np.ndarray:
    """Fill ``stored`` (n, d) int32 with the stored form of float rows ``x`` (Q16.16, then
    integer-normalised under cosine), ``rowmax`` (n,) int64 with each stored row's max
    |value|, and, unless ``raw`` has no rows, ``raw`` (n, d) int32 with the Q16.16 rows as
    given (before normalisation). Returns the uint8 status of each row (OK, BAD_VALUE,
    ZERO_VECTOR); rows whose status is not OK have unspecified contents.

    ``x`` must not overlap the outputs.
    """
    n, d = x.shape
    keep_raw = raw.shape[0] > 0
    status = np.zeros(n, dtype=np.uint8)
    for c in prange((n + CHUNK - 1) // CHUNK):
        scratch = np.empty(d, dtype=np.int32)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            q = raw[i] if keep_raw else scratch
            if quantize_row_into(x[i], q):
                status[i] = BAD_VALUE
                continue
            if cosine:
                m = normalize_row_into(q, stored[i])
                if m < 0:
                    status[i] = ZERO_VECTOR
                    continue
            else:
                m = np.int64(0)
                for j in range(d):
                    v = np.int64(q[j])
                    stored[i, j] = q[j]
                    a = v if v >= 0 else -v
                    if a > m:
                        m = a
            rowmax[i] = m
    return status


#: Serial twin for a handful of rows (one query, a small batch); ``prange`` runs as ``range``.
convert_rows_serial = serial_twin(convert_rows)


@njit(**PARALLEL)
def rows_maxabs(rows: np.ndarray) -> np.ndarray:
    """max |value| of each int32 row, as int64 (|-2**31| does not fit int32)."""
    n, d = rows.shape
    out = np.zeros(n, dtype=np.int64)
    for c in prange((n + CHUNK - 1) // CHUNK):
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            m = np.int64(0)
            for j in range(d):
                v = np.int64(rows[i, j])
                a = v if v >= 0 else -v
                if a > m:
                    m = a
            out[i] = m
    return out


#: Serial twin, for threads that already run beside others (image loading).
rows_maxabs_serial = serial_twin(rows_maxabs)
