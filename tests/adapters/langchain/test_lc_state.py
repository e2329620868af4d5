"""Snapshot hooks, persistence and order independence."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.documents import Document

from valori_store import Checkpoint, ValoriStore
from valori_store.embedder import HashingEmbedder
from valori_store.errors import InputError, NotFoundError
from valori_store.langchain import ValoriVectorStore

WORDS = ["river", "mountain", "forest", "desert", "ocean", "valley", "glacier", "canyon", "meadow", "island"]
DOCS = [
    Document(id=f"doc-{i:03d}", page_content=f"{WORDS[i % 10]} {WORDS[(i * 3) % 10]} trip {i}",
             metadata={"n": i, "w": WORDS[i % 10], "f": i / 8, "nested": {"l": [i, str(i), None, True]}})
    for i in range(80)
]
QUERIES = ["river trip", "a glacier near the ocean", "desert canyon", "meadow", "trip 42"]


def _results(vs: ValoriVectorStore) -> list[object]:
    out: list[object] = []
    for q in QUERIES:
        out.append(vs.similarity_search_with_score(q, k=6))
        out.append(vs.similarity_search_with_relevance_scores(q, k=6))
        out.append(vs.max_marginal_relevance_search(q, k=4, fetch_k=12))
        out.append(vs.similarity_search(q, k=5, filter={"w": {"$in": ["river", "ocean"]}}))
    return out


def test_two_independently_built_stores_agree() -> None:
    a = ValoriVectorStore(HashingEmbedder())
    a.add_documents(DOCS)
    b = ValoriVectorStore(HashingEmbedder())
    rev = list(reversed(DOCS))
    b.add_documents(rev[:30], batch_size=7)
    b.add_documents(DOCS[:5])  # re-upserting identical content changes nothing
    b.add_documents(rev[30:], batch_size=13)
    assert a.state_hash() == b.state_hash()
    assert _results(a) == _results(b)


def test_snapshot_restore_gives_identical_results() -> None:
    vs = ValoriVectorStore(HashingEmbedder())
    vs.add_documents(DOCS[:50])
    before_hash = vs.state_hash()
    before = _results(vs)
    cp = vs.snapshot("before")
    assert isinstance(cp, Checkpoint) and cp.state_hash == before_hash and cp.label == "before"
    vs.add_documents(DOCS[50:])
    vs.delete(["doc-001", "doc-002"])
    vs.add_documents([Document(id="doc-003", page_content="overwritten", metadata={})])
    assert vs.state_hash() != before_hash and _results(vs) != before
    assert vs.restore(cp) == cp
    assert vs.state_hash() == before_hash
    assert _results(vs) == before
    mid = vs.checkpoint("again")
    vs.add_documents(DOCS[50:60])
    vs.restore("again")  # by label
    assert vs.state_hash() == mid.state_hash == before_hash
    assert [c.label for c in vs.history()] == ["before", "again"]


def test_save_and_load(tmp_path: Path) -> None:
    vs = ValoriVectorStore(HashingEmbedder())
    vs.add_documents(DOCS)
    f = tmp_path / "snap.valori"
    vs.save(f)
    loaded = ValoriVectorStore.load(f, HashingEmbedder())
    assert loaded.state_hash() == vs.state_hash()
    assert _results(loaded) == _results(vs)
    assert loaded.get_by_ids(["doc-010"]) == [DOCS[10]]
    with pytest.raises(NotFoundError):
        ValoriVectorStore.load(tmp_path / "nope", HashingEmbedder())


def test_durable_directory_reopens_with_same_state(tmp_path: Path) -> None:
    path = tmp_path / "store-dir"
    with ValoriVectorStore(HashingEmbedder(), path=path, metric="l2", durability="batch") as vs:
        assert vs.store is None  # dim comes from the first embedding
        vs.add_documents(DOCS, batch_size=25)
        h = vs.state_hash()
        res = _results(vs)
    with ValoriVectorStore(HashingEmbedder(), path=path) as again:
        assert again.metric == "l2" and again.dim == 384 and len(again) == len(DOCS)
        assert again.state_hash() == h
        assert _results(again) == res


def test_wrapping_a_core_store_shares_it() -> None:
    core = ValoriStore(384, "cosine")
    vs = ValoriVectorStore(HashingEmbedder(), store=core)
    vs.add_documents(DOCS[:3])
    assert core.ids() == ["doc-000", "doc-001", "doc-002"]
    assert vs.store is core and vs.state_hash() == core.state_hash()
    with pytest.raises(InputError):
        ValoriVectorStore(HashingEmbedder(), store=core, dim=10)
    with pytest.raises(InputError):
        ValoriVectorStore(HashingEmbedder(), store=core, metric="dot")
    with pytest.raises(InputError):
        ValoriVectorStore(HashingEmbedder(), store=core, path="x")


def test_state_calls_before_the_store_exists_are_clear() -> None:
    vs = ValoriVectorStore(HashingEmbedder())
    for call in (vs.state_hash, vs.snapshot, lambda: vs.save("x"), lambda: vs.restore(1)):
        with pytest.raises(InputError, match="first added document"):
            call()
    assert vs.history() == [] and len(vs) == 0
    assert ValoriVectorStore(HashingEmbedder(), dim=384).state_hash() == ValoriStore(384).state_hash()


def test_retrieved_documents_are_exact() -> None:
    vs = ValoriVectorStore(HashingEmbedder())
    weird = Document(id="w", page_content="  tabs\tand\nnewlines, ünïcødé 🙂 ", metadata={
        "int": 1, "float": 1.0, "neg0": -0.0, "big": 2**62, "bool": True, "none": None,
        "list": [1, 1.0, "1", [True, None]], "dict": {"a": {"b": [0.1, 2]}}})
    vs.add_documents([weird, *DOCS[:5]])
    for got in (vs.get_by_ids(["w"])[0], vs.similarity_search("tabs and newlines", k=1)[0]):
        assert got == weird
        m = got.metadata
        assert type(m["int"]) is int and type(m["float"]) is float and type(m["bool"]) is bool
        assert type(m["big"]) is int and m["big"] == 2**62
        assert [type(x) for x in m["list"]] == [int, float, str, list]
        assert m["dict"]["a"]["b"] == [0.1, 2] and type(m["dict"]["a"]["b"][1]) is int
