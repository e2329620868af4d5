"""The native async half of :class:`~valori_store.langchain.ValoriVectorStore`.

Every method has an ``a``-prefixed variant here: embeddings use the model's ``aembed_*``
(or run the sync ones in a worker thread when it has none) and core calls run in a worker
thread (``asyncio.to_thread``), so the event loop is never blocked by a scan. Results equal
the sync methods' exactly.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from langchain_core.documents import Document
from typing_extensions import Self, override

from valori_store.langchain.base import CoreBackedVectorStore
from valori_store.langchain.documents import hits_to_documents, hits_with_scores
from valori_store.langchain.options import no_extra

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["AsyncMethods"]

_T = TypeVar("_T")


class AsyncMethods(CoreBackedVectorStore):
    """Async writes, reads and searches (see :class:`~valori_store.langchain.ValoriVectorStore`)."""

    # ------------------------------------------------------------------ async writes
    async def _aadd(self, texts: list[str], metas: list[Any], ids: list[str | None], size: int) -> list[str]:
        out: list[str] = []
        for lo in range(0, len(texts), size):
            chunk = texts[lo : lo + size]
            vectors = await self._aembed_documents(chunk)
            out += await asyncio.to_thread(self._upsert, vectors, ids[lo : lo + size], chunk, metas[lo : lo + size])
        return out

    @override
    async def aadd_texts(
        self, texts: Iterable[str], metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> list[str]:
        no_extra(kwargs, "aadd_texts")
        return await self._aadd(*self._prepare(texts, metadatas, ids, None, batch_size))

    @override
    async def aadd_documents(
        self, documents: list[Document], ids: list[str] | None = None, *, batch_size: int | None = None,
        **kwargs: Any,
    ) -> list[str]:
        no_extra(kwargs, "aadd_documents")
        texts, metas, doc_ids = self._doc_parts(documents)
        return await self._aadd(*self._prepare(texts, metas, ids, doc_ids, batch_size))

    @override
    async def adelete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        return await asyncio.to_thread(self.delete, ids, **kwargs)

    @override
    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        return await asyncio.to_thread(self.get_by_ids, ids)

    # ------------------------------------------------------------------ async search
    async def _on_query(self, query: str, read: Callable[..., _T], *args: Any) -> _T:
        """Embed ``query`` (natively async when the model can) and run the core read
        ``read(vector, *args)`` in a worker thread."""
        vector = await self._aembed_query(query)
        return await asyncio.to_thread(read, vector, *args)

    @override
    async def asimilarity_search(self, query: str, k: int = 4, filter: Any = None, **kwargs: Any) -> list[Document]:
        no_extra(kwargs, "asimilarity_search")
        return hits_to_documents(await self._on_query(query, self._search, k, filter))

    @override
    async def asimilarity_search_with_score(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        no_extra(kwargs, "asimilarity_search_with_score")
        return hits_with_scores(await self._on_query(query, self._search, k, filter))

    @override
    async def asimilarity_search_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        no_extra(kwargs, "asimilarity_search_by_vector")
        return hits_to_documents(await asyncio.to_thread(self._search, embedding, k, filter))

    async def asimilarity_search_with_score_by_vector(
        self, embedding: list[float], k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        no_extra(kwargs, "asimilarity_search_with_score_by_vector")
        return hits_with_scores(await asyncio.to_thread(self._search, embedding, k, filter))

    @override
    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, filter: Any = None, **kwargs: Any,
    ) -> list[tuple[Document, float]]:
        no_extra(kwargs, "asimilarity_search_with_relevance_scores")
        return await self._on_query(query, self._relevance, k, filter)

    @override
    async def amax_marginal_relevance_search(
        self, query: str, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5, filter: Any = None,
        **kwargs: Any,
    ) -> list[Document]:
        no_extra(kwargs, "amax_marginal_relevance_search")
        return hits_to_documents(await self._on_query(query, self._mmr, k, fetch_k, lambda_mult, filter))

    @override
    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Any = None, **kwargs: Any,
    ) -> list[Document]:
        no_extra(kwargs, "amax_marginal_relevance_search_by_vector")
        return hits_to_documents(await asyncio.to_thread(self._mmr, embedding, k, fetch_k, lambda_mult, filter))

    # ------------------------------------------------------------------ async constructor
    @classmethod
    @override
    async def afrom_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: list[dict[str, Any]] | None = None, *,
        ids: list[str] | None = None, batch_size: int | None = None, **kwargs: Any,
    ) -> Self:
        vs = await asyncio.to_thread(lambda: cls(embedding, **kwargs))
        await vs.aadd_texts(texts, metadatas, ids=ids, batch_size=batch_size)
        return vs
