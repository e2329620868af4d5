"""Exact top-k search over a record table, under the spec's total order.

The int64 kernels score a row only when it provably cannot overflow: every partial sum
is bounded by ``dim * max|a| * max|b|`` (dot, cosine) or ``dim * (max|a| + max|b|)**2``
(l2), checked per row from its stored max|value|. Rows that fail the proof are scored by
an exact Python-integer path (slow, but reached only with component magnitudes in the
thousands), so one extreme record never slows down the others. Ties, including at the
k-th place, are broken by id UTF-8 bytes, so results never depend on row layout,
threads or batch composition.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from valori_store.kernels import KEY_KERNELS, candidate_thresholds, select_candidates
from valori_store.kernels.scores import QUERY_TILE
from valori_store.state.table import RecordTable

INT64_MAX = (1 << 63) - 1
#: Queries scored per batched kernel call (bounds the (queries, rows) key matrix).
QUERY_BLOCK = 32

_NO_MASK = np.zeros(0, dtype=np.uint8)


def fits_int64(metric: str, dim: int, query_maxabs: int, table_maxabs: int) -> bool:
    """True when no partial sum of any score can leave int64 (the overflow proof)."""
    if metric == "l2":
        return dim * (query_maxabs + table_maxabs) ** 2 <= INT64_MAX
    return dim * query_maxabs * table_maxabs <= INT64_MAX


def row_limit(metric: str, dim: int, query_maxabs: int) -> int:
    """The largest per-row max|value| for which the int64 proof holds against this query."""
    if metric == "l2":
        return math.isqrt(INT64_MAX // dim) - query_maxabs
    return INT64_MAX // (dim * query_maxabs) if query_maxabs else INT64_MAX


#: Below this many rows a single query is scanned without a parallel region.
SERIAL_SCAN_ROWS = 2048


def single_kernel(metric: str, n: int) -> Any:
    """The single-query key kernel for ``n`` rows: serial for one thread or a small table."""
    kernels = KEY_KERNELS[metric]
    return kernels[2] if n < SERIAL_SCAN_ROWS or numba.get_num_threads() == 1 else kernels[0]


def scan_chunk(n: int) -> int:
    """Rows per parallel work item: about four items per thread (speed only)."""
    return max(256, -(-n // (4 * numba.get_num_threads())))


def _exact_keys(metric: str, rows: np.ndarray, query: np.ndarray) -> list[int]:
    """Keys with Python integers: the slow exact path."""
    big_rows = rows.astype(object)
    big_q = query.astype(object)
    if metric == "l2":
        diff = big_rows - big_q
        return [-int(v) for v in (diff * diff).sum(axis=1)] if len(rows) else []
    return [int(v) for v in big_rows.dot(big_q)] if len(rows) else []


def _order(candidates: list[int], keys: list[int], ids: list[str], k: int) -> list[tuple[int, int]]:
    """Sort candidate rows (``keys`` holds their keys, in the same order) by (key desc,
    id bytes asc); keep k as (row, key)."""
    ranked = sorted(zip([-key for key in keys], [ids[r].encode("utf-8") for r in candidates], candidates))
    return [(r, -neg) for neg, _, r in ranked[:k]]


def _query_maxabs(metric: str, query: np.ndarray) -> int:
    """max |value| of a stored-form query, or an upper bound of it: under cosine the query
    was normalised here, so every value is within 2**16 (spec, step 4)."""
    if metric == "cosine":
        return 1 << 16
    return int(np.abs(query.astype(np.int64)).max()) if query.size else 0


def _raw(metric: str, key: int) -> int:
    return -key if metric == "l2" else key


def search_one(
    table: RecordTable, metric: str, query: np.ndarray, k: int, allowed: np.ndarray | None
) -> list[tuple[int, int]]:
    """Top-k (row, raw) for one int32 query (already normalised for cosine).

    Rows whose magnitude fails the int64 proof against this query are scored exactly with
    Python integers; every other row by the kernel. The union of the kernel's candidates
    and those exact rows holds the true top-k, which is then ordered exactly.
    """
    n = table.n
    if n == 0 or k == 0:
        return []
    qmax = _query_maxabs(metric, query)
    limit = row_limit(metric, table.dim, qmax)
    if table.rowmax_bound <= limit:  # every row proven at once (always, under cosine)
        unsafe = None
    else:
        unsafe = table.rowmax[:n] > limit
        if allowed is not None:
            unsafe &= allowed
    if unsafe is None or not unsafe.any():
        mask = _NO_MASK if allowed is None else allowed.view(np.uint8)
        keys = single_kernel(metric, n)(table.matrix, n, query, scan_chunk(n))
        cands = select_candidates(keys, mask, k)
        return [(r, _raw(metric, key)) for r, key in _order(cands.tolist(), keys[cands].tolist(), table.ids, k)]
    keyed: dict[int, int] = {}
    safe = ~unsafe if allowed is None else (allowed & ~unsafe)
    if safe.any():
        keys = single_kernel(metric, n)(table.matrix, n, query, scan_chunk(n))
        for r in select_candidates(keys, safe.view(np.uint8), k).tolist():
            keyed[r] = int(keys[r])
    rows = np.flatnonzero(unsafe)
    keyed.update(zip(rows.tolist(), _exact_keys(metric, table.matrix[rows], query)))
    ranked = sorted((-key, table.ids[r].encode("utf-8"), r) for r, key in keyed.items())[:k]
    return [(r, _raw(metric, -neg)) for neg, _, r in ranked]


def search_many(
    table: RecordTable, metric: str, queries: np.ndarray, k: int, allowed: np.ndarray | None
) -> list[list[tuple[int, int]]]:
    """Top-k per query; identical to calling :func:`search_one` on each query alone."""
    n = table.n
    if n == 0 or k == 0:
        return [[] for _ in range(len(queries))]
    qmax = int(np.abs(queries.astype(np.int64)).max()) if queries.size else 0
    proven = fits_int64(metric, table.dim, qmax, table.rowmax_bound)  # cheap; exact check if not
    if not proven and not fits_int64(metric, table.dim, qmax, table.maxabs()):
        return [search_one(table, metric, q, k, allowed) for q in queries]
    mask = _NO_MASK if allowed is None else allowed.view(np.uint8)
    kernel = KEY_KERNELS[metric][1]
    out: list[list[tuple[int, int]]] = []
    for start in range(0, len(queries), QUERY_BLOCK):
        real = queries[start : start + QUERY_BLOCK]
        block = np.zeros((-(-len(real) // QUERY_TILE) * QUERY_TILE, table.dim), dtype=np.int32)
        block[: len(real)] = real  # zero padding rows are scored and ignored
        keys = kernel(table.matrix, n, block)
        thresholds = candidate_thresholds(keys, mask, k)
        for qi in range(len(real)):
            hit = keys[qi] >= thresholds[qi]
            if allowed is not None:
                hit &= allowed
            cands = np.flatnonzero(hit)
            ordered = _order(cands.tolist(), keys[qi][cands].tolist(), table.ids, k)
            out.append([(r, _raw(metric, key)) for r, key in ordered])
    return out
