"""Shared helpers for the LangGraph adapter tests: a LangChain-typed deterministic embedder
and a controllable clock."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from langchain_core.embeddings import Embeddings

from valori_store.embedder import HashingEmbedder


class LCHashing(Embeddings):
    """HashingEmbedder behind LangChain's Embeddings base class (what InMemoryStore needs);
    counts the texts it embeds."""

    def __init__(self, dim: int = 32) -> None:
        self.inner = HashingEmbedder(dim)
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.documents += list(texts)
        return self.inner.embed_documents(list(texts))

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self.inner.embed_query(text)


class Clock:
    """A clock that moves only when told: ``now()`` returns the current instant."""

    def __init__(self) -> None:
        self.t = datetime(2024, 1, 1, tzinfo=timezone.utc)

    def tick(self, seconds: int = 1) -> None:
        self.t += timedelta(seconds=seconds)

    def __call__(self) -> datetime:
        return self.t
