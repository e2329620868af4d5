"""``ValoriVectorStore``: a LlamaIndex vector store on the deterministic core store.

Thin over :class:`valori_store.ValoriStore`: nodes <-> records live in :mod:`.nodes`,
filter translation in :mod:`.filters`, snapshot files in :mod:`.persistence`. Every
ranked query goes through ``ValoriStore.search`` or ``ValoriStore.mmr_search`` with all
restrictions expressed as one core filter (applied before ranking), so results — ids,
order and scores — are bit-identical wherever the same operations ran. Listings without
a query vector (``get_nodes``, deletes, metadata-only queries) use ``ValoriStore.select``
/ ``select_ids``: the core evaluates the filter on one consistent view; no vector search.

Orders: query results best first (score descending, then id ascending as UTF-8 bytes;
MMR in pick order); ``get_nodes`` and metadata-only queries in id order.
"""

from __future__ import annotations

import asyncio
import math
import os
from fractions import Fraction
from typing import Any, List, Optional, Sequence

from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.schema import BaseNode
from llama_index.core.vector_stores.types import (
    BasePydanticVectorStore,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
    VectorStoreQueryResult,
)
from typing_extensions import override

from valori_store import Checkpoint, Hit, Record, ValoriStore
from valori_store.errors import InputError
from valori_store.llamaindex.errors import UnsupportedQueryModeError
from valori_store.llamaindex.filters import query_filter
from valori_store.llamaindex.nodes import REF_DOC_ID_KEY, node_to_record, record_to_node
from valori_store.llamaindex.persistence import (
    DEFAULT_NAMESPACE,
    DEFAULT_PERSIST_DIR,
    DEFAULT_PERSIST_FNAME,
    find_in_persist_dir,
    load_snapshot,
    save_snapshot,
)

__all__ = ["DEFAULT_MMR_PREFETCH_FACTOR", "DEFAULT_MMR_THRESHOLD", "ValoriVectorStore"]

DEFAULT_MMR_THRESHOLD = 0.5
"""MMR lambda when neither the query nor the kwargs give ``mmr_threshold`` (LlamaIndex's default)."""
DEFAULT_MMR_PREFETCH_FACTOR = 4
"""MMR picks among the exact top ``ceil(factor * similarity_top_k)`` candidates by default."""
METADATA_ONLY_SCORE = 1.0
"""Similarity reported for each node of a metadata-only query (``query_embedding=None``)."""

_SUPPORTED_MODES = (VectorStoreQueryMode.DEFAULT, VectorStoreQueryMode.MMR)


