"""The narrow scan returns exactly the full scan's top-k (docs/spec.md, "The narrow scan").

* the kernels equal the NumPy/Python-int reference (spec/narrow.py) bit for bit;
* every row's exact key lies within its computed bounds (the lemma the proof rests on);
* searches through the narrow scan equal the full scan's (ids, order, raw scores) on
  random stores, all three metrics, ties, filters and k beyond the matches;
* rows built to sit exactly on their bound, tied at the k-th place, are still returned;
* the int8 copy follows overwrites, deletes and records without vectors.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valori_store import ValoriStore
from valori_store.kernels.narrow import bounded_candidates, narrow_bounds, narrow_into
from valori_store.query import ranking
from valori_store.spec import narrow as spec
from valori_store.spec import rank_key, raw_score

METRICS = ("cosine", "dot", "l2")


@pytest.fixture
def force_narrow(monkeypatch):
    monkeypatch.setattr(ranking, "NARROW_FROM", 1)


def _kernel_narrow(rows: np.ndarray):
    y = np.zeros(rows.shape, np.int8)
    shifts = np.zeros(len(rows), np.uint8)
    x2 = np.zeros(len(rows), np.int64)
    narrow_into(rows, 0, len(rows), y, shifts, x2)
    return y, shifts, x2


magnitudes = st.sampled_from([1, 100, 127, 128, 255, 256, 1 << 16, 1 << 20, (1 << 24) + 3])


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), m=magnitudes, n=st.integers(1, 40), d=st.integers(1, 24))
def test_kernels_equal_the_reference_and_bounds_hold(seed: int, m: int, n: int, d: int) -> None:
    rng = np.random.default_rng(seed)
    rows = rng.integers(-m, m + 1, size=(n, d), dtype=np.int64).astype(np.int32)
    rows[0, 0] = m  # a row at its magnitude exactly
    if n > 2:
        rows[1] = 0  # a zero row
        rows[2] = -m
    query = rng.integers(-(1 << 16), (1 << 16) + 1, size=d, dtype=np.int64).astype(np.int32)
    y, shifts, x2 = _kernel_narrow(rows)
    ry, rs, rx2 = spec.narrow_rows(rows)
    assert np.array_equal(y, ry) and np.array_equal(shifts, rs) and np.array_equal(x2, rx2)
    q = [int(v) for v in query]
    l1, q2 = sum(abs(v) for v in q), sum(v * v for v in q)
    allowed = (np.arange(n) % 4 != 3).astype(np.uint8)
    for distance, metric in ((False, "dot"), (True, "l2")):
        lower, upper = spec.key_bounds(ry, rs, rx2, query, distance)
        for i in range(n):
            exact = rank_key(metric, raw_score(metric, rows[i].tolist(), query.tolist()))
            assert lower[i] <= exact <= upper[i]
        klo, kup = narrow_bounds(y, shifts, x2, n, query, l1, q2, distance, 7)
        assert klo.tolist() == lower and kup.tolist() == upper
        for mask in (np.zeros(0, np.uint8), allowed):
            got = bounded_candidates(klo, kup, mask, 3).tolist()
            ok = [i for i in range(n) if not len(mask) or mask[i]]
            threshold = sorted((lower[i] for i in ok), reverse=True)[min(3, len(ok)) - 1] if ok else None
            assert got == [i for i in ok if upper[i] >= threshold]


def _pairs(hits):
    return [(h.id, h.raw) for h in hits]


def _both(store: ValoriStore, q, k: int, flt=None):
    saved = ranking.NARROW_FROM
    try:
        ranking.NARROW_FROM = 10**12
        full = _pairs(store.search(q, k=k, filter=flt))
        ranking.NARROW_FROM = 1
        narrow = _pairs(store.search(q, k=k, filter=flt))
    finally:
        ranking.NARROW_FROM = saved
    return full, narrow


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), metric=st.sampled_from(METRICS), n=st.integers(1, 200),
       d=st.integers(1, 16), k=st.integers(1, 30), coarse=st.booleans(), scale=st.sampled_from([1.0, 300.0]))
def test_narrow_search_equals_full_search(seed, metric, n, d, k, coarse, scale) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * scale
    if coarse:  # few distinct values: many exact ties, also at the k-th place
        x = np.round(x)
        x[: n // 3] = x[0]
    if metric == "cosine":  # cosine needs a direction
        x[np.all(np.abs(x) < 1e-4, axis=1), 0] = 1.0
    store = ValoriStore(d, metric=metric)
    store.upsert(x, ids=[f"r{i:03d}" for i in range(n)], metadatas=[{"g": i % 3} for i in range(n)])
    for qi in range(3):
        q = x[(qi * 7) % n] + (rng.standard_normal(d) if qi == 2 else 0)
        if metric == "cosine" and not np.any(np.abs(q) >= 1e-4):
            continue
        for flt in (None, {"g": {"$ne": 1}}, {"g": 2}):
            full, narrow = _both(store, q, k, flt)
            assert narrow == full


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_rows_sitting_on_their_bound_tied_at_kth_place(metric: str, force_narrow) -> None:
    """q = -1 everywhere and rows of odd values with shift 1: each residual is -1, so
    sum q_i r_i = +d and the upper bound of the dot key is exactly the key. Rows tied with
    the k-th best at that bound must still be candidates (>=, not >)."""
    d = 8
    base = np.full(d, -201, dtype=np.int64)  # odd, max |x| 201 -> shift 1
    rows = [base.copy() for _ in range(6)]
    rows[3][0] = -199  # a slightly worse row (dot with -1: 1606 vs 1608)
    rows.append(np.full(d, -101, dtype=np.int64))  # shift 0: exact, far below
    stored = np.array(rows, dtype=np.int32)
    y, shifts, x2 = _kernel_narrow(stored)
    q = np.full(d, -1, dtype=np.int32)
    lower, upper = spec.key_bounds(y, shifts, x2, q, metric == "l2")
    exact = [rank_key(metric, raw_score(metric, r.tolist(), q.tolist())) for r in stored]
    assert upper[0] == exact[0]  # the construction: on the bound
    store = ValoriStore(d, metric=metric)
    ids = ["f", "a", "e", "b", "d", "c", "g"]  # ties broken by id, not by row
    store.upsert(stored / 65536.0, ids=ids)
    for k in range(1, 7):
        full, narrow = _both(store, q / 65536.0, k)
        assert narrow == full


def test_the_copy_follows_overwrites_deletes_and_plain_records(force_narrow) -> None:
    rng = np.random.default_rng(11)
    d = 12
    store = ValoriStore(d, metric="dot")
    x = rng.standard_normal((300, d))
    store.upsert(x, ids=[f"r{i:03d}" for i in range(300)])
    q = rng.standard_normal(d)
    assert _both(store, q, 10)[0] == _both(store, q, 10)[1]  # the copy now exists
    best = _pairs(store.search(q, k=1))[0][0]
    store.upsert(-x[:50] * 5, ids=[f"r{i:03d}" for i in range(50)])  # overwrite in place
    store.delete([best] + [f"r{i:03d}" for i in range(100, 140)])  # moves rows into holes
    store.upsert_plain([f"r{i:03d}" for i in range(60, 70)])  # vectors removed
    store.upsert(rng.standard_normal((20, d)) * 3, ids=[f"n{i}" for i in range(20)])  # appended later
    for _ in range(5):
        q = rng.standard_normal(d)
        full, narrow = _both(store, q, 15)
        assert narrow == full
        assert not any(i.startswith("r06") for i, _ in narrow)
    _assert_copy_current(store)


def _assert_copy_current(store: ValoriStore) -> None:
    """The invariant: the cached int8 copy equals a fresh narrowing of the matrix."""
    table = store._live.table
    got = table.narrow.refresh(table.matrix, table.n)
    fresh = _kernel_narrow(np.ascontiguousarray(table.matrix[: table.n]))
    for a, b in zip(got, fresh):
        assert np.array_equal(a, b)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.sampled_from(["put", "put", "del", "plain", "search"]), st.integers(0, 30),
                                st.integers(0, 2**16)), min_size=1, max_size=30))
def test_copy_stays_current_through_random_mutations(steps) -> None:
    store = ValoriStore(6, metric="dot")
    saved = ranking.NARROW_FROM
    ranking.NARROW_FROM = 1
    try:
        for action, k, seed in steps:
            rid = f"r{k:02d}"
            if action == "put":
                v = np.random.default_rng(seed).standard_normal((1, 6)) * (1 + seed % 500)
                store.upsert(v, ids=[rid])
            elif action == "del":
                store.delete([rid])
            elif action == "plain":
                store.upsert_plain([rid])
            elif len(store):
                store.search(np.ones(6), k=3)
                _assert_copy_current(store)
        if len(store):
            store.search(np.ones(6), k=3)
            _assert_copy_current(store)
    finally:
        ranking.NARROW_FROM = saved


def test_large_store_takes_the_narrow_path_by_default(monkeypatch) -> None:
    calls = []
    real = ranking.bounded_candidates

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(ranking, "bounded_candidates", spy)
    rng = np.random.default_rng(2)
    store = ValoriStore(8)
    store.upsert(rng.standard_normal((ranking.NARROW_FROM, 8)))
    store.search(rng.standard_normal(8), k=5)
    assert calls == [1]
    small = ValoriStore(8)
    small.upsert(rng.standard_normal((100, 8)))
    small.search(rng.standard_normal(8), k=5)
    assert calls == [1]


def test_concurrent_first_searches_build_the_caches_once(force_narrow) -> None:
    """Threads racing to build the int8 copy and the filter columns after a write all get
    the sequential answer (the caches refresh under their own lock)."""
    import threading

    rng = np.random.default_rng(9)
    d = 16
    store = ValoriStore(d, metric="dot")
    store.upsert(rng.standard_normal((3000, d)), ids=[f"r{i:04d}" for i in range(3000)],
                 metadatas=[{"g": i % 5, "tags": [f"t{i % 7}"]} for i in range(3000)])
    queries = rng.standard_normal((8, d))
    flt = {"g": {"$ne": 2}, "tags": {"$any": ["t1", "t3"]}}
    for rounds in range(3):
        # a write invalidates both caches; then every thread races to refresh them
        store.upsert(rng.standard_normal((50, d)), ids=[f"r{i:04d}" for i in range(rounds * 50, rounds * 50 + 50)],
                     metadatas=[{"g": 2 - rounds, "tags": ["t1"]}] * 50)
        store.delete([f"r{2999 - rounds}"])
        results: dict[int, list] = {}
        barrier = threading.Barrier(6)

        def work(t: int) -> None:
            barrier.wait()
            results[t] = [_pairs(store.search(q, k=7, filter=flt)) for q in queries]

        threads = [threading.Thread(target=work, args=(t,)) for t in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        ranking.NARROW_FROM = 10**12
        expected = [_pairs(store.search(q, k=7, filter=flt)) for q in queries]
        ranking.NARROW_FROM = 1
        assert all(results[t] == expected for t in range(6))
