"""LangChain's standard VectorStore suite (langchain-tests, pinned) against every way of
building a ValoriVectorStore: lazy in memory, explicit dim, l2, wrapping a core store,
and durable in a directory. Each class must pass every test, sync and async, unskipped."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from valori_store import ValoriStore
from valori_store.langchain import ValoriVectorStore


class TestLazyCosine(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[ValoriVectorStore]:
        vs = ValoriVectorStore(self.get_embeddings())
        assert vs.store is None  # dim inferred on the first add
        yield vs
        vs.close()


class TestExplicitDimL2(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[ValoriVectorStore]:
        vs = ValoriVectorStore(self.get_embeddings(), dim=6, metric="l2")
        yield vs
        vs.close()


class TestWrappedCoreStore(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[ValoriVectorStore]:
        core = ValoriStore(6, "cosine")
        vs = ValoriVectorStore(self.get_embeddings(), store=core)
        yield vs
        core.close()


class TestDurableDirectory(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[ValoriVectorStore]:
        vs = ValoriVectorStore(self.get_embeddings(), path=tmp_path / "lc-store", durability="none")
        yield vs
        vs.close()


def test_no_standard_test_is_switched_off() -> None:
    for cls in (TestLazyCosine, TestExplicitDimL2, TestWrappedCoreStore, TestDurableDirectory):
        suite = cls()
        assert suite.has_sync and suite.has_async and suite.has_get_by_ids
