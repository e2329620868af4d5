"""Searches over one record table: plain exact top-k and MMR, as (row, raw) rankings.

The store runs these on its live table; receipt verification runs the very same functions
on a table rebuilt from the log, so a re-executed search is the original computation.
Queries arrive as stored-form int32 rows (Q16.16, integer-normalised under cosine).
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from valori_store import spec
from valori_store.format.canonical import decode_metadata
from valori_store.query import mmr
from valori_store.query.filters import filter_mask, split_ids
from valori_store.query.ranking import search_many, search_one
from valori_store.records import Hit
from valori_store.state.table import RecordTable

__all__ = ["hits", "mask", "rank", "rank_batch", "rank_mmr"]

Ranking = list[tuple[int, int]]
"""(row, raw score) pairs, best first."""


def mask(table: RecordTable, filter: Mapping[str, Any] | None) -> np.ndarray | None:
    """Rows passing ``filter`` (None: every row); ``$ids`` is a direct row lookup."""
    ids, pred = split_ids(filter)
    out = None if pred is None else filter_mask(pred, table.metadata_dicts())
    if ids is not None:
        by_id = np.zeros(len(table), dtype=np.bool_)
        rows = [r for r in map(table.row_of.get, ids) if r is not None]
        by_id[rows] = True
        out = by_id if out is None else out & by_id
    return out


def rank(table: RecordTable, metric: str, query: np.ndarray, k: int, filter: Mapping[str, Any] | None) -> Ranking:
    """Exact top-k of one stored-form query, filtered before ranking."""
    return search_one(table, metric, query, k, mask(table, filter))


def rank_batch(
    table: RecordTable, metric: str, queries: np.ndarray, k: int, filter: Mapping[str, Any] | None
) -> list[Ranking]:
    """Exact top-k of each query; each equals :func:`rank` of that query alone."""
    return search_many(table, metric, queries, k, mask(table, filter))


def rank_mmr(
    table: RecordTable, metric: str, query: np.ndarray, k: int, fetch_k: int, lam: Fraction,
    filter: Mapping[str, Any] | None,
) -> Ranking:
    """MMR pick order among the exact top ``fetch_k`` (see :mod:`valori_store.mmr`)."""
    ranked = search_one(table, metric, query, fetch_k, mask(table, filter))
    rows = [r for r, _ in ranked]
    keys = [spec.rank_key(metric, raw) for _, raw in ranked]
    order = mmr.select(metric, keys, table.matrix[rows], [table.ids[r] for r in rows], k, lam)
    return [ranked[i] for i in order]


def hits(table: RecordTable, metric: str, ranked: Ranking) -> list[Hit]:
    """Materialise a ranking as Hit objects (copies; safe to keep)."""
    return [
        Hit(table.ids[r], spec.reported_score(metric, raw), raw, table.texts[r], decode_metadata(table.metas[r]))
        for r, raw in ranked
    ]
