"""ValoriVectorStore: a LangChain ``VectorStore`` over the deterministic core store.

Every read goes through :meth:`ValoriStore.search`, :meth:`ValoriStore.mmr_search` or
:meth:`ValoriStore.search_with_relevance` with all restrictions in the core filter
language (callable filters become ``$ids``), so results are exact, ordered by (score desc,
id asc) and bit-identical everywhere. Writes are atomic upserts per batch.

The class is assembled from cohesive parts: :mod:`.base` (construction, lazy creation of
the core store, the core reads), :mod:`.async_methods` (the native async variants),
:mod:`.state` (state hash, checkpoints, snapshot files); this module holds the sync
LangChain API.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document
from typing_extensions import Self, override

from valori_store.errors import InputError
from valori_store.langchain.async_methods import AsyncMethods
from valori_store.langchain.documents import (
    hits_to_documents,
    hits_with_scores,
    record_to_document,
)
from valori_store.langchain.options import RETRIEVER_OPTIONS, no_extra
from valori_store.langchain.scores import score_relevance_fn
from valori_store.langchain.state import StateMethods

if TYPE_CHECKING:
    from collections.abc import Callable

    from langchain_core.embeddings import Embeddings

__all__ = ["RETRIEVER_OPTIONS", "ValoriVectorStore"]


class ValoriVectorStore(AsyncMethods, StateMethods):
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
        distance). Relevance scores are in [0, 1] (see :mod:`.scores`). MMR runs in the
        core with exact integer similarities.

    Filter:
        a core filter dict (docs/filters.md), a callable ``Document -> bool``, or a list of
        those (ANDed); applied before ranking, so ``k`` results come back when ``k`` match.

    Async:
        every method has a native ``a``-prefixed variant.

    Retriever:
        ``as_retriever(search_type="similarity" | "similarity_score_threshold" | "mmr")``.
    """

    # ------------------------------------------------------------------ writes
    def _add(self, texts: list[str], metas: list[Any], ids: list[str | None], size: int) -> list[str]:
        out: list[str] = []
        for lo in range(0, len(texts), size):
            chunk = texts[lo : lo + size]
            vectors = self._embedding.embed_documents(chunk)
            out += self._upsert(vectors, ids[lo : lo + size], chunk, metas[lo : lo + size])
        return out

    @override
    def add_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> list[str]:
        """Embed and upsert texts; returns their ids (see the class doc for id rules)."""
        no_extra(kwargs, "add_texts")
        return self._add(*self._prepare(texts, metadatas, ids, None, batch_size))

    @override
    def add_documents(
        self, documents: list[Document], ids: list[str] | None = None, *, batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Upsert documents: ``ids=`` wins over ``Document.id``; missing ids are generated."""
        no_extra(kwargs, "add_documents")
        texts, metas, doc_ids = self._doc_parts(documents)
        return self._add(*self._prepare(texts, metas, ids, doc_ids, batch_size))

    @override
    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Delete records by id (missing ids are ignored); returns True.

        ``delete(None)`` raises InputError rather than silently doing nothing or wiping the
        store; to empty the store call ``delete(vs.store.ids())``.
        """
        no_extra(kwargs, "delete")
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
    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """Documents for the ids that exist, in the order given (missing ids are skipped)."""
        if isinstance(ids, str):
            raise InputError("get_by_ids takes a list of ids, not a single str")
        if self._store is None:
            return []
        return [record_to_document(r) for r in self._store.get(list(ids))]

    # ------------------------------------------------------------------ sync search
    @override
    def similarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        no_extra(kwargs, "similarity_search")
        return hits_to_documents(self._search(self._embedding.embed_query(query), k, filter))

    @override
    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        """(Document, score) pairs; the core's score: higher is more similar (l2: -distance)."""
        no_extra(kwargs, "similarity_search_with_score")
        return hits_with_scores(self._search(self._embedding.embed_query(query), k, filter))

    @override
    def similarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        no_extra(kwargs, "similarity_search_by_vector")
        return hits_to_documents(self._search(embedding, k, filter))

    def similarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        no_extra(kwargs, "similarity_search_with_score_by_vector")
        return hits_with_scores(self._search(embedding, k, filter))

    @override
    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return score_relevance_fn(self.metric)

    @override
    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        no_extra(kwargs, "similarity_search_with_relevance_scores")
        return self._relevance(self._embedding.embed_query(query), k, filter)

    @override
    def max_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        """MMR in the core: exact integer similarities, ``lambda_mult`` as an exact fraction."""
        no_extra(kwargs, "max_marginal_relevance_search")
        return hits_to_documents(self._mmr(self._embedding.embed_query(query), k, fetch_k, lambda_mult, filter))

    @override
    def max_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        no_extra(kwargs, "max_marginal_relevance_search_by_vector")
        return hits_to_documents(self._mmr(embedding, k, fetch_k, lambda_mult, filter))

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
