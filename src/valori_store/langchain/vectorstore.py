"""ValoriVectorStore: a LangChain ``VectorStore`` over the deterministic core store.

Every read goes through :meth:`ValoriStore.search` or :meth:`ValoriStore.mmr_search` with
all restrictions in the core filter language (callable filters become ``$ids``), so
results are exact, ordered by (score desc, id asc) and bit-identical everywhere. Writes
are atomic upserts per batch. The core store is thread-safe; this class only adds a lock
around the lazy creation of the core store (when ``dim`` is inferred from the first
embedding). Async methods are native: embeddings use ``aembed_*`` and core calls run in a
worker thread (``asyncio.to_thread``), so the event loop is never blocked by a scan.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from typing_extensions import Self, override

from valori_store import spec
from valori_store.errors import InputError, NotFoundError
from valori_store.langchain.documents import assign_ids, record_to_document, resolve_ids
from valori_store.langchain.filtering import to_core_filter
from valori_store.langchain.relevance import query_self_raw, relevance, score_relevance_fn
from valori_store.records import Checkpoint, Hit
from valori_store.store.facade import ValoriStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.embeddings import Embeddings

__all__ = ["ValoriVectorStore"]


#: Search options that retrievers pass along with shared ``search_kwargs`` and that other
#: vector stores accept on every search method; they are ignored where they do not apply
#: (e.g. ``fetch_k`` on a plain similarity search), so switching ``search_type`` works.
RETRIEVER_OPTIONS = frozenset({"fetch_k", "lambda_mult", "score_threshold"})


def _no_extra(kwargs: dict[str, Any], method: str) -> None:
    """Reject unknown keyword arguments (typos such as ``filters=`` must not pass silently);
    the retriever options in :data:`RETRIEVER_OPTIONS` are accepted and ignored by searches."""
    unknown = set(kwargs)
    if method.lstrip("a").startswith(("similarity_search", "max_marginal")):
        unknown -= RETRIEVER_OPTIONS
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError(f"{method}() got unexpected keyword argument(s): {names}")


def _check_batch_size(batch_size: Any, n: int) -> int:
    if batch_size is None:
        return max(n, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int or None (one batch), got {batch_size!r}")
    return batch_size


def _docs(hits: list[Hit]) -> list[Document]:
    return [record_to_document(h) for h in hits]


def _docs_scores(hits: list[Hit]) -> list[tuple[Document, float]]:
    return [(record_to_document(h), h.score) for h in hits]


class ValoriVectorStore(VectorStore):
    """LangChain vector store with exact, deterministic, replayable retrieval.

    Setup:
        ``pip install "valori-store[langchain]"``

    Instantiate:
        ``ValoriVectorStore(embedding)`` keeps records in memory; ``dim`` is inferred from
        the first embedding unless given. ``path=`` keeps a durable store in a directory
        (opened if it exists; ``dim``/``metric`` are then read back). ``store=`` wraps an
        existing :class:`~valori_store.ValoriStore`. ``metric`` is ``"cosine"`` (default
        for new stores), ``"dot"`` or ``"l2"``.

    Add / delete:
        ``add_documents``/``add_texts`` upsert: ``ids=`` wins over ``Document.id``; missing
        ids are generated deterministically; each ``batch_size`` batch is atomic; caller
        documents and metadata are never mutated. ``delete(ids)`` ignores missing ids;
        ``delete(None)`` raises (use ``delete(vs.store.ids())`` to empty the store).

    Search:
        ``similarity_search*`` return Documents with id, exact text and type-exact
        metadata. Scores are the core's: higher is more similar (``l2``: minus the
        distance). Relevance scores are in [0, 1] (see :mod:`.relevance`). MMR runs in the
        core with exact integer similarities.

    Filter:
        a core filter dict (docs/filters.md), a callable ``Document -> bool``, or a list of
        those (ANDed); applied before ranking, so ``k`` results come back when ``k`` match.

    Async:
        every method has a native ``a``-prefixed variant.

    Retriever:
        ``as_retriever(search_type="similarity" | "similarity_score_threshold" | "mmr")``.
    """

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

    # ------------------------------------------------------------------ writes
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
        return text_list, metas, id_list, _check_batch_size(batch_size, n)

    def _upsert(
        self, vectors: Sequence[Sequence[float]], ids: list[str | None], texts: list[str],
        metas: list[dict[str, Any] | None],
    ) -> list[str]:
        if len(vectors) != len(texts):
            raise InputError(f"the embedding returned {len(vectors)} vectors for {len(texts)} texts")
        core = self._core_for(len(vectors[0]))
        final = assign_ids(ids, core.log_length, texts, metas)
        return core.upsert(vectors, ids=final, texts=texts, metadatas=metas)

    def _add(self, texts: list[str], metas: list[Any], ids: list[str | None], size: int) -> list[str]:
        out: list[str] = []
        for lo in range(0, len(texts), size):
            chunk = texts[lo : lo + size]
            vectors = self._embedding.embed_documents(chunk)
            out += self._upsert(vectors, ids[lo : lo + size], chunk, metas[lo : lo + size])
        return out

    async def _aadd(self, texts: list[str], metas: list[Any], ids: list[str | None], size: int) -> list[str]:
        out: list[str] = []
        for lo in range(0, len(texts), size):
            chunk = texts[lo : lo + size]
            vectors = await self._aembed_documents(chunk)
            out += await asyncio.to_thread(self._upsert, vectors, ids[lo : lo + size], chunk, metas[lo : lo + size])
        return out

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

    @override
    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids (see the class doc for id rules)."""
        _no_extra(kwargs, "add_texts")
        return self._add(*self._prepare(texts, metadatas, ids, None, batch_size))

    @override
    async def aadd_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> list[str]:
        _no_extra(kwargs, "aadd_texts")
        return await self._aadd(*self._prepare(texts, metadatas, ids, None, batch_size))

    def _doc_parts(self, documents: Sequence[Document]) -> tuple[list[str], list[Any], list[str | None]]:
        for i, d in enumerate(documents):
            if not isinstance(d, Document):
                raise InputError(f"document #{i} must be a langchain Document, got {type(d).__name__}")
        return [d.page_content for d in documents], [d.metadata for d in documents], [d.id for d in documents]

    @override
    def add_documents(
        self, documents: list[Document], ids: list[str] | None = None, *, batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert documents: ``ids=`` wins over ``Document.id``; missing ids are generated."""
        _no_extra(kwargs, "add_documents")
        texts, metas, doc_ids = self._doc_parts(documents)
        return self._add(*self._prepare(texts, metas, ids, doc_ids, batch_size))

    @override
    async def aadd_documents(
        self, documents: list[Document], ids: list[str] | None = None, *, batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        _no_extra(kwargs, "aadd_documents")
        texts, metas, doc_ids = self._doc_parts(documents)
        return await self._aadd(*self._prepare(texts, metas, ids, doc_ids, batch_size))

    @override
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete records by id (missing ids are ignored); returns True.

        ``delete(None)`` raises InputError rather than silently doing nothing or wiping the
        store; to empty the store call ``delete(vs.store.ids())``.
        """
        _no_extra(kwargs, "delete")
        if ids is None:
            raise InputError("delete(None) would delete every record; pass the ids to delete "
                             "(e.g. vs.delete(vs.store.ids()) to empty the store)")
        if isinstance(ids, str):
            raise InputError("delete takes a list of ids, not a single str; write delete([id])")
        ids = list(ids)
        if self._store is not None:
            self._store.delete(ids)
        return True

    @override
    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    @override
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents for the ids that exist, in the order given (missing ids are skipped)."""
        if isinstance(ids, str):
            raise InputError("get_by_ids takes a list of ids, not a single str")
        if self._store is None:
            return []
        return [record_to_document(r) for r in self._store.get(list(ids))]

    @override
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await asyncio.to_thread(self.get_by_ids, ids)

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
        hits = self._search(vector, k, filter)
        if not hits:
            return []
        core = self._store
        assert core is not None  # hits imply a store
        metric = core.metric
        self_raw = 0 if metric == "l2" else query_self_raw(metric, vector, core.dim)
        return [(record_to_document(h), relevance(metric, h.score, h.raw, self_raw)) for h in hits]

    # ------------------------------------------------------------------ sync search
    @override
    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        _no_extra(kwargs, "similarity_search")
        return _docs(self._search(self._embedding.embed_query(query), k, filter))

    @override
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """(Document, score) pairs; the core's score: higher is more similar (l2: -distance)."""
        _no_extra(kwargs, "similarity_search_with_score")
        return _docs_scores(self._search(self._embedding.embed_query(query), k, filter))

    @override
    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "similarity_search_by_vector")
        return _docs(self._search(embedding, k, filter))

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        _no_extra(kwargs, "similarity_search_with_score_by_vector")
        return _docs_scores(self._search(embedding, k, filter))

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return score_relevance_fn(self.metric)

    @override
    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        _no_extra(kwargs, "similarity_search_with_relevance_scores")
        return self._relevance(self._embedding.embed_query(query), k, filter)

    @override
    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR in the core: exact integer similarities, ``lambda_mult`` as an exact fraction."""
        _no_extra(kwargs, "max_marginal_relevance_search")
        return _docs(self._mmr(self._embedding.embed_query(query), k, fetch_k, lambda_mult, filter))

    @override
    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "max_marginal_relevance_search_by_vector")
        return _docs(self._mmr(embedding, k, fetch_k, lambda_mult, filter))

    # ------------------------------------------------------------------ async search
    @override
    async def asimilarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        _no_extra(kwargs, "asimilarity_search")
        vector = await self._aembed_query(query)
        return _docs(await asyncio.to_thread(self._search, vector, k, filter))

    @override
    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        _no_extra(kwargs, "asimilarity_search_with_score")
        vector = await self._aembed_query(query)
        return _docs_scores(await asyncio.to_thread(self._search, vector, k, filter))

    @override
    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "asimilarity_search_by_vector")
        return _docs(await asyncio.to_thread(self._search, embedding, k, filter))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        _no_extra(kwargs, "asimilarity_search_with_score_by_vector")
        return _docs_scores(await asyncio.to_thread(self._search, embedding, k, filter))

    @override
    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        _no_extra(kwargs, "asimilarity_search_with_relevance_scores")
        vector = await self._aembed_query(query)
        return await asyncio.to_thread(self._relevance, vector, k, filter)

    @override
    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "amax_marginal_relevance_search")
        vector = await self._aembed_query(query)
        return _docs(await asyncio.to_thread(self._mmr, vector, k, fetch_k, lambda_mult, filter))

    @override
    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        _no_extra(kwargs, "amax_marginal_relevance_search_by_vector")
        return _docs(await asyncio.to_thread(self._mmr, embedding, k, fetch_k, lambda_mult, filter))

    # ------------------------------------------------------------------ constructors
    @classmethod
    @override
    def from_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> Self:
        """A new store (``kwargs`` go to the constructor) holding ``texts``."""
        vs = cls(embedding, **kwargs)
        vs.add_texts(texts, metadatas, ids=ids, batch_size=batch_size)
        return vs

    @classmethod
    @override
    async def afrom_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> Self:
        vs = await asyncio.to_thread(lambda: cls(embedding, **kwargs))
        await vs.aadd_texts(texts, metadatas, ids=ids, batch_size=batch_size)
        return vs

    # ------------------------------------------------------------------ state
    def state_hash(self) -> str:
        """The core state hash: equal content, equal hash, whatever the history."""
        return self._require_store("state_hash()").state_hash()

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Record a checkpoint in the store's history; returns (seq, state_hash, label)."""
        return self._require_store("checkpoint()").checkpoint(label)

    def snapshot(self, label: str | None = None) -> Checkpoint:
        """The same as :meth:`checkpoint`: a cheap, logged point to :meth:`restore` to.

        It is not a copy: for a portable copy use :meth:`save` (or ``store.to_bytes()``).
        """
        return self.checkpoint(label)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind to a checkpoint (a Checkpoint, a label or a seq); logged as an event."""
        return self._require_store("restore()").restore(target)

    def history(self) -> list[Checkpoint]:
        return [] if self._store is None else self._store.history()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the canonical snapshot file (atomic); reload with :meth:`load`."""
        self._require_store("save()").save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedding: Embeddings) -> Self:
        """A new in-memory store holding the snapshot file at ``path`` (digest-checked)."""
        return cls(embedding, store=ValoriStore.load(path))

    def close(self) -> None:
        """Close the core store (releases a durable directory's lock)."""
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