class ValoriVectorStore(BasePydanticVectorStore):
    """Deterministic LlamaIndex vector store backed by valori-store.

    ``ValoriVectorStore(dim=384)`` keeps records in memory; ``ValoriVectorStore(path="dir",
    dim=384)`` opens (or creates) a durable store directory (dim and metric are read back
    when it exists); ``ValoriVectorStore(store=core)`` wraps an existing core store.
    ``metric`` is ``"cosine"`` (default), ``"dot"`` or ``"l2"``; scores are always "higher
    is more similar" (``-distance`` for l2).
    """

    stores_text: bool = True
    is_embedding_query: bool = True
    flat_metadata: bool = Field(default=False, description="Reject nested metadata values, like other stores.")
    dim: int = Field(description="Vector dimension of the core store.")
    metric: str = Field(default="cosine", description="cosine, dot or l2.")
    path: Optional[str] = Field(default=None, description="Durable store directory; None for in memory.")
    durability: Optional[str] = Field(default=None, description="fsync, batch or none (durable stores).")

    _store: ValoriStore = PrivateAttr()

    def __init__(
        self,
        dim: Optional[int] = None,
        metric: Optional[str] = None,
        path: Optional[str | os.PathLike[str]] = None,
        durability: str = "fsync",
        *,
        store: Optional[ValoriStore] = None,
        flat_metadata: bool = False,
        **kwargs: Any,
    ) -> None:
        if store is not None:
            if path is not None:
                raise InputError("pass either store= or path=, not both")
            if (dim is not None and dim != store.dim) or (metric is not None and metric != store.metric):
                raise InputError(
                    f"dim/metric ({dim}, {metric}) differ from the given store's ({store.dim}, {store.metric})"
                )
            core = store
        elif path is not None:
            core = ValoriStore.open(path, dim=dim, metric=metric, durability=durability)
        else:
            if dim is None:
                raise InputError("ValoriVectorStore needs dim= (the embedding size), path= or store=")
            core = ValoriStore(dim, metric or "cosine")
        super().__init__(
            dim=core.dim,
            metric=core.metric,
            path=None if core.path is None else str(core.path),
            durability=core.durability,
            flat_metadata=flat_metadata,
            **kwargs,
        )
        self._store = core

    @classmethod
    @override
    def class_name(cls) -> str:
        return "ValoriVectorStore"

    @property
    @override
    def client(self) -> ValoriStore:
        """The core :class:`~valori_store.ValoriStore`."""
        return self._store

    # ------------------------------------------------------------------ writes
    @override
    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> List[str]:
        """Upsert ``nodes`` (atomically: all or none); returns their ids in input order."""
        if not nodes:
            return []
        ids, texts, metas, vectors = [], [], [], []
        for node in nodes:
            if node.embedding is None:
                raise InputError(f"node {node.node_id!r} has no embedding; embed nodes before adding them")
            rid, text, meta = node_to_record(node, self.flat_metadata)
            ids.append(rid)
            texts.append(text)
            metas.append(meta)
            vectors.append(node.embedding)
        return self._store.upsert(vectors, ids=ids, texts=texts, metadatas=metas)

    @override
    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Delete every node whose source document is ``ref_doc_id``."""
        if not isinstance(ref_doc_id, str):
            raise InputError(f"ref_doc_id must be a str, got {type(ref_doc_id).__name__}")
        self._store.delete(self._store.select_ids({REF_DOC_ID_KEY: ref_doc_id}))

    @override
    def delete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        """Delete the nodes in ``node_ids`` that also match ``filters``.

        ``node_ids=None`` means every node (so ``delete_nodes()`` deletes all, like
        SimpleVectorStore); ``node_ids=[]`` deletes nothing.
        """
        if node_ids is not None and len(node_ids) == 0:
            return
        self._store.delete(self._store.select_ids(query_filter(filters, node_ids=node_ids)))

    @override
    def clear(self) -> None:
        """Delete every node (one logged delete event)."""
        self._store.delete(self._store.ids())

    # ------------------------------------------------------------------ reads
    @override
    def get_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        """Nodes in ``node_ids`` (None: all) matching ``filters``, in id order; missing ids skipped."""
        if node_ids is not None and len(node_ids) == 0:
            return []
        records = self._store.select(query_filter(filters, node_ids=node_ids))
        return [_node(rec) for rec in records]

    @override
    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """Top ``similarity_top_k`` nodes for ``query`` (see the module docstring for orders).

        ``query_embedding=None`` is a metadata-only query: the first ``similarity_top_k``
        matching nodes in id order, each with similarity 1.0. MMR takes ``mmr_threshold``
        (lambda: 1 = relevance only, 0 = diversity only) from the query, else from
        ``kwargs``, else 0.5, and picks among the exact top ``mmr_prefetch_k`` candidates
        (default ``ceil(mmr_prefetch_factor * similarity_top_k)``, factor 4).
        """
        mode = VectorStoreQueryMode(query.mode)
        if mode not in _SUPPORTED_MODES:
            raise UnsupportedQueryModeError(
                f"ValoriVectorStore supports query modes default and mmr, not {mode.value!r}"
            )
        flt = query_filter(query.filters, query.node_ids, query.doc_ids) or None
        k = query.similarity_top_k
        if query.query_embedding is None:
            if isinstance(k, bool) or not isinstance(k, int) or k < 0:
                raise InputError(f"similarity_top_k must be a non-negative int, got {k!r}")
            records = self._store.select(flt, limit=k)
            return VectorStoreQueryResult(
                nodes=[_node(r) for r in records],
                similarities=[METADATA_ONLY_SCORE] * len(records),
                ids=[r.id for r in records],
            )
        if mode == VectorStoreQueryMode.MMR:
            lam = query.mmr_threshold if query.mmr_threshold is not None else kwargs.get("mmr_threshold")
            hits = self._store.mmr_search(
                query.query_embedding,
                k=k,
                fetch_k=_prefetch(k, kwargs),
                lambda_mult=DEFAULT_MMR_THRESHOLD if lam is None else lam,
                filter=flt,
            )
        else:
            hits = self._store.search(query.query_embedding, k=k, filter=flt)
        return _result(hits)

    # ------------------------------------------------------------------ async
    @override
    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> List[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    @override
    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    @override
    async def adelete_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
        **delete_kwargs: Any,
    ) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    @override
    async def aget_nodes(
        self,
        node_ids: Optional[List[str]] = None,
        filters: Optional[MetadataFilters] = None,
    ) -> List[BaseNode]:
        return await asyncio.to_thread(self.get_nodes, node_ids, filters)

    @override
    async def aclear(self) -> None:
        await asyncio.to_thread(self.clear)

    @override
    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)

    # ------------------------------------------------------------------ persistence
    @override
    def persist(
        self,
        persist_path: str = os.path.join(DEFAULT_PERSIST_DIR, f"{DEFAULT_NAMESPACE}__{DEFAULT_PERSIST_FNAME}"),
        fs: Any = None,
    ) -> None:
        """Write the canonical binary snapshot to ``persist_path`` (atomically on local disk)."""
        save_snapshot(self._store, persist_path, fs)

    @classmethod
    def from_persist_path(cls, persist_path: str, fs: Any = None, **kwargs: Any) -> "ValoriVectorStore":
        """An in-memory store loaded from a snapshot written by :meth:`persist`."""
        return cls(store=load_snapshot(persist_path, fs), **kwargs)

    @classmethod
    def from_persist_dir(
        cls,
        persist_dir: str = DEFAULT_PERSIST_DIR,
        namespace: str = DEFAULT_NAMESPACE,
        fs: Any = None,
        **kwargs: Any,
    ) -> "ValoriVectorStore":
        """Load ``{namespace}__vector_store.valori`` from ``persist_dir``, else the
        ``{namespace}__vector_store.json`` that ``StorageContext.persist`` wrote through us."""
        return cls.from_persist_path(find_in_persist_dir(persist_dir, namespace, fs), fs=fs, **kwargs)

    # ------------------------------------------------------------------ snapshots
    def state_hash(self) -> str:
        """Hex digest of the canonical state (equal content, equal hash)."""
        return self._store.state_hash()

    def checkpoint(self, label: Optional[str] = None) -> Checkpoint:
        """Record a checkpoint in the core event log."""
        return self._store.checkpoint(label)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind to a checkpoint (a Checkpoint, a label or a seq); logged, history kept."""
        return self._store.restore(target)

    def history(self) -> List[Checkpoint]:
        return self._store.history()

    def close(self) -> None:
        """Close the core store (releases a durable store's directory lock)."""
        self._store.close()


def _node(rec: Record | Hit) -> BaseNode:
    return record_to_node(rec.id, rec.text, rec.metadata)


def _result(hits: Sequence[Hit]) -> VectorStoreQueryResult:
    return VectorStoreQueryResult(
        nodes=[_node(h) for h in hits], similarities=[h.score for h in hits], ids=[h.id for h in hits]
    )


def _prefetch(k: Any, kwargs: dict[str, Any]) -> Any:
    """MMR candidate count: ``mmr_prefetch_k`` or ``ceil(mmr_prefetch_factor * k)`` (exact)."""
    fetch_k = kwargs.get("mmr_prefetch_k")
    if fetch_k is not None:
        return fetch_k
    factor = kwargs.get("mmr_prefetch_factor", DEFAULT_MMR_PREFETCH_FACTOR)
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor < 1:
        raise InputError(f"mmr_prefetch_factor must be a number >= 1, got {factor!r}")
    if isinstance(k, bool) or not isinstance(k, int):
        return k  # the core reports the bad k
    return math.ceil(Fraction(factor) * k)
