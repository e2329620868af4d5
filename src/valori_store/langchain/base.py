"""The core store behind a :class:`~valori_store.langchain.ValoriVectorStore`: construction,
lazy creation, argument preparation and the three core reads every search goes through.

The core store is thread-safe; this class only adds a lock around the lazy creation of the
core store (when ``dim`` is inferred from the first embedding). Every read goes through
:meth:`ValoriStore.search`, :meth:`ValoriStore.mmr_search` or
:meth:`ValoriStore.search_with_relevance` with all restrictions in the core filter
language (callable filters become ``$ids``, see :mod:`.filtering`).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from typing_extensions import override

from valori_store import Hit, ValoriStore, spec
from valori_store.errors import InputError, NotFoundError
from valori_store.langchain.documents import assign_ids, record_to_document, resolve_ids
from valori_store.langchain.filtering import to_core_filter
from valori_store.langchain.options import check_batch_size

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["CoreBackedVectorStore"]


class CoreBackedVectorStore(VectorStore):
    """The state and core access of :class:`~valori_store.langchain.ValoriVectorStore`
    (see that class for the public behaviour)."""

    def __init__(
        self,
        embedding: Embeddings,
        dim: int | None = None,
        metric: str | None = None,
        path: str | os.PathLike[str] | None = None,
        store: ValoriStore | None = None,
        durability: str = "fsync",
    ) -> None:
        self._embedding = embedding
        self._create_lock = threading.Lock()
        self._path = path
        self._durability = durability
        self._dim = None if dim is None else spec.check_dim(dim)
        self._metric = None if metric is None else spec.check_metric(metric)
        self._store: ValoriStore | None = None
        if store is not None:
            if not isinstance(store, ValoriStore):
                raise InputError(f"store must be a ValoriStore, got {type(store).__name__}")
            if path is not None:
                raise InputError("pass either store= or path=, not both")
            if self._dim is not None and self._dim != store.dim:
                raise InputError(f"dim={self._dim} but the given store has dim {store.dim}")
            if self._metric is not None and self._metric != store.metric:
                raise InputError(f"metric={self._metric!r} but the given store uses {store.metric!r}")
            self._store = store
        elif path is not None:
            try:
                self._store = ValoriStore.open(path, dim=self._dim, metric=self._metric, durability=durability)
            except NotFoundError:
                if self._dim is not None:
                    raise
                # no store there yet and no dim: created on the first add
        elif self._dim is not None:
            self._store = ValoriStore(self._dim, self._metric or "cosine")

    # ------------------------------------------------------------------ properties
    @property
    @override
    def embeddings(self) -> Embeddings:
        """The embedding model used for documents and queries."""
        return self._embedding

    @property
    def store(self) -> ValoriStore | None:
        """The core store (``None`` until the first add when ``dim`` is inferred)."""
        return self._store

    @property
    def metric(self) -> str:
        return self._store.metric if self._store is not None else (self._metric or "cosine")

    @property
    def dim(self) -> int | None:
        return self._store.dim if self._store is not None else self._dim

    def __len__(self) -> int:
        return 0 if self._store is None else len(self._store)

    def __repr__(self) -> str:
        return f"ValoriVectorStore({self._store!r})" if self._store is not None else (
            f"ValoriVectorStore(empty, metric={self.metric!r}, dim inferred on first add)")

    def _core_for(self, dim: int) -> ValoriStore:
        """The core store, created on first use with ``dim`` (the first embedding's length)."""
        core = self._store
        if core is not None:
            return core
        with self._create_lock:
            if self._store is None:
                metric = self._metric or "cosine"
                if self._path is not None:
                    self._store = ValoriStore.open(self._path, dim=dim, metric=metric, durability=self._durability)
                else:
                    self._store = ValoriStore(dim, metric)
            return self._store

    def _require_store(self, what: str) -> ValoriStore:
        if self._store is None:
            raise InputError(
                f"{what} needs a store, and none exists yet: its dim is inferred from the first "
                f"added document (or pass dim=)"
            )
        return self._store

    # ------------------------------------------------------------------ write preparation
    def _prepare(
        self, texts: Iterable[str], metadatas: Sequence[dict[str, Any] | None] | None,
        ids: Sequence[str | None] | None, doc_ids: Sequence[str | None] | None, batch_size: int | None,
    ) -> tuple[list[str], list[dict[str, Any] | None], list[str | None], int]:
        text_list = list(texts)
        for i, t in enumerate(text_list):
            if not isinstance(t, str):
                raise InputError(f"text #{i} must be a str, got {type(t).__name__}")
        n = len(text_list)
        if metadatas is None:
            metas: list[dict[str, Any] | None] = [None] * n
        else:
            metas = list(metadatas)
            if len(metas) != n:
                raise InputError(f"metadatas has {len(metas)} entries but {n} texts were given; pass one per text")
        id_list = resolve_ids(n, ids, doc_ids)
        return text_list, metas, id_list, check_batch_size(batch_size, n)

    def _doc_parts(self, documents: Sequence[Document]) -> tuple[list[str], list[Any], list[str | None]]:
        for i, d in enumerate(documents):
            if not isinstance(d, Document):
                raise InputError(f"document #{i} must be a langchain Document, got {type(d).__name__}")
        return [d.page_content for d in documents], [d.metadata for d in documents], [d.id for d in documents]

    def _upsert(
        self, vectors: Sequence[Sequence[float]], ids: list[str | None], texts: list[str],
        metas: list[dict[str, Any] | None],
    ) -> list[str]:
        if len(vectors) != len(texts):
            raise InputError(f"the embedding returned {len(vectors)} vectors for {len(texts)} texts")
        core = self._core_for(len(vectors[0]))
        final = assign_ids(ids, core.log_length, texts, metas)
        return core.upsert(vectors, ids=final, texts=texts, metadatas=metas)

    async def _aembed_documents(self, texts: list[str]) -> list[list[float]]:
        fn = getattr(self._embedding, "aembed_documents", None)
        if fn is None:
            return await asyncio.to_thread(self._embedding.embed_documents, texts)
        return await fn(texts)

    async def _aembed_query(self, text: str) -> list[float]:
        fn = getattr(self._embedding, "aembed_query", None)
        if fn is None:
            return await asyncio.to_thread(self._embedding.embed_query, text)
        return await fn(text)

    # ------------------------------------------------------------------ core reads
    def _search(self, vector: Sequence[float], k: int, filter: Any) -> list[Hit]:
        core = self._store
        if core is None:
            return []
        return core.search(vector, k=k, filter=to_core_filter(core, filter))

    def _mmr(self, vector: Sequence[float], k: int, fetch_k: int, lambda_mult: float, filter: Any) -> list[Hit]:
        core = self._store
        if core is None:
            return []
        return core.mmr_search(vector, k=k, fetch_k=fetch_k, lambda_mult=lambda_mult,
                               filter=to_core_filter(core, filter))

    def _relevance(self, vector: Sequence[float], k: int, filter: Any) -> list[tuple[Document, float]]:
        """(Document, relevance) pairs; the relevance comes from the core, computed on the
        exact integers (:meth:`ValoriStore.search_with_relevance`)."""
        core = self._store
        if core is None:
            return []
        pairs = core.search_with_relevance(vector, k=k, filter=to_core_filter(core, filter))
        return [(record_to_document(h), rel) for h, rel in pairs]
