"""The ``$ids`` restriction and deterministic MMR (``ValoriStore.mmr_search``)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valori_store import FilterError, InputError, ValoriStore, spec
from valori_store.filters import canonical_filter, compile_filter, split_ids


def _store(metric: str = "cosine", n: int = 40, dim: int = 8, seed: int = 0) -> ValoriStore:
    rng = np.random.default_rng(seed)
    store = ValoriStore(dim, metric)
    vecs = rng.integers(-4, 5, size=(n, dim)).astype(np.float64)
    vecs[vecs.sum(axis=1) == 0, 0] = 1.0
    vecs[np.abs(vecs).sum(axis=1) == 0, 0] = 1.0
    store.upsert(vecs, ids=[f"r{i:03d}" for i in range(n)], metadatas=[{"i": i, "even": i % 2 == 0} for i in range(n)])
    return store


# --------------------------------------------------------------------------- $ids


def test_ids_restricts_search_before_top_k() -> None:
    store = _store()
    q = np.ones(8)
    allowed = ["r005", "r017", "r033", "missing"]
    hits = store.search(q, k=10, filter={"$ids": allowed})
    assert sorted(h.id for h in hits) == ["r005", "r017", "r033"]
    # Same ranking as an unrestricted search, restricted afterwards over the whole store.
    full = [h.id for h in store.search(q, k=len(store))]
    assert [h.id for h in hits] == [i for i in full if i in allowed]


def test_ids_combines_with_metadata_filter() -> None:
    store = _store()
    hits = store.search(np.ones(8), k=10, filter={"$ids": ["r004", "r005", "r006"], "even": True})
    assert sorted(h.id for h in hits) == ["r004", "r006"]
    assert store.search(np.ones(8), k=3, filter={"$ids": []}) == []


def test_ids_canonical_form_is_sorted_and_unique() -> None:
    assert canonical_filter({"$ids": ["b", "a", "b"]}) == canonical_filter({"$ids": ["a", "b"]})
    ids, pred = split_ids({"$ids": ["é", "z", "a"], "x": 1})
    assert ids == ["a", "z", "é"]  # UTF-8 byte order
    assert pred is not None and pred({"x": 1}) and not pred({"x": 2})


@pytest.mark.parametrize("bad", [
    {"$ids": "abc"}, {"$ids": [1]}, {"$and": [{"$ids": ["a"]}]}, {"$not": {"$ids": ["a"]}},
])
def test_ids_misuse_is_a_filter_error(bad: dict) -> None:
    with pytest.raises(FilterError):
        split_ids(bad)
    with pytest.raises(FilterError):
        _store(n=3).search(np.ones(8), filter=bad)


def test_compile_filter_refuses_ids() -> None:
    with pytest.raises(FilterError, match="split_ids"):
        compile_filter({"$ids": ["a"]})


# --------------------------------------------------------------------------- MMR reference


def reference_mmr(store: ValoriStore, query: np.ndarray, k: int, fetch_k: int, lam: float) -> list[str]:
    """Brute-force MMR from the spec's Python-int reference, with Fraction arithmetic."""
    metric = store.metric
    q = spec.quantize(np.asarray(query, dtype=np.float64).reshape(1, -1), store.dim)[0].tolist()
    if metric == "cosine":
        q = spec.normalize_row(q)
    records = store.get(store.ids())
    vecs = {r.id: r.vector.tolist() for r in records}
    top = spec.top_k(metric, q, np.array([vecs[i] for i in store.ids()]), store.ids(), fetch_k)
    cands = [i for i, _ in top]
    sim_q = {i: Fraction(spec.rank_key(metric, raw)) for i, raw in top}
    lam_f = Fraction(lam)

    def sim(a: str, b: str) -> Fraction:
        return Fraction(spec.rank_key(metric, spec.raw_score(metric, vecs[a], vecs[b])))

    picked: list[str] = []
    while cands and len(picked) < k:
        def score(c: str) -> Fraction:
            if not picked:
                return sim_q[c]
            return lam_f * sim_q[c] - (1 - lam_f) * max(sim(c, p) for p in picked)
        best = max(score(c) for c in cands)
        choice = min((c for c in cands if score(c) == best), key=lambda c: c.encode("utf-8"))
        picked.append(choice)
        cands.remove(choice)
    return picked


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("lam", [0.0, 0.25, 0.5, 0.7, 1.0])
def test_mmr_matches_reference(metric: str, lam: float) -> None:
    store = _store(metric)
    rng = np.random.default_rng(7)
    for _ in range(3):
        q = rng.integers(-4, 5, size=8).astype(np.float64) + 0.5
        got = [h.id for h in store.mmr_search(q, k=6, fetch_k=15, lambda_mult=lam)]
        assert got == reference_mmr(store, q, 6, 15, lam)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), lam=st.floats(0, 1), k=st.integers(1, 8), fetch_k=st.integers(1, 20))
