"""Helpers for the LangChain adapter tests (unique module name: tests have no packages)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from langchain_core.embeddings import Embeddings


class TableEmbedding(Embeddings):
    """Embeds a text by looking it up in a fixed table (exact, crafted vectors)."""

    def __init__(self, table: Mapping[str, Sequence[float]]) -> None:
        self.table = {k: [float(x) for x in v] for k, v in table.items()}
        self.calls = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [list(self.table[t]) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        self.calls += 1
        return list(self.table[text])


def q16(x: Sequence[float]) -> np.ndarray:
    """Independent Q16.16 quantisation: round half to even of x * 2**16, as int64."""
    return np.rint(np.asarray(x, dtype=np.float64) * 65536.0).astype(np.int64)


def exact_dot(a: Sequence[int], b: Sequence[int]) -> int:
    return sum(int(x) * int(y) for x, y in zip(a, b))


def exact_sqdist(a: Sequence[int], b: Sequence[int]) -> int:
    return sum((int(x) - int(y)) ** 2 for x, y in zip(a, b))
