"""Exact integer scoring kernels: one int64 key per stored row, bigger = better.

Keys are ``sum a_i * b_i`` for dot and cosine and ``-sum (a_i - b_i)**2`` for l2. The
caller proves the int64 bound first (see :mod:`valori_store.search`); under that bound
every partial sum is exact, so the order of additions (SIMD lanes, threads, batches)
cannot change a single bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .options import PARALLEL, ROW_CHUNK


@njit(**PARALLEL)
def dot_keys(matrix: np.ndarray, n: int, query: np.ndarray) -> np.ndarray:
    """Keys of rows ``matrix[:n]`` against one int32 query: exact int64 dot products."""
    d = matrix.shape[1]
    out = np.empty(n, dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        stop = min(n, (c + 1) * ROW_CHUNK)
        for i in range(c * ROW_CHUNK, stop):
            acc = np.int64(0)
            for j in range(d):
                acc += np.int64(matrix[i, j]) * np.int64(query[j])
            out[i] = acc
    return out


@njit(**PARALLEL)
def l2_keys(matrix: np.ndarray, n: int, query: np.ndarray) -> np.ndarray:
    """Keys of rows ``matrix[:n]``: minus the exact squared L2 distance to the query."""
    d = matrix.shape[1]
    out = np.empty(n, dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        stop = min(n, (c + 1) * ROW_CHUNK)
        for i in range(c * ROW_CHUNK, stop):
            acc = np.int64(0)
            for j in range(d):
                diff = np.int64(matrix[i, j]) - np.int64(query[j])
                acc += diff * diff
            out[i] = -acc
    return out


@njit(**PARALLEL)
def dot_keys_batch(matrix: np.ndarray, n: int, queries: np.ndarray) -> np.ndarray:
    """(n_queries, n) keys: dot products of every query with every row.

    Rows are the outer loop so each row is read from memory once per batch.
    """
    d = matrix.shape[1]
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        stop = min(n, (c + 1) * ROW_CHUNK)
        for i in range(c * ROW_CHUNK, stop):
            for q in range(nq):
                acc = np.int64(0)
                for j in range(d):
                    acc += np.int64(matrix[i, j]) * np.int64(queries[q, j])
                out[q, i] = acc
    return out


@njit(**PARALLEL)
def l2_keys_batch(matrix: np.ndarray, n: int, queries: np.ndarray) -> np.ndarray:
    """(n_queries, n) keys: minus squared L2 distances of every query to every row."""
    d = matrix.shape[1]
    nq = queries.shape[0]
    out = np.empty((nq, n), dtype=np.int64)
    chunks = (n + ROW_CHUNK - 1) // ROW_CHUNK
    for c in prange(chunks):
        stop = min(n, (c + 1) * ROW_CHUNK)
        for i in range(c * ROW_CHUNK, stop):
            for q in range(nq):
                acc = np.int64(0)
                for j in range(d):
                    diff = np.int64(matrix[i, j]) - np.int64(queries[q, j])
                    acc += diff * diff
                out[q, i] = -acc
    return out
