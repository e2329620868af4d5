"""The write side of a LangGraph batch: its final puts become ONE core event.

A batch's puts (the last one per key) turn into deletes (removed items, their vectors and
vectors an update no longer has), vector records (one per embedded text, with its real
embedding) and item records without a vector (``plain_*`` of ``ValoriStore.write``). The
0.1 namespace record of every namespace the batch writes to is deleted in the same event,
so an old memory converges to the current layout. The core validates everything (ids,
vectors, metadata) before it changes anything, so a failing batch changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from langgraph.store.base import PutOp

from valori_store import ValoriStore
from valori_store.errors import InputError
from valori_store.langgraph import _ids as ids
from valori_store.langgraph import _layout as L

ItemKey = tuple[tuple[str, ...], str]


@dataclass
class Plan:
    """What a batch needs before touching the store: final puts, texts and queries to embed."""

    puts: dict[ItemKey, PutOp] = field(default_factory=dict)
    values: dict[ItemKey, dict[str, Any]] = field(default_factory=dict)
    fields: dict[ItemKey, list[tuple[str, str]]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


@dataclass
class _Records:
    ids: list[str] = field(default_factory=list)
    vectors: list[Any] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    metas: list[dict[str, Any]] = field(default_factory=list)


def apply(store: ValoriStore, plan: Plan, docs: list[Any], clock: Callable[[], datetime]) -> None:
    """Write the batch's final puts (``docs``: the embeddings of ``plan.texts``)."""
    keys = list(plan.puts)
    old = {r.id: r for r in store.get([ids.item_id(ns, k) for ns, k in keys])}
    now = clock() if plan.values else None
    if now is not None and not isinstance(now, datetime):
        raise InputError(f"clock() must return a datetime, got {type(now).__name__}")
    position = {t: i for i, t in enumerate(plan.texts)}
    deletes: list[str] = []
    vecs, items = _Records(), _Records()
    for ns, key in keys:
        iid = ids.item_id(ns, key)
        prev = old.get(iid)
        prev_nvec = prev.metadata[L.NVEC] if prev else 0
        value = plan.values.get((ns, key))
        if value is None:
            if prev is not None:
                deletes += [iid] + [ids.vector_id(ns, key, i) for i in range(prev_nvec)]
            continue
        assert now is not None  # set whenever the batch has a value to write
        pairs = plan.fields[(ns, key)]
        fields = L.value_fields(value)
        for i, (path, text) in enumerate(pairs):
            vecs.ids.append(ids.vector_id(ns, key, i))
            vecs.vectors.append(docs[position[text]])
            vecs.texts.append(text)
            vecs.metas.append(L.vec_metadata(ns, key, fields, path))
        deletes += [ids.vector_id(ns, key, i) for i in range(len(pairs), prev_nvec)]
        created = L.parse_time(prev.metadata[L.CREATED]) if prev else now
        items.ids.append(iid)
        items.texts.append(L.value_text(value))
        items.metas.append(L.item_metadata(ns, key, fields, created, now, len(pairs)))
    for ns in sorted({ns for ns, _ in keys}):
        legacy = ids.legacy_namespace_id(ns)
        if legacy is not None:
            deletes.append(legacy)  # a 0.1 namespace record, if any (missing ids are ignored)
    # One atomic core event: a crash can never leave half of a batch applied.
    if items.ids:
        store.write(
            delete=deletes,
            vectors=vecs.vectors or None, ids=vecs.ids or None,
            texts=vecs.texts or None, metadatas=vecs.metas or None,
            plain_ids=items.ids, plain_texts=items.texts, plain_metadatas=items.metas,
        )
    elif deletes:
        store.delete(deletes)
