"""Exact top-k search over a record table, under the spec's total order.

The int64 kernels score a row only when it provably cannot overflow (the metric's bound,
:meth:`valori_store.spec.Metric.fits_int64`), checked per row from its stored max|value|.
Rows that fail the proof are scored by an exact Python-integer path (slow, but reached only
with component magnitudes in the thousands), so one extreme record never slows down the
others. Ties, including at the k-th place, are broken by id UTF-8 bytes, so results never
depend on row layout, threads or batch composition. Rows without a vector are never ranked.
"""

from __future__ import annotations

import os
from typing import Any

import numba
import numpy as np

from valori_store.kernels import KEY_KERNELS, QUERY_TILE, candidate_thresholds, select_candidates
from valori_store.kernels.narrow import bounded_candidates, narrow_bounds, narrow_bounds_serial
from valori_store.kernels.options import ROW_CHUNK
from valori_store.spec import Metric
from valori_store.spec.metrics import COSINE_MAXABS
from valori_store.state.table import RecordTable

__all__ = ["Ranking", "searchable", "search_many", "search_one"]

Ranking = list[tuple[int, int]]
"""(row, raw score) pairs, best first."""

#: Queries scored per batched kernel call (bounds the (queries, rows) key matrix).
QUERY_BLOCK = 32
#: Below this many rows a single query is scanned without a parallel region.
SERIAL_SCAN_ROWS = 2048
#: From this many rows a single query scans the int8 copy, then rescores exactly (the
#: copy costs dim + 9 bytes per row; below this the full scan is about as fast).
NARROW_FROM = 20_000
#: ``VALORI_NARROW_SCAN=0`` turns the narrow scan off (no int8 copy is kept; same results).
NARROW_ENABLED = os.environ.get("VALORI_NARROW_SCAN", "1") != "0"

_NO_MASK = np.zeros(0, dtype=np.uint8)


def single_kernel(metric: Metric, n: int) -> Any:
    """The single-query key kernel for ``n`` rows: serial for one thread or a small table."""
    kernels = KEY_KERNELS[metric.family]
    return kernels[2] if n < SERIAL_SCAN_ROWS or numba.get_num_threads() == 1 else kernels[0]


