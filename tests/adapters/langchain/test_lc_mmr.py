"""MMR through the core (exact, deterministic) and the three retriever modes."""

from __future__ import annotations

from lc_fixtures import TableEmbedding

from valori_store.langchain import ValoriVectorStore

# Query along x. a1..a3 are near-duplicates close to the query; b and c point elsewhere
# but are still fairly relevant. Plain similarity returns the duplicates; MMR trades a
# little relevance for diversity and picks b (then c) after the best duplicate.
TABLE = {
    "q": [1.0, 0.0, 0.0],
    "a1": [1.0, 0.05, 0.0],
    "a2": [1.0, 0.06, 0.0],
    "a3": [1.0, 0.07, 0.0],
    "b": [0.7, 0.0, 0.7],
    "c": [0.6, -0.8, 0.0],
    "far": [-1.0, 0.0, 0.0],
}
DOCS = [t for t in TABLE if t != "q"]


def _store(metric: str = "cosine") -> ValoriVectorStore:
    vs = ValoriVectorStore(TableEmbedding(TABLE), metric=metric)
    vs.add_texts(DOCS, metadatas=[{"group": "dup" if t.startswith("a") else "other"} for t in DOCS], ids=DOCS)
    return vs


def test_mmr_diversity_changes_the_result() -> None:
    vs = _store()
    assert [d.id for d in vs.similarity_search("q", k=3)] == ["a1", "a2", "a3"]
    mmr = [d.id for d in vs.max_marginal_relevance_search("q", k=3, fetch_k=6, lambda_mult=0.5)]
    assert mmr[0] == "a1"
    assert mmr != ["a1", "a2", "a3"] and "b" in mmr
    # lambda 1 is pure relevance: the similarity order
    assert [d.id for d in vs.max_marginal_relevance_search("q", k=3, fetch_k=6, lambda_mult=1.0)] == ["a1", "a2", "a3"]


def test_mmr_matches_core_and_hand_computed_selection() -> None:
    """The adapter returns exactly what the core computes, and that selection is the MMR
    rule evaluated here with exact fractions on the stored integer vectors."""
    from fractions import Fraction

    vs = _store()
    core = vs.store
    qv = vs.embeddings.embed_query("q")
    hits = core.mmr_search(qv, k=3, fetch_k=6, lambda_mult=0.5)
    assert [d.id for d in vs.max_marginal_relevance_search_by_vector(qv, k=3, fetch_k=6, lambda_mult=0.5)] == [
        h.id for h in hits]
    recs = {r.id: [int(x) for x in r.vector] for r in core.get(core.ids())}
    qrec = core.search(qv, k=6)  # fetch_k candidates with exact query scores
    qs = {h.id: h.raw for h in qrec}
    lam = Fraction(1, 2)

    def dot(a: list[int], b: list[int]) -> int:
        return sum(x * y for x, y in zip(a, b))

    picked: list[str] = []
    while len(picked) < 3:
        cands = [c for c in qs if c not in picked]
        def value(c: str) -> Fraction:
            red = max((dot(recs[c], recs[p]) for p in picked), default=0)
            return lam * qs[c] - (1 - lam) * red if picked else Fraction(qs[c])
        picked.append(min(cands, key=lambda c: (-value(c), c)))
    assert [h.id for h in hits] == picked


def test_mmr_scores_and_documents() -> None:
    vs = _store()
    docs = vs.max_marginal_relevance_search("q", k=2, fetch_k=6, lambda_mult=0.3)
    for d in docs:
        assert d.page_content == d.id and d.metadata["group"] in ("dup", "other")


def test_mmr_with_filters() -> None:
    vs = _store()
    got = vs.max_marginal_relevance_search("q", k=3, fetch_k=6, filter={"group": "other"})
    assert {d.id for d in got} == {"b", "c", "far"}
    got = vs.max_marginal_relevance_search("q", k=2, fetch_k=6, filter=lambda d: d.id != "a1")
    assert got[0].id == "a2" and len(got) == 2


async def test_mmr_async_equals_sync() -> None:
    vs = _store()
    for lam in (0.0, 0.25, 0.5, 0.9, 1.0):
        sync = vs.max_marginal_relevance_search("q", k=4, fetch_k=6, lambda_mult=lam)
        assert await vs.amax_marginal_relevance_search("q", k=4, fetch_k=6, lambda_mult=lam) == sync
        v = vs.embeddings.embed_query("q")
        assert await vs.amax_marginal_relevance_search_by_vector(v, k=4, fetch_k=6, lambda_mult=lam) == sync


async def test_retriever_modes() -> None:
    vs = _store()
    sim = vs.as_retriever(search_kwargs={"k": 3})
    assert [d.id for d in sim.invoke("q")] == ["a1", "a2", "a3"]
    assert [d.id for d in await sim.ainvoke("q")] == ["a1", "a2", "a3"]
    mmr = vs.as_retriever(search_type="mmr", search_kwargs={"k": 3, "fetch_k": 6, "lambda_mult": 0.5})
    expected = [d.id for d in vs.max_marginal_relevance_search("q", k=3, fetch_k=6, lambda_mult=0.5)]
    assert [d.id for d in mmr.invoke("q")] == expected != ["a1", "a2", "a3"]
    assert [d.id for d in await mmr.ainvoke("q")] == expected
    thr = vs.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.9, "k": 6})
    # cos(a_i, q) > 0.99 -> relevance > 0.99; cos(b, q) = 0.707 -> 0.85; c: 0.6 -> 0.8; far: 0
    assert [d.id for d in thr.invoke("q")] == ["a1", "a2", "a3"]
    assert [d.id for d in await thr.ainvoke("q")] == ["a1", "a2", "a3"]
    filt = vs.as_retriever(search_kwargs={"k": 2, "filter": {"group": "other"}})
    assert [d.id for d in filt.invoke("q")] == ["b", "c"]


def test_empty_store_mmr_and_relevance() -> None:
    vs = ValoriVectorStore(TableEmbedding(TABLE))
    assert vs.max_marginal_relevance_search("q", k=2) == []
    assert vs.similarity_search_with_relevance_scores("q") == []
