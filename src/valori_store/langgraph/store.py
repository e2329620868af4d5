"""ValoriMemoryStore: a LangGraph ``BaseStore`` kept entirely in a core ValoriStore.

Invariants:

* The core store is the only persistence: values, timestamps and vectors are core records
  and namespaces are derived from them (layout in :mod:`._layout`), so
  ``checkpoint``/``restore``, snapshots, ``state_hash`` and durable directories cover the
  whole memory.
* A query search is ``ValoriStore.search`` over the vector records, with the namespace
  prefix and the value filter in the core filter language (applied before top-k);
  listings and namespaces are ``ValoriStore.select`` over the item records (records
  without a vector): not searches, so they emit no receipts (:mod:`._listing`).
* Order is total: query searches by score (exact integer) descending, then namespace,
  then key; searches without a query and unscored items by namespace, then key;
  namespaces in tuple order.
* A batch validates and embeds everything before it changes anything, and writes as ONE
  core event (:mod:`._writes`); reads in a batch see the state before the batch's writes
  (as in ``InMemoryStore``); for one key the last put of a batch wins.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import numpy as np
from langgraph.store.base import (
    BaseStore,
    GetOp,
    InvalidNamespaceError,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
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

from valori_store import Checkpoint, ValoriStore
from valori_store.errors import DimensionError, InputError
from valori_store.langgraph import _filters, _listing, _writes
from valori_store.langgraph import _ids as ids
from valori_store.langgraph import _layout as L
from valori_store.langgraph._embed import Index, texts_of
from valori_store.state.validate import check_id


def utc_now() -> datetime:
    """The default clock: the current time in UTC (inject ``clock=`` for reproducible states)."""
    return datetime.now(timezone.utc)


def _check_page(limit: Any, offset: Any, what: str) -> tuple[int, int]:
    for name, v in (("limit", limit), ("offset", offset)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise InputError(f"{what} {name} must be a non-negative int, got {v!r}")
    return int(limit), int(offset)


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
        index = f"dims={self._index.dims}" if self._index else None
        return f"ValoriMemoryStore(index={index}, store={self._store!r})"

    # ------------------------------------------------------------------ batches
    def batch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        emb = self._index.embeddings if self._index is not None else None
        docs = list(emb.embed_documents(list(plan.texts))) if emb is not None and plan.texts else []
        queries = {q: emb.embed_query(q) for q in plan.queries} if emb is not None else {}
        return self._run(ops, plan, docs, queries)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        ops = list(ops)
        plan = self._plan(ops)
        emb = self._index.embeddings if self._index is not None else None
        docs = list(await emb.aembed_documents(list(plan.texts))) if emb is not None and plan.texts else []
        found = await asyncio.gather(*(emb.aembed_query(q) for q in plan.queries)) if emb is not None else []
        # The core work (searches, one write) leaves the event loop; to_thread copies the
        # context, so receipt recorders around the await see the searches.
        return await asyncio.to_thread(self._run, ops, plan, docs, dict(zip(plan.queries, found)))

    def _plan(self, ops: list[Op]) -> _writes.Plan:
        """Validate every op; keep the last put per key; list distinct texts and queries."""
        plan = _writes.Plan()
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

    def _run(
        self, ops: list[Op], plan: _writes.Plan, docs: list[list[float]], queries: dict[str, list[float]]
    ) -> list[Result]:
        if len(docs) != len(plan.texts):
            raise InputError(f"the embedder returned {len(docs)} vectors for {len(plan.texts)} texts")
        self._check_lengths(plan.texts, docs, "text")
        self._check_lengths(list(queries), list(queries.values()), "query")
        with self._lock:
            results: list[Result] = []
            for op in ops:
                if isinstance(op, GetOp):
                    results.append(_listing.get_item(self._store, tuple(op.namespace), op.key))
                elif isinstance(op, SearchOp):
                    limit, offset = _check_page(op.limit, op.offset, "search")
                    query = queries.get(op.query) if op.query else None
                    results.append(_listing.search(self._store, tuple(op.namespace_prefix), op.filter, query,
                                                   limit, offset))
                elif isinstance(op, ListNamespacesOp):
                    limit, offset = _check_page(op.limit, op.offset, "list_namespaces")
                    results.append(_listing.namespaces(self._store, op.match_conditions, op.max_depth, limit, offset))
                else:
                    results.append(None)
            if plan.puts:
                _writes.apply(self._store, plan, docs, self._clock)
            return results

    # ------------------------------------------------------------------ checks
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
