"""numba kernels of the narrow scan (:mod:`valori_store.spec.narrow`, bit for bit).

:func:`narrow_into` builds the int8 copy of rows; :func:`narrow_bounds` computes every
row's lower and upper key bounds from its narrow dot (exact int64, each row on its own, so
the chunking changes no bit); :func:`bounded_candidates` keeps the rows whose upper bound
reaches the k-th largest lower bound. The caller proves the int64 bound first (see
:mod:`valori_store.query.ranking`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, ROW_CHUNK, SERIAL, serial_twin
from valori_store.kernels.select import kth_largest

NARROW_MAX = 127


@njit(**PARALLEL)
def narrow_into(matrix: np.ndarray, start: int, stop: int, y: np.ndarray, shifts: np.ndarray, x2: np.ndarray) -> None:
    """Narrow rows ``[start, stop)`` of the int32 ``matrix`` into ``y``/``shifts``/``x2``."""
    d = matrix.shape[1]
    chunks = (stop - start + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        for i in range(start + c * ROW_CHUNK, min(stop, start + (c + 1) * ROW_CHUNK)):
            m = np.int64(0)
            sq = np.int64(0)
            for j in range(d):
                v = np.int64(matrix[i, j])
                sq += v * v
                if v < 0:
                    v = -v
                if v > m:
                    m = v
            s = 0
            while (m + ((np.int64(1) << s) >> 1)) >> s > NARROW_MAX:
                s += 1
            h = (np.int64(1) << s) >> 1
            for j in range(d):
                y[i, j] = np.int8((np.int64(matrix[i, j]) + h) >> s)
            shifts[i] = s
            x2[i] = sq


@njit(**PARALLEL)
def narrow_bounds(y: np.ndarray, shifts: np.ndarray, x2: np.ndarray, n: int, query: np.ndarray, l1: int, q2: int,
                  distance: bool, chunk: int = ROW_CHUNK) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) bounds of the exact keys of rows ``y[:n]`` against one int32 query
    (:func:`valori_store.spec.narrow.key_bounds`): the narrow dot ``D = (sum q_i y_i) << s``
    and ``B = h(s) * l1``; dot/cosine ``D -+ B``, l2 ``2 (D -+ B) - x2 - q2``. Each row on
    its own, so the chunking changes no bit."""
    d = y.shape[1]
    lower = np.empty(n, dtype=np.int64)
    upper = np.empty(n, dtype=np.int64)
    chunks = (n + chunk - 1) // chunk
    for c in prange(chunks):
        for i in range(c * chunk, min(n, (c + 1) * chunk)):
            acc = np.int64(0)
            for j in range(d):
                acc += np.int64(y[i, j]) * np.int64(query[j])
            dot = acc << shifts[i]
            b = ((np.int64(1) << shifts[i]) >> 1) * l1
            if distance:
                lower[i] = 2 * (dot - b) - x2[i] - q2
                upper[i] = 2 * (dot + b) - x2[i] - q2
            else:
                lower[i] = dot - b
                upper[i] = dot + b
    return lower, upper


narrow_bounds_serial = serial_twin(narrow_bounds)


@njit(**SERIAL)
def bounded_candidates(lower: np.ndarray, upper: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Allowed rows whose upper bound is >= the k-th largest allowed lower bound (every
    allowed row when fewer than k are allowed). ``allowed``: uint8 mask or empty (all)."""
    n = lower.shape[0]
    threshold = kth_largest(lower, allowed, k)
    use_mask = allowed.shape[0] > 0
    count = 0
    for i in range(n):
        if upper[i] >= threshold and (not use_mask or allowed[i] != 0):
            count += 1
    out = np.empty(count, dtype=np.int64)
    pos = 0
    for i in range(n):
        if upper[i] >= threshold and (not use_mask or allowed[i] != 0):
            out[pos] = i
            pos += 1
    return out
