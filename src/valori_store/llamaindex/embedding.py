"""``ValoriHashingEmbedding``: the core's deterministic :class:`HashingEmbedder` as a
LlamaIndex ``BaseEmbedding`` (no model, no network; same text, same bits everywhere).

Good for tests, examples and reproducible pipelines; it captures surface similarity
(words and character n-grams), not meaning.
"""

from __future__ import annotations

from typing import Any, List

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from typing_extensions import override

from valori_store.embedder import HashingEmbedder

__all__ = ["ValoriHashingEmbedding"]


class ValoriHashingEmbedding(BaseEmbedding):
    """Feature-hashing embeddings (``valori_store.embedder``, algorithm ``hashing-v1``)."""

    model_name: str = Field(default="valori-hashing-v1")
    dim: int = Field(default=384, description="Output dimension.")
    seed: str = Field(default="valori-v1", description="Hash key; different seeds give unrelated embeddings.")

    _embedder: HashingEmbedder = PrivateAttr()

    def __init__(self, dim: int = 384, seed: str = "valori-v1", **kwargs: Any) -> None:
        super().__init__(dim=dim, seed=seed, **kwargs)
        self._embedder = HashingEmbedder(dim=dim, seed=seed)

    @classmethod
    @override
    def class_name(cls) -> str:
        return "ValoriHashingEmbedding"

    @override
    def _get_query_embedding(self, query: str) -> List[float]:
        return self._embedder.embed_query(query)

    @override
    def _get_text_embedding(self, text: str) -> List[float]:
        return self._embedder.embed_query(text)

    @override
    def _get_text_embeddings(self, texts: List[str]) -> List[List[float]]:
        return self._embedder.embed_documents(list(texts))

    @override
    async def _aget_query_embedding(self, query: str) -> List[float]:
        return self._get_query_embedding(query)

    @override
    async def _aget_text_embedding(self, text: str) -> List[float]:
        return self._get_text_embedding(text)
