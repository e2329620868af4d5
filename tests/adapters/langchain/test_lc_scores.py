"""Scores and relevance: checked against exact integer arithmetic computed here, on the
stored (quantised) vectors, never against values the adapter printed."""

from __future__ import annotations

import math
import warnings

import pytest
from lc_fixtures import TableEmbedding, exact_dot, exact_sqdist, q16

from valori_store.embedder import HashingEmbedder
from valori_store.langchain import ValoriVectorStore

TEXTS = [
    "the cat sat on the mat", "a cat and a dog", "dogs chase cats", "stock markets fell today",
    "interest rates rise", "the mat was red", "cats purr softly", "bonds and stocks",
    "a red cat", "weather is sunny", "rain tomorrow", "the dog sat",
]


def _cosine_store() -> ValoriVectorStore:
    vs = ValoriVectorStore(HashingEmbedder(dim=64))
    vs.add_texts(TEXTS, ids=[f"t{i:02d}" for i in range(len(TEXTS))])
    return vs


def _expected_order(pairs: dict[str, int]) -> list[str]:
    """Ids by exact raw score descending, then id bytes ascending (the documented order)."""
    return sorted(pairs, key=lambda i: (-pairs[i], i.encode("utf-8")))


def test_cosine_scores_equal_exact_integer_dot_of_stored_vectors() -> None:
    vs = _cosine_store()
    core = vs.store
    query = "the cat sat on the mat"  # also stored as t00: its stored vector is the normalised query
    qvec = core.get(["t00"])[0].vector
    raws = {r.id: exact_dot(r.vector, qvec) for r in core.get(core.ids())}
    got = vs.similarity_search_with_score(query, k=len(TEXTS))
    assert [d.id for d, _ in got] == _expected_order(raws)
    for doc, score in got:
        assert score == raws[doc.id] / 2**32  # one correctly rounded division, bit for bit
        assert doc.page_content == TEXTS[int(doc.id[1:])]


def test_cosine_relevance_formula_and_exact_match_is_one() -> None:
    vs = _cosine_store()
    core = vs.store
    qvec = core.get(["t00"])[0].vector
    self_raw = exact_dot(qvec, qvec)
    raws = {r.id: exact_dot(r.vector, qvec) for r in core.get(core.ids())}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # LangChain warns when a relevance leaves [0, 1]
        got = vs.similarity_search_with_relevance_scores("the cat sat on the mat", k=len(TEXTS))
    assert got[0][0].id == "t00" and got[0][1] == 1.0
    for doc, rel in got:
        expected = min(1.0, max(0.0, (1.0 + raws[doc.id] / self_raw) / 2.0))
        assert rel == expected
        assert 0.0 <= rel <= 1.0
    rels = [r for _, r in got]
    assert rels == sorted(rels, reverse=True)


def test_cosine_relevance_extremes() -> None:
    emb = TableEmbedding({"q": [1.0, 0.0], "same": [3.0, 0.0], "orth": [0.0, 2.0], "opp": [-1.0, 0.0]})
    vs = ValoriVectorStore(emb)
    vs.add_texts(["same", "orth", "opp"], ids=["same", "orth", "opp"])
    rel = {d.id: r for d, r in vs.similarity_search_with_relevance_scores("q", k=3)}
    assert rel == {"same": 1.0, "orth": 0.5, "opp": 0.0}


def test_dot_scores_and_relevance_from_independent_quantisation() -> None:
    table = {"q": [2.0, 0.0, 0.5], "a": [2.0, 0.0, 0.5], "b": [1.0, 0.1, 0.0], "c": [-2.0, 0.0, -0.5],
             "d": [0.0, 3.0, 0.0], "e": [5.0, 1.0, 2.0], "f": [0.1234567, -0.7654321, 0.3333333]}
    vs = ValoriVectorStore(TableEmbedding(table), metric="dot")
    docs = [t for t in table if t != "q"]
    vs.add_texts(docs, ids=docs)
    q = q16(table["q"])
    raws = {t: exact_dot(q16(table[t]), q) for t in docs}
    self_raw = exact_dot(q, q)
    got = vs.similarity_search_with_score("q", k=len(docs))
    assert [d.id for d, _ in got] == _expected_order(raws)
    assert all(s == raws[d.id] / 2**32 for d, s in got)
    rel = dict((d.id, r) for d, r in vs.similarity_search_with_relevance_scores("q", k=len(docs)))
    for t in docs:
        assert rel[t] == min(1.0, max(0.0, (1.0 + raws[t] / self_raw) / 2.0))
    assert rel["a"] == 1.0 and rel["e"] == 1.0  # a stored copy of the query; a longer projection (clamped)
    assert rel["c"] == 0.0 and rel["d"] == 0.5