def scan_chunk(n: int) -> int:
    """Rows per parallel work item: about four items per thread (speed only)."""
    return max(256, -(-n // (4 * numba.get_num_threads())))


def searchable(table: RecordTable, allowed: np.ndarray | None) -> np.ndarray | None:
    """``allowed`` restricted to rows that have a vector (None: every row)."""
    has = table.vector_rows()
    if has is None:
        return allowed
    return has if allowed is None else allowed & has


def _exact_keys(metric: Metric, rows: np.ndarray, query: np.ndarray) -> list[int]:
    """Keys with Python integers: the slow exact path."""
    if not len(rows):
        return []
    big_rows = rows.astype(object)
    big_q = query.astype(object)
    if metric.distance:
        diff = big_rows - big_q
        return [metric.rank_key(int(v)) for v in (diff * diff).sum(axis=1)]
    return [metric.rank_key(int(v)) for v in big_rows.dot(big_q)]


def _order(metric: Metric, candidates: list[int], keys: list[int], ids: list[str], k: int) -> Ranking:
    """Sort candidate rows (``keys`` holds their keys, in the same order) by (key desc,
    id bytes asc); keep k as (row, raw)."""
    ranked = sorted(zip([-key for key in keys], [ids[r].encode("utf-8") for r in candidates], candidates))
    return [(r, metric.raw_of_key(-neg)) for neg, _, r in ranked[:k]]


def _query_maxabs(metric: Metric, query: np.ndarray) -> int:
    """:meth:`Metric.query_maxabs` of an int32 row (numpy, for speed)."""
    if metric.normalised:
        return COSINE_MAXABS
    return int(np.abs(query.astype(np.int64)).max()) if query.size else 0


def search_one(table: RecordTable, query: np.ndarray, k: int, allowed: np.ndarray | None) -> Ranking:
    """Top-k (row, raw) for one stored-form int32 query among the ``allowed`` rows.

    Rows whose magnitude fails the int64 proof against this query are scored exactly with
    Python integers; every other row by the kernel. The union of the kernel's candidates
    and those exact rows holds the true top-k, which is then ordered exactly.
    """
    n, metric = table.n, table.metric
    allowed = searchable(table, allowed)
    if n == 0 or k == 0:
        return []
    k = min(k, n)  # no more hits than rows (and no allocation sized by a huge k)
    limit = metric.row_limit(table.dim, _query_maxabs(metric, query))
    if table.rowmax_bound <= limit:  # every row proven at once (always, under cosine)
        unsafe = None
    else:
        unsafe = table.rowmax[:n] > limit
        if allowed is not None:
            unsafe &= allowed
    if unsafe is None and use_narrow(table, query):
        return _narrow_search(table, query, k, allowed)
    if unsafe is None or not unsafe.any():
        mask = _NO_MASK if allowed is None else allowed.view(np.uint8)
        keys = single_kernel(metric, n)(table.matrix, n, query, scan_chunk(n))
        cands = select_candidates(keys, mask, k)
        return _order(metric, cands.tolist(), keys[cands].tolist(), table.ids, k)
    keyed: dict[int, int] = {}
    safe = ~unsafe if allowed is None else (allowed & ~unsafe)
    if safe.any():
        keys = single_kernel(metric, n)(table.matrix, n, query, scan_chunk(n))
        for r in select_candidates(keys, safe.view(np.uint8), k).tolist():
            keyed[r] = int(keys[r])
    rows = np.flatnonzero(unsafe)
    keyed.update(zip(rows.tolist(), _exact_keys(metric, table.matrix[rows], query)))
    ranked = sorted((-key, table.ids[r].encode("utf-8"), r) for r, key in keyed.items())[:k]
    return [(r, metric.raw_of_key(-neg)) for neg, _, r in ranked]


def use_narrow(table: RecordTable, query: np.ndarray) -> bool:
    """True when a single query on ``table`` takes the narrow scan: the table has at least
    :data:`NARROW_FROM` rows and the int64 bound holds with room for the key bounds
    (twice the query's and the rows' magnitudes; docs/spec.md, "The narrow scan")."""
    if table.n < NARROW_FROM or not NARROW_ENABLED:
        return False
    metric = table.metric
    return metric.fits_int64(table.dim, 2 * _query_maxabs(metric, query), 2 * table.rowmax_bound)


def _narrow_search(table: RecordTable, query: np.ndarray, k: int, allowed: np.ndarray | None) -> Ranking:
    """:func:`search_one` through the narrow scan: every row whose key upper bound reaches the
    k-th best lower bound is rescored exactly; the ranking is the full scan's, bit for bit."""
    n, metric = table.n, table.metric
    y, shifts, x2 = table.narrow.refresh(table.matrix, n)
    q64 = query.astype(np.int64)
    l1 = int(np.abs(q64).sum())
    q2 = int((q64 * q64).sum()) if metric.distance else 0  # (dot and cosine do not use it)
    kernel = narrow_bounds_serial if numba.get_num_threads() == 1 else narrow_bounds
    lower, upper = kernel(y, shifts, x2, n, query, l1, q2, metric.distance, scan_chunk(n))
    mask = _NO_MASK if allowed is None else allowed.view(np.uint8)
    cands = bounded_candidates(lower, upper, mask, k)
    rows = np.ascontiguousarray(table.matrix[cands])
    keys = KEY_KERNELS[metric.family][2](rows, len(cands), query, ROW_CHUNK)
    return _order(metric, cands.tolist(), keys.tolist(), table.ids, k)


def search_many(table: RecordTable, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> list[Ranking]:
    """Top-k per query; identical to calling :func:`search_one` on each query alone."""
    n, metric = table.n, table.metric
    if n == 0 or k == 0:
        return [[] for _ in range(len(queries))]
    k = min(k, n)
    qmax = int(np.abs(queries.astype(np.int64)).max()) if queries.size else 0
    proven = metric.fits_int64(table.dim, qmax, table.rowmax_bound)  # cheap; exact check if not
    if not proven and not metric.fits_int64(table.dim, qmax, table.maxabs()):
        return [search_one(table, q, k, allowed) for q in queries]
    allowed = searchable(table, allowed)
    mask = _NO_MASK if allowed is None else allowed.view(np.uint8)
    kernel = KEY_KERNELS[metric.family][1]
    out: list[Ranking] = []
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
            out.append(_order(metric, cands.tolist(), keys[qi][cands].tolist(), table.ids, k))
    return out
