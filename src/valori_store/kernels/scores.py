"""Exact integer scoring kernels: one int64 key per stored row, bigger = better.

Keys are ``sum a_i * b_i`` for dot and cosine and ``-sum (a_i - b_i)**2`` for l2. The
caller proves the int64 bound first (see :mod:`valori_store.search`); under that bound
every partial sum is exact, so the order of additions (SIMD lanes, threads, batches)
cannot change a single bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, ROW_CHUNK, SERIAL, serial_twin


@njit(**PARALLEL)
def dot_keys(matrix: np.ndarray, n: int, query: np.ndarray, chunk: int = ROW_CHUNK) -> np.ndarray:
    """Keys of rows ``matrix[:n]`` against one int32 query: exact int64 dot products.

    ``chunk`` rows form one parallel work item; each row's key is computed on its own, so
    the chunking affects speed only, never a result.
    """
    d = matrix.shape[1]
    out = np.empty(n, dtype=np.int64)
    chunks = (n + chunk - 1) // chunk
    for c in prange(chunks):
        stop = min(n, (c + 1) * chunk)
        for i in range(c * chunk, stop):
            acc = np.int64(0)
            for j in range(d):
                acc += np.int64(matrix[i, j]) * np.int64(query[j])
            out[i] = acc
    return out


@njit(**PARALLEL)
def l2_keys(matrix: np.ndarray, n: int, query: np.ndarray, chunk: int = ROW_CHUNK) -> np.ndarray:
    """Keys of rows ``matrix[:n]``: minus the exact squared L2 distance to the query."""
    d = matrix.shape[1]
    out = np.empty(n, dtype=np.int64)
    chunks = (n + chunk - 1) // chunk
    for c in prange(chunks):
        stop = min(n, (c + 1) * chunk)
        for i in range(c * chunk, stop):
            acc = np.int64(0)
            for j in range(d):
                diff = np.int64(matrix[i, j]) - np.int64(query[j])
                acc += diff * diff
            out[i] = -acc
    return out


#: Serial twins for one thread or a small table: no parallel region to launch (about
#: 15 µs per call), same keys (each row's key never depends on the split).
dot_keys_serial = serial_twin(dot_keys)
l2_keys_serial = serial_twin(l2_keys)


#: Queries per register block of the batched kernels; callers pad batches to a multiple.
QUERY_TILE = 4


@njit(**SERIAL)
def _dot_row(matrix: np.ndarray, i: int, queries: np.ndarray, q: int, out: np.ndarray) -> None:
    """Leftover single row against a tile of QUERY_TILE queries."""
    a0 = np.int64(0)
    a1 = np.int64(0)
    a2 = np.int64(0)
    a3 = np.int64(0)
    for j in range(matrix.shape[1]):
        m = np.int64(matrix[i, j])
        a0 += m * np.int64(queries[q, j])
        a1 += m * np.int64(queries[q + 1, j])
        a2 += m * np.int64(queries[q + 2, j])
        a3 += m * np.int64(queries[q + 3, j])
    out[q, i] = a0
    out[q + 1, i] = a1
    out[q + 2, i] = a2
    out[q + 3, i] = a3


@njit(**PARALLEL)
def dot_keys_batch(matrix: np.ndarray, n: int, queries: np.ndarray) -> np.ndarray:
    """(n_queries, n) exact dot products; ``n_queries`` must be a multiple of QUERY_TILE.

    Register-blocked: two rows times four queries per pass, so each loaded value is used
    four or two times. Integer sums, so the blocking cannot change a bit.
    """
    d = matrix.shape[1]
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        start = c * ROW_CHUNK
        stop = min(n, start + ROW_CHUNK)
        i = start
        while i + 1 < stop:
            for q in range(0, nq, QUERY_TILE):
                a0 = np.int64(0)
                a1 = np.int64(0)
                a2 = np.int64(0)
                a3 = np.int64(0)
                b0 = np.int64(0)
                b1 = np.int64(0)
                b2 = np.int64(0)
                b3 = np.int64(0)
                for j in range(d):
                    m = np.int64(matrix[i, j])
                    p = np.int64(matrix[i + 1, j])
                    x0 = np.int64(queries[q, j])
                    x1 = np.int64(queries[q + 1, j])
                    x2 = np.int64(queries[q + 2, j])
                    x3 = np.int64(queries[q + 3, j])
                    a0 += m * x0
                    a1 += m * x1
                    a2 += m * x2
                    a3 += m * x3
                    b0 += p * x0
                    b1 += p * x1
                    b2 += p * x2
                    b3 += p * x3
                out[q, i] = a0
                out[q + 1, i] = a1
                out[q + 2, i] = a2
                out[q + 3, i] = a3
                out[q, i + 1] = b0
                out[q + 1, i + 1] = b1
                out[q + 2, i + 1] = b2
                out[q + 3, i + 1] = b3
            i += 2
        if i < stop:
            for q in range(0, nq, QUERY_TILE):
                _dot_row(matrix, i, queries, q, out)
    return out


@njit(**PARALLEL)
def l2_keys_batch(matrix: np.ndarray, n: int, queries: np.ndarray) -> np.ndarray:
    """(n_queries, n) minus exact squared L2 distances; ``n_queries`` a multiple of QUERY_TILE."""
    d = matrix.shape[1]
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        stop = min(n, (c + 1) * ROW_CHUNK)
        for i in range(c * ROW_CHUNK, stop):
            for q in range(0, nq, QUERY_TILE):
                a0 = np.int64(0)
                a1 = np.int64(0)
                a2 = np.int64(0)
                a3 = np.int64(0)
                for j in range(d):
                    m = np.int64(matrix[i, j])
                    e0 = m - np.int64(queries[q, j])
                    e1 = m - np.int64(queries[q + 1, j])
                    e2 = m - np.int64(queries[q + 2, j])
                    e3 = m - np.int64(queries[q + 3, j])
                    a0 += e0 * e0
                    a1 += e1 * e1
                    a2 += e2 * e2
                    a3 += e3 * e3
                out[q, i] = -a0
                out[q + 1, i] = -a1
                out[q + 2, i] = -a2
                out[q + 3, i] = -a3
    return out