def test_dot_zero_query_relevance_is_one_half() -> None:
    vs = ValoriVectorStore(TableEmbedding({"z": [0.0, 0.0], "a": [1.0, 2.0], "b": [-3.0, 0.5]}), metric="dot")
    vs.add_texts(["a", "b"], ids=["a", "b"])
    got = vs.similarity_search_with_relevance_scores("z", k=2)
    assert [(d.id, r) for d, r in got] == [("a", 0.5), ("b", 0.5)]  # all scores 0: id order


def test_l2_scores_and_relevance() -> None:
    table = {"q": [0.5, -1.25, 2.0], "a": [0.5, -1.25, 2.0], "b": [1.5, -1.25, 2.0], "c": [0.5, 1.75, 6.0],
             "d": [0.3, 0.3, 0.3], "e": [-10.0, 4.0, 0.001]}
    vs = ValoriVectorStore(TableEmbedding(table), metric="l2")
    docs = [t for t in table if t != "q"]
    vs.add_texts(docs, ids=docs)
    q = q16(table["q"])
    sq = {t: exact_sqdist(q16(table[t]), q) for t in docs}
    got = vs.similarity_search_with_score("q", k=len(docs))
    assert [d.id for d, _ in got] == sorted(docs, key=lambda t: (sq[t], t))
    for d, s in got:
        assert s == 0.0 - math.sqrt(sq[d.id]) / 65536.0
    rel = dict((d.id, r) for d, r in vs.similarity_search_with_relevance_scores("q", k=len(docs)))
    for t in docs:
        assert rel[t] == 1.0 / (1.0 + math.sqrt(sq[t]) / 65536.0)
    assert rel["a"] == 1.0 and rel["b"] == 0.5 and rel["c"] == 1.0 / 6.0  # distances 0, 1, 5


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_score_only_relevance_fn_matches_for_unit_queries(metric: str) -> None:
    """LangChain's _select_relevance_score_fn hook agrees with the store for unit queries."""
    emb = TableEmbedding({"q": [1.0, 0.0], "a": [0.6, 0.8], "b": [-0.8, 0.6], "c": [1.0, 0.0]})
    vs = ValoriVectorStore(emb, metric=metric)
    vs.add_texts(["a", "b", "c"], ids=["a", "b", "c"])
    fn = vs._select_relevance_score_fn()
    scores = dict((d.id, s) for d, s in vs.similarity_search_with_score("q", k=3))
    rel = dict((d.id, r) for d, r in vs.similarity_search_with_relevance_scores("q", k=3))
    assert {t: fn(s) for t, s in scores.items()} == rel


@pytest.mark.parametrize("threshold", [0.55, 0.6, 0.75, 0.99])
async def test_threshold_retriever(threshold: float) -> None:
    vs = _cosine_store()
    core = vs.store
    qvec = core.get(["t00"])[0].vector
    self_raw = exact_dot(qvec, qvec)
    raws = {r.id: exact_dot(r.vector, qvec) for r in core.get(core.ids())}
    rel = {i: min(1.0, max(0.0, (1.0 + raw / self_raw) / 2.0)) for i, raw in raws.items()}
    top = _expected_order(raws)[:8]
    expected = [i for i in top if rel[i] >= threshold]
    assert 0 < len(expected) < 8 or threshold == 0.99  # the thresholds actually cut
    retriever = vs.as_retriever(search_type="similarity_score_threshold",
                                search_kwargs={"score_threshold": threshold, "k": 8})
    assert [d.id for d in retriever.invoke("the cat sat on the mat")] == expected
    assert [d.id for d in await retriever.ainvoke("the cat sat on the mat")] == expected


async def test_async_scores_equal_sync() -> None:
    vs = _cosine_store()
    for q in ["cat", "markets", "rain", ""]:
        assert await vs.asimilarity_search_with_score(q, k=5) == vs.similarity_search_with_score(q, k=5)
        assert (await vs.asimilarity_search_with_relevance_scores(q, k=5)
                == vs.similarity_search_with_relevance_scores(q, k=5))
        v = vs.embeddings.embed_query(q)
        assert await vs.asimilarity_search_with_score_by_vector(v, k=5) == vs.similarity_search_with_score_by_vector(v, k=5)
        assert await vs.asimilarity_search_by_vector(v, k=5) == vs.similarity_search_by_vector(v, k=5)
        assert await vs.asimilarity_search(q, k=5) == vs.similarity_search(q, k=5)
