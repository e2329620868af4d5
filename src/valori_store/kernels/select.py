"""Exact top-k candidate selection under ties.

``select_candidates`` returns every allowed row whose key is at least the k-th largest
allowed key. That set contains the exact top-k whatever the tie-break, and does not
depend on scan order; the caller then sorts it by (key desc, id bytes asc) and keeps k.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, SERIAL


@njit(**SERIAL)
def _sift_down(heap: np.ndarray, size: int, pos: int) -> None:
    """Restore the min-heap property below ``pos``."""
    while 2 * pos + 1 < size:
        child = 2 * pos + 1
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= heap[pos]:
            return
        heap[child], heap[pos] = heap[pos], heap[child]
        pos = child


@njit(**SERIAL)
def _sift_up(heap: np.ndarray, pos: int) -> None:
    """Restore the min-heap property above ``pos``."""
    while pos > 0 and heap[pos] < heap[(pos - 1) // 2]:
        parent = (pos - 1) // 2
        heap[parent], heap[pos] = heap[pos], heap[parent]
        pos = parent


@njit(**SERIAL)
def kth_largest(keys: np.ndarray, allowed: np.ndarray, k: int) -> np.int64:
    """The k-th largest allowed key, or the int64 minimum when fewer than k rows are allowed.

    ``allowed`` is a uint8 mask of len(keys), or empty for "every row". A min-heap keeps
    the k largest keys seen; the common case (a key not above the heap's minimum) is one
    comparison, written inline in the loop.
    """
    use_mask = allowed.shape[0] > 0
    heap = np.empty(max(k, 1), dtype=np.int64)
    size = 0
    for i in range(keys.shape[0]):
        if use_mask and allowed[i] == 0:
            continue
        key = keys[i]
        if size < k:
            heap[size] = key
            _sift_up(heap, size)
            size += 1
        elif key > heap[0]:
            heap[0] = key
            _sift_down(heap, size, 0)
    return heap[0] if size >= k else np.iinfo(np.int64).min


@njit(**SERIAL)
def select_candidates(keys: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Row indices with key >= the k-th largest allowed key (every allowed row if fewer)."""
    threshold = kth_largest(keys, allowed, k)
    use_mask = allowed.shape[0] > 0
    count = 0
    for i in range(keys.shape[0]):
        if (not use_mask or allowed[i] != 0) and keys[i] >= threshold:
            count += 1
    out = np.empty(count, dtype=np.int64)
    pos = 0
    for i in range(keys.shape[0]):
        if (not use_mask or allowed[i] != 0) and keys[i] >= threshold:
            out[pos] = i
            pos += 1
    return out


@njit(**PARALLEL)
def candidate_thresholds(keys: np.ndarray, allowed: np.ndarray, k: int) -> np.ndarray:
    """Per query row of ``keys`` (nq, n): :func:`kth_largest`, queries in parallel."""
    nq = keys.shape[0]
    out = np.empty(nq, dtype=np.int64)
    for q in prange(nq):
        out[q] = kth_largest(keys[q], allowed, k)
    return out
