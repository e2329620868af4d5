"""ValoriMemoryStore: a LangGraph ``BaseStore`` kept entirely in a core ValoriStore.

Invariants:

* The core store is the only persistence: values, timestamps, namespaces and vectors are
  core records (layout in :mod:`._layout`), so ``checkpoint``/``restore``, snapshots,
  ``state_hash`` and durable directories cover the whole memory.
* Every search is one or more ``ValoriStore.search`` calls with the namespace prefix and
  the value filter expressed in the core filter language (applied before top-k).
* Order is total: query searches by score (exact integer) descending, then namespace,
  then key; searches without a query and unscored items by namespace, then key;
  namespaces in tuple order.
* A batch validates and embeds everything before it changes anything; reads in a batch
  see the state before the batch's writes (as in ``InMemoryStore``); for one key the
  last put of a batch wins.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, cast

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    Item,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
)

try:
    from langgraph.store.base import validate_op_namespace
except ImportError:  # pragma: no cover - langgraph-checkpoint releases before the helper existed
    def validate_op_namespace(op: Op) -> None:
        paths = [c.path for c in op.match_conditions or ()] if isinstance(op, ListNamespacesOp) else [
            op.namespace_prefix if isinstance(op, SearchOp) else op.namespace]
        for path in paths:
            for label in path:
                if not isinstance(label, str) or not label or "." in label or "\x00" in label:
                    raise InvalidNamespaceError(f"invalid namespace label {label!r} in {tuple(path)!r}")

from valori_store import spec
from valori_store.errors import DimensionError, InputError, ZeroVectorError
from valori_store.format.canonical import check_id
from valori_store.langgraph import _filters
from valori_store.langgraph import _ids as ids
from valori_store.langgraph import _layout as L
from valori_store.langgraph._embed import Index, texts_of
from valori_store.records import Checkpoint, Hit, Record
from valori_store.store.facade import ValoriStore

ItemKey = tuple[tuple[str, ...], str]


def utc_now() -> datetime:
    """The default clock: the current time in UTC (inject ``clock=`` for reproducible states)."""
    return datetime.now(timezone.utc)


@dataclass
class _Plan:
    """What a batch needs before touching the store: final puts, texts and queries to embed."""

    puts: dict[ItemKey, PutOp] = field(default_factory=dict)
    values: dict[ItemKey, dict[str, Any]] = field(default_factory=dict)
    fields: dict[ItemKey, list[tuple[str, str]]] = field(default_factory=dict)
    texts: list[str] = field(default_factory=list)
    queries: list[str] = field(default_factory=list)


def _check_page(limit: Any, offset: Any, what: str) -> tuple[int, int]:
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InputError(f"{what} {name} must be a non-negative int, got {v!r}")
    return int(limit), int(offset)


def _and(base: dict[str, Any], clauses: list[dict[str, Any]]) -> dict[str, Any]:
    return {**base, "$and": clauses} if clauses else base


class ValoriMemoryStore(BaseStore):
    """LangGraph long-term memory (``BaseStore``) on a deterministic core ValoriStore.

    Args:
        index: LangGraph ``IndexConfig``: ``dims``, ``embed`` (an Embeddings object, an
            object with its four methods such as :class:`~valori_store.embedder.HashingEmbedder`,
            or a sync or async function of a list of texts) and ``fields`` (JSON paths,
            default ``["$"]``: the whole value). Without it the store is key-value only.
        path: a directory for a durable store (created or reopened; see ``ValoriStore.open``).
        store: an existing core ValoriStore to keep the memory in (its dim must equal
            ``dims``; without an index any dim works).
        metric: metric of a new core store (``cosine`` by default, like ``InMemoryStore``).
        durability: durability of a new durable store.
        clock: returns the ``datetime`` stamped on puts (default: UTC now). Inject one to
            make states and state hashes reproducible.
    """

    supports_ttl = False

    def __init__(
        self,
        *,
        index: Mapping[str, Any] | None = None,
        path: str | None = None,
        store: ValoriStore | None = None,
        metric: str = "cosine",
        durability: str = "fsync",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._index = Index.from_config(index) if index else None
        self.index_config = dict(index) if index else None
        dim = self._index.dims if self._index else 1
        if store is not None:
            if path is not None:
                raise InputError("pass either path= or store=, not both")
            if not isinstance(store, ValoriStore):
                raise InputError(f"store= must be a ValoriStore, got {type(store).__name__}")
            if self._index and store.dim != dim:
                raise InputError(f"index['dims'] is {dim} but the given store has dim {store.dim}")
            self._store = store
        elif path is not None:
            self._store = ValoriStore.open(path, dim=dim, metric=metric, durability=durability)
        else:
            self._store = ValoriStore(dim, metric)
        if clock is not None and not callable(clock):
            raise InputError(f"clock must be a callable returning a datetime, got {type(clock).__name__}")
        self._clock = clock or utc_now
        self._unit = [1.0] + [0.0] * (self._store.dim - 1)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------ core access
    @property
    def store(self) -> ValoriStore:
        """The core store holding everything."""
        return self._store

    @property
    def lock(self) -> threading.RLock:
        """Held while a batch runs; hold it to see (or checkpoint) a state between batches."""
        return self._lock

    def state_hash(self) -> str:
        with self._lock:
            return self._store.state_hash()

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """A core checkpoint of the memory, never in the middle of a batch."""
        with self._lock:
            return self._store.checkpoint(label)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind the memory to a core checkpoint (see ``ValoriStore.restore``)."""
        with self._lock:
            return self._store.restore(target)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> ValoriMemoryStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ValoriMemoryStore(index={'dims=%d' % self._index.dims if self._index else None}, store={self._store!r})"

    # ------------------------------------------------------------------ batches
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        docs: list[list[float]] = []
        queries: dict[str, list[float]] = {}
        if self._index is not None:
            emb = self._index.embeddings
            if plan.texts:
                docs = list(emb.embed_documents(list(plan.texts)))
            queries = {q: emb.embed_query(q) for q in plan.queries}
        return self._run(ops, plan, docs, queries)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        docs: list[list[float]] = []
        queries: dict[str, list[float]] = {}
        if self._index is not None:
            emb = self._index.embeddings
            if plan.texts:
                docs = list(await emb.aembed_documents(list(plan.texts)))
            vectors = await asyncio.gather(*(emb.aembed_query(q) for q in plan.queries))
            queries = dict(zip(plan.queries, vectors))
        # The core work (searches, one write) leaves the event loop; to_thread copies the
        # context, so receipt recorders around the await see the searches.
        return await asyncio.to_thread(self._run, ops, plan, docs, queries)

    def _plan(self, ops: list[Op]) -> _Plan:
        """Validate every op; keep the last put per key; list distinct texts and queries."""
        plan = _Plan()
        for op in ops:
            if not isinstance(op, (GetOp, SearchOp, ListNamespacesOp, PutOp)):
                raise InputError(f"unknown store operation {type(op).__name__}")
            validate_op_namespace(op)
            if isinstance(op, PutOp):
                if not op.namespace:
                    raise InvalidNamespaceError("Namespace cannot be empty.")
                if op.index is not None and op.index is not False and (
                        isinstance(op.index, str) or not isinstance(op.index, Sequence)):
                    raise InputError(f"index= must be False, None or a list of field paths, got {op.index!r}")
                plan.puts[(tuple(op.namespace), op.key)] = op
            elif isinstance(op, SearchOp):
                _check_page(op.limit, op.offset, "search")
                _filters.translate(op.filter)
                if op.query and self._index is not None and op.query not in plan.queries:
                    plan.queries.append(op.query)
            elif isinstance(op, ListNamespacesOp):
                _check_page(op.limit, op.offset, "list_namespaces")
        seen: set[str] = set()
        for (ns, key), op in plan.puts.items():
            if type(key) is not str:
                raise InputError(f"keys must be str, got {type(key).__name__}")
            check_id(ids.item_id(ns, key))  # length and Unicode, before anything changes
            if op.value is None:
                continue
            value = L.check_value(op.value, ns, key)
            plan.values[(ns, key)] = value
            pairs = [] if self._index is None or op.index is False else texts_of(value, self._index.paths_for(op.index))
            plan.fields[(ns, key)] = pairs
            for _, text in pairs:
                if text not in seen:
                    seen.add(text)
                    plan.texts.append(text)
        return plan

    def _run(self, ops: list[Op], plan: _Plan, docs: list[list[float]], queries: dict[str, list[float]]) -> list[Result]:
        if len(docs) != len(plan.texts):
            raise InputError(f"the embedder returned {len(docs)} vectors for {len(plan.texts)} texts")
        self._check_lengths(plan.texts, docs, "text")
        self._check_lengths(list(queries), list(queries.values()), "query")
        with self._lock:
            results: list[Result] = []
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(self._get(tuple(op.namespace), op.key))
                elif isinstance(op, SearchOp):
                    results.append(self._search(op, queries.get(op.query) if op.query else None))
                elif isinstance(op, ListNamespacesOp):
                    results.append(self._list_namespaces(op))
                else:
                    results.append(None)
            if plan.puts:
                self._apply(plan, docs)
            return results

    # ------------------------------------------------------------------ reads
    @staticmethod
    def _item(rec: Record | Hit, score: float | None = None, search: bool = False) -> Item:
        meta = rec.metadata
        args = dict(
            namespace=tuple(meta[L.NS]), key=meta[L.KEY], value=json.loads(rec.text or "{}"),
            created_at=L.parse_time(meta[L.CREATED]), updated_at=L.parse_time(meta[L.UPDATED]),
        )
        return SearchItem(**args, score=score) if search else Item(**args)

    def _get(self, namespace: tuple[str, ...], key: str) -> Item | None:
        if not namespace:
            return None
        found = self._store.get([ids.item_id(namespace, key)])
        return self._item(found[0]) if found else None

    def _scope(self, kind: str, prefix: tuple[str, ...], value_filter: Any) -> dict[str, Any]:
        base: dict[str, Any] = {L.KIND: kind}
        for i, label in enumerate(prefix):
            base[L.level_key(i)] = label
        return _and(base, _filters.translate(value_filter))

    def _search(self, op: SearchOp, query: list[float] | None) -> list[SearchItem]:
        limit, offset = _check_page(op.limit, op.offset, "search")
        prefix = tuple(op.namespace_prefix)
        if query is None:
            hits = self._store.search(self._unit, k=offset + limit, filter=self._scope(L.ITEM, prefix, op.filter))
            return [self._item(h, search=True) for h in hits[offset:]]
        scored, exhausted = self._ranked(query, prefix, op.filter, offset + limit)
        page = scored[offset: offset + limit]
        records = {r.id: r for r in self._store.get([ids.item_id(ns, key) for ns, key, _ in page])}
        out = [self._item(records[ids.item_id(ns, key)], score, search=True) for ns, key, score in page]
        if len(out) < limit and exhausted:  # unscored items follow every scored one
            start = max(0, offset - len(scored))
            rest = self._store.search(
                self._unit, k=start + limit - len(out),
                filter={**self._scope(L.ITEM, prefix, op.filter), L.NVEC: 0},
            )
            out += [self._item(h, search=True) for h in rest[start:]]
        return out

    def _ranked(
        self, query: list[float], prefix: tuple[str, ...], value_filter: Any, need: int
    ) -> tuple[list[tuple[tuple[str, ...], str, float]], bool]:
        """Distinct items by best vector: ``(namespace, key, score)``, at least ``need`` of
        them unless every match was seen (then ``exhausted`` is True)."""
        scope = self._scope(L.VEC, prefix, value_filter)
        total = len(self._store)
        k = max(need, 1)
        while True:
            hits = self._store.search(query, k=k, filter=scope)
            seen: set[ItemKey] = set()
            scored = []
            for h in hits:  # best vector first (score desc, then id: namespace, key)
                ik = (tuple(h.metadata[L.NS]), h.metadata[L.KEY])
                if ik not in seen:
                    seen.add(ik)
                    scored.append((ik[0], ik[1], h.score))
            exhausted = len(hits) < k or k >= total
            if len(scored) >= need or exhausted:
                return scored, exhausted
            k = min(2 * k, total)

    def _list_namespaces(self, op: ListNamespacesOp) -> list[tuple[str, ...]]:
        limit, offset = _check_page(op.limit, op.offset, "list_namespaces")
        clauses: list[dict[str, Any]] = []
        for cond in op.match_conditions or ():
            path = tuple(cond.path)
            if cond.match_type == "prefix":
                key = L.level_key
            elif cond.match_type == "suffix":
                key = L.rlevel_key
                path = path[::-1]
            else:
                raise InputError(f"match_type must be 'prefix' or 'suffix', got {cond.match_type!r}")
            clauses.append({L.DEPTH: {"$gte": len(path)}})
            clauses += [{key(i): label} for i, label in enumerate(path) if label != "*"]
        hits = self._store.search(self._unit, k=len(self._store), filter=_and({L.KIND: L.NSREC}, clauses))
        found = [tuple(h.metadata[L.NS]) for h in hits]
        if op.max_depth is not None:
            found = sorted({ns[: op.max_depth] for ns in found})
        else:
            found.sort()
        return found[offset: offset + limit]

    # ------------------------------------------------------------------ writes
    def _check_lengths(self, texts: list[str], vectors: list[Any], what: str) -> None:
        """Raise (before any write) if an embedding's length is not ``index['dims']``."""
        dims = self._store.dim
        for text, vec in zip(texts, vectors):
            n = len(vec) if isinstance(vec, (Sequence, np.ndarray)) else None
            if n != dims:
                got = f"length {n}" if n is not None else f"a {type(vec).__name__}"
                raise DimensionError(
                    f"index['dims'] is {dims} but the embedder returned {got} for the {what} {text[:40]!r}: "
                    f"set dims to the embedder's output length"
                )

    def _check_vectors(self, vectors: list[list[float]]) -> None:
        """Raise now (before any write) if the core would reject an embedding."""
        if not vectors:
            return
        rows = spec.quantize(vectors, self._store.dim)
        if self._store.metric == "cosine":
            zero = np.flatnonzero(~rows.any(axis=1))
            if len(zero):
                raise ZeroVectorError(f"embedding #{int(zero[0])} is zero after rounding; the cosine metric needs a direction")

    def _apply(self, plan: _Plan, docs: list[list[float]]) -> None:
        """Turn the batch's final puts into one core delete and one core upsert."""
        store = self._store
        keys = list(plan.puts)
        old = {r.id: r for r in store.get([ids.item_id(ns, k) for ns, k in keys])}
        spaces = sorted({ns for ns, _ in keys})
        counts = {tuple(r.metadata[L.NS]): r.metadata[L.COUNT] for r in store.get([ids.namespace_id(ns) for ns in spaces])}
        delta = dict.fromkeys(spaces, 0)
        now = self._clock() if plan.values else None
        if now is not None and not isinstance(now, datetime):
            raise InputError(f"clock() must return a datetime, got {type(now).__name__}")
        position = {t: i for i, t in enumerate(plan.texts)}
        deletes: list[str] = []
        up_ids: list[str] = []
        up_vecs: list[list[float]] = []
        up_texts: list[str | None] = []
        up_metas: list[dict[str, Any]] = []
        for ns, key in keys:
            iid = ids.item_id(ns, key)
            prev = old.get(iid)
            prev_nvec = prev.metadata[L.NVEC] if prev else 0
            value = plan.values.get((ns, key))
            if value is None:
                if prev is not None:
                    deletes += [iid] + [ids.vector_id(ns, key, i) for i in range(prev_nvec)]
                    delta[ns] -= 1
                continue
            pairs = plan.fields[(ns, key)]
            fields = L.value_fields(value)
            for i, (path, text) in enumerate(pairs):
                up_ids.append(ids.vector_id(ns, key, i))
                up_vecs.append(docs[position[text]])
                up_texts.append(text)
                up_metas.append(L.vec_metadata(ns, key, fields, path))
            deletes += [ids.vector_id(ns, key, i) for i in range(len(pairs), prev_nvec)]
            stamp = cast(datetime, now)  # set whenever the batch has a value to write
            created = L.parse_time(prev.metadata[L.CREATED]) if prev else stamp
            up_ids.append(iid)
            up_vecs.append(self._unit)
            up_texts.append(L.value_text(value))
            up_metas.append(L.item_metadata(ns, key, fields, created, stamp, len(pairs)))
            if prev is None:
                delta[ns] += 1
        for ns in spaces:
            before = counts.get(ns, 0)
            after = before + delta[ns]
            if after == before:
                continue
            if after == 0:
                deletes.append(ids.namespace_id(ns))
            else:
                up_ids.append(ids.namespace_id(ns))
                up_vecs.append(self._unit)
                up_texts.append(None)
                up_metas.append(L.ns_metadata(ns, after))
        self._check_vectors(up_vecs)
        # One atomic core event: a crash can never leave half of a batch applied.
        if up_ids:
            store.write(delete=deletes, vectors=up_vecs, ids=up_ids, texts=up_texts, metadatas=up_metas)
        elif deletes:
            store.delete(deletes)