def test_mmr_matches_reference_property(seed: int, lam: float, k: int, fetch_k: int) -> None:
    store = _store("cosine", n=25, seed=seed)
    q = np.random.default_rng(seed + 1).normal(size=8)
    got = [h.id for h in store.mmr_search(q, k=k, fetch_k=fetch_k, lambda_mult=lam)]
    assert got == reference_mmr(store, q, k, max(k, fetch_k), lam)


def test_mmr_diversity_changes_the_result() -> None:
    store = ValoriStore(3)
    store.upsert([[1, 0, 0], [0.999, 0.01, 0], [0.998, 0.02, 0], [0.6, 0.8, 0], [0.6, 0, 0.8]],
                 ids=["a", "a-dup1", "a-dup2", "b", "c"])
    q = [1, 0.1, 0.1]
    plain = [h.id for h in store.search(q, k=3)]
    diverse = [h.id for h in store.mmr_search(q, k=3, fetch_k=5, lambda_mult=0.3)]
    assert set(plain) == {"a", "a-dup1", "a-dup2"}
    assert diverse[0] == plain[0] and set(diverse[1:]) == {"b", "c"}
    # Hits carry their query score, identical to the plain search's.
    by_id = {h.id: h for h in store.search(q, k=5)}
    for h in store.mmr_search(q, k=3, fetch_k=5, lambda_mult=0.3):
        assert (h.raw, h.score) == (by_id[h.id].raw, by_id[h.id].score)


def test_mmr_respects_filter_and_lambda_one_is_plain_search() -> None:
    store = _store()
    q = np.arange(8, dtype=np.float64)
    hits = store.mmr_search(q, k=5, fetch_k=12, filter={"even": True})
    assert all(h.metadata["even"] for h in hits) and len(hits) == 5
    assert [h.id for h in store.mmr_search(q, k=5, fetch_k=5, lambda_mult=1.0)] == [h.id for h in store.search(q, k=5)]


@pytest.mark.parametrize("lam", [-0.1, 1.5, float("nan"), "0.5", True])
def test_mmr_bad_lambda(lam: object) -> None:
    with pytest.raises(InputError, match="lambda_mult"):
        _store(n=3).mmr_search(np.ones(8), lambda_mult=lam)  # type: ignore[arg-type]


def test_mmr_does_not_depend_on_insertion_order() -> None:
    a, b = _store(seed=3), ValoriStore(8)
    recs = a.get(a.ids())
    order = list(reversed(range(len(recs))))
    b.upsert([recs[i].values for i in order], ids=[recs[i].id for i in order], metadatas=[recs[i].metadata for i in order])
    q = np.linspace(-1, 1, 8)
    assert [h.id for h in a.mmr_search(q, k=7, fetch_k=30, lambda_mult=0.4)] == \
        [h.id for h in b.mmr_search(q, k=7, fetch_k=30, lambda_mult=0.4)]


# --------------------------------------------------------------------------- select


def test_select_is_filtered_id_order_with_paging() -> None:
    store = _store(n=12)
    store.upsert(np.ones((1, 8)), ids=["a-first"], metadatas=[{"i": -1, "even": True}])
    everything = [r.id for r in store.select()]
    assert everything == sorted(store.ids(), key=lambda s: s.encode("utf-8")) == store.ids()
    even = [r.id for r in store.select({"even": True})]
    assert even == [i for i in everything if store.get([i])[0].metadata["even"]]
    assert [r.id for r in store.select({"even": True}, limit=3, offset=2)] == even[2:5]
    assert [r.id for r in store.select({"$ids": ["r003", "zz", "a-first"], "even": False})] == ["r003"]
    assert store.select(limit=0) == []
    with pytest.raises(InputError):
        store.select(offset=-1)
