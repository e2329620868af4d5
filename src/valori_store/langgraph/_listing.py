"""Reads of the LangGraph memory: items by key, listings, query searches, namespaces.

* Listings (searches without a query, the unscored items after the scored ones) are
  ``ValoriStore.select`` over the item records: id order is ``(namespace, key)`` order
  (:mod:`._ids`), no vector is involved and nothing is receipted (a listing is not a
  search).
* Query searches are ``ValoriStore.search`` over the vector records only (receipted like
  any core search), deduplicated to the best vector per item.
* Namespaces are derived: the distinct namespaces of the item records passing the
  prefix conditions, decoded from their ids; suffix conditions are checked on the tuples.

Records of the 0.1 layout need no special case: its item records are selected like
records without a vector (their ``e0`` vector is never ranked, since searches only rank
``vec`` records) and its namespace records are never selected (kind ``ns``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from langgraph.store.base import Item, MatchCondition, SearchItem

from valori_store import Hit, Record, ValoriStore
from valori_store.errors import InputError
from valori_store.langgraph import _filters
from valori_store.langgraph import _ids as ids
from valori_store.langgraph import _layout as L

ItemKey = tuple[tuple[str, ...], str]
Scored = tuple[tuple[str, ...], str, float]


def and_clauses(base: dict[str, Any], clauses: list[dict[str, Any]]) -> dict[str, Any]:
    """``base`` with ``clauses`` ANDed under ``$and`` (the shape receipts have always recorded)."""
    return {**base, "$and": clauses} if clauses else base


def to_item(rec: Record | Hit, score: float | None = None, search: bool = False) -> Item:
    """The LangGraph item of an item record (a SearchItem when ``search``)."""
    meta = rec.metadata
    args: dict[str, Any] = {
        "namespace": tuple(meta[L.NS]), "key": meta[L.KEY], "value": json.loads(rec.text or "{}"),
        "created_at": L.parse_time(meta[L.CREATED]), "updated_at": L.parse_time(meta[L.UPDATED]),
    }
    return SearchItem(**args, score=score) if search else Item(**args)


def get_item(store: ValoriStore, namespace: tuple[str, ...], key: str) -> Item | None:
    if not namespace:
        return None
    found = store.get([ids.item_id(namespace, key)])
    return to_item(found[0]) if found else None


def scope(kind: str, prefix: tuple[str, ...], value_filter: Any) -> dict[str, Any]:
    """Core filter: records of ``kind`` under namespace ``prefix`` passing ``value_filter``."""
    base: dict[str, Any] = {L.KIND: kind}
    for i, label in enumerate(prefix):
        base[L.level_key(i)] = label
    return and_clauses(base, _filters.translate(value_filter))


def listing(store: ValoriStore, prefix: tuple[str, ...], value_filter: Any, limit: int, offset: int,
            unscored: bool = False) -> list[SearchItem]:
    """Items in ``(namespace, key)`` order, paged (``unscored``: only items without vectors)."""
    flt = scope(L.ITEM, prefix, value_filter)
    if unscored:
        flt[L.NVEC] = 0
    return [to_item(r, search=True) for r in store.select(flt, limit=limit, offset=offset)]


def search(store: ValoriStore, prefix: tuple[str, ...], value_filter: Any, query: list[float] | None,
           limit: int, offset: int) -> list[SearchItem]:
    """One page of a LangGraph search: a listing without a query; with one, scored items
    (score descending, then namespace, then key) followed by the unscored ones."""
    if query is None:
        return listing(store, prefix, value_filter, limit, offset)
    scored, exhausted = ranked(store, query, prefix, value_filter, offset + limit)
    page = scored[offset: offset + limit]
    records = {r.id: r for r in store.get([ids.item_id(ns, key) for ns, key, _ in page])}
    out = [to_item(records[ids.item_id(ns, key)], score, search=True) for ns, key, score in page]
    if len(out) < limit and exhausted:  # unscored items follow every scored one
        start = max(0, offset - len(scored))
        out += listing(store, prefix, value_filter, limit - len(out), start, unscored=True)
    return out


def ranked(store: ValoriStore, query: list[float], prefix: tuple[str, ...], value_filter: Any,
           need: int) -> tuple[list[Scored], bool]:
    """Distinct items by best vector: ``(namespace, key, score)``, at least ``need`` of
    them unless every match was seen (then ``exhausted`` is True)."""
    flt = scope(L.VEC, prefix, value_filter)
    total = len(store)
    k = max(need, 1)
    while True:
        hits = store.search(query, k=k, filter=flt)
        seen: set[ItemKey] = set()
        scored: list[Scored] = []
        for h in hits:  # best vector first (score desc, then id: namespace, key)
            ik = (tuple(h.metadata[L.NS]), h.metadata[L.KEY])
            if ik not in seen:
                seen.add(ik)
                scored.append((ik[0], ik[1], h.score))
        exhausted = len(hits) < k or k >= total
        if len(scored) >= need or exhausted:
            return scored, exhausted
        k = min(2 * k, total)


def _matches(namespace: tuple[str, ...], path: tuple[str, ...]) -> bool:
    """``namespace`` ends with ``path`` (``"*"`` matches any label)."""
    tail = namespace[len(namespace) - len(path):]
    return len(namespace) >= len(path) and all(p == "*" or p == n for n, p in zip(tail, path))


def namespaces(store: ValoriStore, conditions: Sequence[MatchCondition] | None, max_depth: int | None,
               limit: int, offset: int) -> list[tuple[str, ...]]:
    """``list_namespaces``: namespaces holding at least one item, in tuple order."""
    clauses: list[dict[str, Any]] = []
    suffixes: list[tuple[str, ...]] = []
    for cond in conditions or ():
        path = tuple(cond.path)
        if cond.match_type not in ("prefix", "suffix"):
            raise InputError(f"match_type must be 'prefix' or 'suffix', got {cond.match_type!r}")
        clauses.append({L.DEPTH: {"$gte": len(path)}})
        if cond.match_type == "prefix":
            clauses += [{L.level_key(i): label} for i, label in enumerate(path) if label != "*"]
        else:
            suffixes.append(path)
    found: list[tuple[str, ...]] = []
    last = None
    for rid in store.select_ids(and_clauses({L.KIND: L.ITEM}, clauses)):
        text = ids.namespace_text(rid)
        if text != last:  # ids come in (namespace, key) order: a namespace's items are adjacent
            last = text
            found.append(ids.decode_namespace(text))
    found = [ns for ns in found if all(_matches(ns, path) for path in suffixes)]
    if max_depth is not None:
        found = sorted({ns[:max_depth] for ns in found})
    else:
        found.sort()
    return found[offset: offset + limit]
