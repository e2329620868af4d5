"""Fused Q16.16 conversion kernel; matches :func:`valori_store.spec.quantize` exactly.

One pass per row: widen to float64 (exact), reject NaN/inf, multiply by 2**16 (exact),
``rint`` (round half to even, IEEE), reject values outside int32. Rows with a problem
are flagged; the caller re-runs the spec on that row to raise the precise error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, serial_twin
from valori_store.spec import Q_MAX, Q_MIN, SCALE

OK, NOT_FINITE, OUT_OF_RANGE = 0, 1, 2


@njit(**PARALLEL)
def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(int32 rows, uint8 per-row status: 0 ok, 1 NaN/inf, 2 out of range)."""
    n, d = x.shape
    out = np.empty((n, d), dtype=np.int32)
    status = np.zeros(n, dtype=np.uint8)
    lo = np.float64(Q_MIN)
    hi = np.float64(Q_MAX)
    scale = np.float64(SCALE)
    for i in prange(n):
        for j in range(d):
            v = np.float64(x[i, j])
            if not np.isfinite(v):
                status[i] = NOT_FINITE
                break
            r = np.rint(v * scale)
            if r < lo or r > hi:
                status[i] = OUT_OF_RANGE
                break
            out[i, j] = np.int32(r)
    return out, status


#: The same kernel compiled without threads: for a handful of rows (e.g. one query) a
#: parallel region costs more than it saves. ``prange`` runs as ``range`` here.
quantize_rows_serial = serial_twin(quantize_rows)
