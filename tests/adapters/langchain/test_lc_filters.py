"""filter=: core dict language, callables Document -> bool, and both together.

A restriction is applied before ranking, so k results come back whenever k records
match, even when the matching records are the least similar ones."""

from __future__ import annotations

import pytest
from langchain_core.documents import Document

from valori_store.embedder import HashingEmbedder
from valori_store.errors import FilterError
from valori_store.langchain import ValoriVectorStore

N = 60


def _store() -> ValoriVectorStore:
    vs = ValoriVectorStore(HashingEmbedder(dim=64))
    docs = [
        Document(
            id=f"d{i:02d}",
            # the "rare" records (i % 10 == 7) talk about something else entirely
            page_content=("quantum chromodynamics lattice" if i % 10 == 7 else f"apple banana fruit salad {i}"),
            metadata={"i": i, "parity": "even" if i % 2 == 0 else "odd", "tags": ["x", f"t{i % 3}"],
                      "score": i / 4},
        )
        for i in range(N)
    ]
    vs.add_documents(docs)
    return vs


def _brute(vs: ValoriVectorStore, query: str, keep) -> list[str]:
    """Independent answer: rank every record (k = all, no filter), keep the matching ones."""
    ranked = vs.similarity_search(query, k=N)
    return [d.id for d in ranked if keep(d)]


def test_dict_filter_returns_k_when_k_match() -> None:
    vs = _store()
    got = vs.similarity_search("apple banana fruit", k=4, filter={"i": {"$in": [7, 17, 27, 37, 47, 57]}})
    assert len(got) == 4  # the 6 matching records are the least similar, still k come back
    assert [d.id for d in got] == _brute(vs, "apple banana fruit", lambda d: d.metadata["i"] % 10 == 7)[:4]


def test_dict_filter_operators() -> None:
    vs = _store()
    got = vs.similarity_search("fruit", k=N, filter={"parity": "odd", "score": {"$gte": 10.0}})
    assert sorted(d.metadata["i"] for d in got) == [i for i in range(N) if i % 2 and i / 4 >= 10]
    got = vs.similarity_search("fruit", k=N, filter={"tags": {"$contains": "t1"}})
    assert sorted(d.metadata["i"] for d in got) == [i for i in range(N) if i % 3 == 1]
    got = vs.similarity_search("fruit", k=N, filter={"$or": [{"i": 3}, {"i": 55}]})
    assert sorted(d.id for d in got) == ["d03", "d55"]


def test_callable_filter_returns_k_when_k_match() -> None:
    vs = _store()
    keep = lambda d: "quantum" in d.page_content  # noqa: E731 - 6 records, all far from the query
    got = vs.similarity_search("apple banana fruit", k=5, filter=keep)
    assert [d.id for d in got] == _brute(vs, "apple banana fruit", keep)[:5]
    assert len(got) == 5


def test_callable_sees_full_documents() -> None:
    vs = _store()
    seen: list[Document] = []

    def keep(doc: Document) -> bool:
        seen.append(doc)
        return doc.metadata["i"] == 12 and doc.id == "d12"

    got = vs.similarity_search("fruit", k=3, filter=keep)
    assert [d.id for d in got] == ["d12"]
    assert len(seen) == N and sorted(d.id for d in seen) == [f"d{i:02d}" for i in range(N)]
    assert all(isinstance(d, Document) and d.page_content for d in seen)


def test_callable_and_dict_together() -> None:
    vs = _store()
    both = [{"parity": "odd"}, lambda d: d.metadata["i"] > 40]
    got = vs.similarity_search("fruit salad", k=N, filter=both)
    assert sorted(d.metadata["i"] for d in got) == [i for i in range(N) if i % 2 and i > 40]
    assert [d.id for d in got] == _brute(vs, "fruit salad", lambda d: d.metadata["i"] % 2 == 1 and d.metadata["i"] > 40)


def test_ids_filter_combines_with_callable() -> None:
    vs = _store()
    flt = [{"$ids": ["d01", "d02", "d03", "d04", "missing"]}, lambda d: d.metadata["i"] != 2]
    got = vs.similarity_search("fruit", k=10, filter=flt)
    assert sorted(d.id for d in got) == ["d01", "d03", "d04"]
    got = vs.similarity_search("fruit", k=10, filter=[{"$ids": ["d01", "d02"]}, {"$ids": ["d02", "d03"]}])
    assert [d.id for d in got] == ["d02"]


def test_filters_in_every_search_method() -> None:
    vs = _store()
    flt = lambda d: d.metadata["parity"] == "even"  # noqa: E731
    v = vs.embeddings.embed_query("fruit")
    results = [
        vs.similarity_search("fruit", k=7, filter=flt),
        [d for d, _ in vs.similarity_search_with_score("fruit", k=7, filter=flt)],
        [d for d, _ in vs.similarity_search_with_relevance_scores("fruit", k=7, filter=flt)],
        vs.similarity_search_by_vector(v, k=7, filter=flt),
        vs.max_marginal_relevance_search("fruit", k=7, fetch_k=20, filter=flt),
    ]
    for docs in results:
        assert len(docs) == 7 and all(d.metadata["i"] % 2 == 0 for d in docs)


async def test_async_filters() -> None:
    vs = _store()
    flt = [{"parity": "even"}, lambda d: d.metadata["i"] < 30]
    sync = vs.similarity_search("fruit", k=6, filter=flt)
    assert await vs.asimilarity_search("fruit", k=6, filter=flt) == sync
    assert len(sync) == 6


def test_callable_filter_matching_nothing_and_no_filter() -> None:
    vs = _store()
    assert vs.similarity_search("fruit", k=3, filter=lambda d: False) == []
    assert len(vs.similarity_search("fruit", k=3, filter=None)) == 3
    assert len(vs.similarity_search("fruit", k=3, filter={})) == 3


@pytest.mark.parametrize("bad", [42, "parity", [{"a": 1}, 3], {"$ids": "d01"}, {"i": {"$gtt": 3}}])
def test_bad_filters_raise_filter_error(bad: object) -> None:
    vs = _store()
    with pytest.raises(FilterError):
        vs.similarity_search("fruit", k=3, filter=bad)
