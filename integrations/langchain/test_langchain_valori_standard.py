"""LangChain's standard VectorStore suite against the ecosystem-named package.

Every test of ``VectorStoreIntegrationTests`` (langchain-tests, pinned in the dev extra)
runs, sync and async, with nothing skipped; the runnable example is executed too.
"""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import langchain_valori
import pytest
from langchain_tests.integration_tests import VectorStoreIntegrationTests

from valori_store.langchain import ValoriVectorStore as CoreValoriVectorStore

HERE = Path(__file__).resolve().parent


class TestLangchainValoriInMemory(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self) -> Iterator[langchain_valori.ValoriVectorStore]:
        vs = langchain_valori.ValoriVectorStore(self.get_embeddings())
        yield vs
        vs.close()


class TestLangchainValoriDurable(VectorStoreIntegrationTests):
    @pytest.fixture()
    def vectorstore(self, tmp_path: Path) -> Iterator[langchain_valori.ValoriVectorStore]:
        vs = langchain_valori.ValoriVectorStore(self.get_embeddings(), path=tmp_path / "vs", durability="none")
        yield vs
        vs.close()


def test_suite_runs_everything() -> None:
    """Nothing in the standard suite is switched off."""
    for cls in (TestLangchainValoriInMemory, TestLangchainValoriDurable):
        suite = cls()
        assert suite.has_sync and suite.has_async and suite.has_get_by_ids


def test_package_is_a_pure_re_export() -> None:
    assert langchain_valori.ValoriVectorStore is CoreValoriVectorStore
    assert set(langchain_valori.__all__) >= {"ValoriVectorStore"}


def test_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(HERE / "example.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "restored state hash matches" in out
