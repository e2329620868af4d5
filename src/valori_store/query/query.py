"""One query value for every retrieval: built from user input or from a receipt, run on a table.

A :class:`Query` holds everything that determines a ranking: the query row (Q16.16 as
given, and its stored form), ``k``, the compiled filter, the mode (plain exact search or
MMR with ``fetch_k`` and an exact lambda). :meth:`Query.run` is the computation, used by
live searches and by receipt verification alike, so a re-executed receipt is the original
computation. Results are (row, raw) rankings; :func:`hits` materialises them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from valori_store.errors import InputError
from valori_store.format.canonical import decode_metadata
from valori_store.query import mmr
from valori_store.query.filter import NO_FILTER, Filter
from valori_store.query.ranking import Ranking, search_many, search_one
from valori_store.records import Hit
from valori_store.spec import Metric
from valori_store.state.convert import query_forms, stored_from_raw
from valori_store.state.table import RecordTable

__all__ = ["MODES", "Query", "Ranking", "check_k", "hits", "parse_queries"]

MODES = ("search", "mmr")


#: The largest k a query accepts (it is recorded in receipts; results never exceed the rows).
MAX_K = 2**63 - 1


def check_k(k: Any, name: str = "k") -> int:
    """``k`` as an int >= 0, else InputError."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputError(f"{name} must be a non-negative int, got {k!r}")
    if k > MAX_K:
        raise InputError(f"{name} must be at most 2**63 - 1, got a {int(k).bit_length()}-bit int")
    return int(k)


@dataclass(frozen=True, eq=False)
class Query:
    """A retrieval. ``raw``: the (dim,) int32 Q16.16 query as given (what receipts record);
    ``stored``: its stored form (normalised under cosine); ``fetch_k`` and ``lam`` only for
    ``mode == "mmr"`` (``lam`` an exact fraction in [0, 1])."""

    raw: np.ndarray
    stored: np.ndarray
    k: int
    filter: Filter = NO_FILTER
    mode: str = "search"
    fetch_k: int | None = None
    lam: Fraction | None = None

    def run(self, table: RecordTable) -> Ranking:
        """The ranking of this query on ``table`` (best first), filtered before ranking."""
        allowed = self.filter.mask(table)
        if self.mode == "mmr":
            assert self.fetch_k is not None and self.lam is not None
            ranked = search_one(table, self.stored, self.fetch_k, allowed)
            rows = [r for r, _ in ranked]
            metric = table.metric
            keys = [metric.rank_key(raw) for _, raw in ranked]
            order = mmr.select(metric, keys, table.matrix[rows], [table.ids[r] for r in rows], self.k, self.lam)
            return [ranked[i] for i in order]
        return search_one(table, self.stored, self.k, allowed)

    @staticmethod
    def run_batch(queries: Sequence[Query], table: RecordTable) -> list[Ranking]:
        """Rankings of plain searches sharing ``k`` and filter; each equals its :meth:`run`."""
        if not queries:
            return []
        first = queries[0]
        if first.mode != "search" or any(q.k != first.k or q.filter is not first.filter for q in queries):
            return [q.run(table) for q in queries]
        stored = np.ascontiguousarray(np.stack([q.stored for q in queries]))
        return search_many(table, stored, first.k, first.filter.mask(table))

    @classmethod
    def from_record(
        cls, metric: Metric, raw: np.ndarray, k: int, filter_text: str | None, mode: str = "search",
        fetch_k: int | None = None, lam_text: str | None = None,
    ) -> Query:
        """The query a receipt describes (ValueError/InputError when it cannot be executed)."""
        if mode not in MODES:
            raise InputError(f"unknown query mode {mode!r}")
        stored = stored_from_raw(raw[None, :], metric)[0]
        flt = NO_FILTER if filter_text is None else Filter.compile(json.loads(filter_text))
        if mode == "mmr":
            lam = Fraction(lam_text or "")
            return cls(raw, stored, k, flt, mode, fetch_k or k, lam)
        return cls(raw, stored, k, flt)


def parse_queries(
    vectors: Any, dim: int, metric: Metric, k: Any, filter: Mapping[str, Any] | Filter | None, *,
    mode: str = "search", fetch_k: Any = None, lambda_mult: Any = None, single: bool = True,
) -> list[Query]:
    """Validate user input into queries (nothing is searched): InputError, FilterError or a
    VectorError naming what is wrong. ``single``: exactly one vector is required."""
    k = check_k(k)
    lam = None
    if mode == "mmr":
        fetch_k = max(check_k(fetch_k, "fetch_k"), k)
        lam = mmr.check_lambda(lambda_mult)
    raw, stored = query_forms(vectors, dim, metric)
    if single and len(stored) != 1:
        what = "mmr_search" if mode == "mmr" else "search"
        hint = "" if mode == "mmr" else " (use search_batch)"
        raise InputError(f"{what} takes one vector; got {len(stored)}{hint}")
    flt = Filter.compile(filter)
    return [Query(r, s, k, flt, mode, fetch_k if mode == "mmr" else None, lam) for r, s in zip(raw, stored)]


def hits(table: RecordTable, ranking: Ranking) -> list[Hit]:
    """Materialise a ranking as Hit objects (copies; safe to keep)."""
    metric = table.metric
    return [
        Hit(table.ids[r], metric.reported(raw), raw, table.texts[r], decode_metadata(table.metas[r]))
        for r, raw in ranking
    ]
