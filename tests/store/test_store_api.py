"""The ValoriStore contract: records, search order, bad input, determinism invariants."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from valori_store import (
    ClosedError,
    DimensionError,
    FilterError,
    IdError,
    InputError,
    MetadataError,
    NotFoundError,
    RangeError,
    ValoriError,
    ValoriStore,
    VectorError,
    ZeroVectorError,
    spec,
)


def _data(n: int = 40, dim: int = 6, seed: int = 3) -> np.ndarray:
    rng = np.random.Generator(np.random.PCG64(seed))
    return rng.integers(-(1 << 17), 1 << 17, size=(n, dim)) / 65536.0  # exact Q16.16 values


def _store(metric: str = "cosine", n: int = 40, dim: int = 6) -> tuple[ValoriStore, np.ndarray, list[str]]:
    s = ValoriStore(dim, metric)
    v = _data(n, dim)
    ids = [f"id-{i:03d}" for i in range(n)]
    s.upsert(v, ids=ids, texts=[f"text {i}" for i in range(n)], metadatas=[{"i": i, "odd": i % 2 == 1} for i in range(n)])
    return s, v, ids


# ---------------------------------------------------------------- records
def test_upsert_get_delete_len_ids() -> None:
    s, v, ids = _store("dot")
    assert len(s) == 40 and s.ids() == sorted(ids)
    recs = s.get(["id-005", "missing", "id-001"])
    assert [r.id for r in recs] == ["id-005", "id-001"]
    assert recs[0].vector.tolist() == spec.quantize(v[5], 6)[0].tolist()
    assert recs[0].text == "text 5" and recs[0].metadata == {"i": 5, "odd": True}
    assert s.delete(["id-005", "id-005", "nope"]) == 1
    assert s.delete(["nope"]) == 0
    assert len(s) == 39 and "id-005" not in s


def test_upsert_overwrites_by_id() -> None:
    s, v, _ = _store("dot")
    s.upsert([v[0]], ids=["id-007"], texts=["new"], metadatas=[{"x": 1}])
    assert len(s) == 40
    (r,) = s.get(["id-007"])
    assert r.text == "new" and r.metadata == {"x": 1}


def test_generated_ids_are_deterministic_and_distinct() -> None:
    a, b = ValoriStore(3), ValoriStore(3)
    v = [[1, 2, 3], [1, 2, 3]]
    ids_a = a.upsert(v) + a.upsert(v)
    ids_b = b.upsert(v) + b.upsert(v)
    assert ids_a == ids_b and len(set(ids_a)) == 4
    assert a.state_hash() == b.state_hash()


def test_returned_objects_are_copies() -> None:
    s, _, _ = _store("dot")
    meta = {"tags": ["a"]}
    s.upsert([[1, 2, 3, 4, 5, 6]], ids=["m"], metadatas=[meta])
    meta["tags"].append("mutated")
    (r,) = s.get(["m"])
    assert r.metadata == {"tags": ["a"]}
    r.metadata["tags"].append("again")
    assert s.get(["m"])[0].metadata == {"tags": ["a"]}
    with pytest.raises(ValueError):
        r.vector[0] = 5


# ---------------------------------------------------------------- bad input changes nothing
BAD_UPSERTS = [
    (dict(vectors=[[float("nan")] * 6]), VectorError),
    (dict(vectors=[[float("inf")] * 6]), VectorError),
    (dict(vectors=[[1.0] * 5]), DimensionError),
    (dict(vectors=[[40000.0] * 6]), RangeError),
    (dict(vectors=[[0.0] * 6]), ZeroVectorError),
    (dict(vectors=[[1.0] * 6], metadatas=[{"d": {1, 2}}]), MetadataError),
    (dict(vectors=[[1.0] * 6], metadatas=[{"x": float("nan")}]), MetadataError),
    (dict(vectors=[[1.0] * 6], metadatas=[{1: "int key"}]), MetadataError),
    (dict(vectors=[[1.0] * 6], metadatas=[{"t": (1, 2)}]), MetadataError),
    (dict(vectors=[[1.0] * 6], ids=[7]), IdError),
    (dict(vectors=[[1.0] * 6], ids=[""]), IdError),
    (dict(vectors=[[1.0] * 6] * 2, ids=["a", "a"]), IdError),
    (dict(vectors=[[1.0] * 6] * 2, ids=["a"]), InputError),
    (dict(vectors=[[1.0] * 6], texts=["a", "b"]), InputError),
    (dict(vectors=[[1.0] * 6], texts=[5]), MetadataError),
    (dict(vectors=[[1.0] * 6], ids="abc"), InputError),
    (dict(vectors="not a vector"), VectorError),
]


@pytest.mark.parametrize("kwargs,error", BAD_UPSERTS)
def test_bad_upserts_raise_package_errors_and_change_nothing(kwargs: dict, error: type) -> None:
    s, _, _ = _store("cosine")
    before, log_before, snap = s.state_hash(), s.log_length, s.to_bytes()
    # a batch whose first rows are fine but one is bad: nothing of it is applied
    with pytest.raises(error) as info:
        s.upsert(**kwargs)
    assert isinstance(info.value, ValoriError) and isinstance(info.value, ValueError)
    assert s.state_hash() == before and s.log_length == log_before and s.to_bytes() == snap


def test_partially_bad_batch_is_rejected_whole() -> None:
    s, v, _ = _store("cosine")
    before = s.state_hash()
    batch = np.vstack([v[:3], [[np.nan] * 6]])
    with pytest.raises(VectorError, match=r"index \(3, 0\)"):
        s.upsert(batch, ids=["n1", "n2", "n3", "n4"])
    assert s.state_hash() == before and "n1" not in s


@pytest.mark.parametrize(
    "call,error",
    [
        (lambda s: s.search([1.0] * 6, k=-1), InputError),
        (lambda s: s.search([1.0] * 6, k=True), InputError),
        (lambda s: s.search([1.0] * 6, k="3"), InputError),
        (lambda s: s.search([1.0] * 5), DimensionError),
        (lambda s: s.search([[1.0] * 6] * 2), InputError),
        (lambda s: s.search([1.0] * 6, filter={"$bogus": 1}), FilterError),
        (lambda s: s.delete("id-001"), InputError),
        (lambda s: s.delete([1]), IdError),
        (lambda s: s.get([None]), IdError),
        (lambda s: s.restore("no-such-label"), NotFoundError),
        (lambda s: s.restore(99), NotFoundError),
        (lambda s: s.restore(2.5), InputError),
        (lambda s: s.checkpoint(label=3), InputError),
    ],
)
def test_bad_calls_raise_package_errors(call, error) -> None:
    s, _, _ = _store("cosine")
    before = s.state_hash()
    with pytest.raises(error):
        call(s)
    assert s.state_hash() == before


def test_constructor_validation() -> None:
    with pytest.raises(InputError):
        ValoriStore(0)
    with pytest.raises(InputError):
        ValoriStore(3, "manhattan")
    with pytest.raises(InputError):
        ValoriStore(True)


def test_closed_store_refuses_work(tmp_path) -> None:
    s = ValoriStore.open(tmp_path / "d", dim=3)
    s.close()
    with pytest.raises(ClosedError):
        s.upsert([[1, 2, 3]])
    s.close()  # idempotent


# ---------------------------------------------------------------- search semantics
def _reference(s: ValoriStore, metric: str, q: np.ndarray, k: int, pred=None) -> list[tuple[str, int]]:
    """Independent ranking: Python ints over the stored vectors, sort by (-key, id bytes)."""
    recs = s.get(s.ids())
    query = spec.quantize(q, s.dim)[0]
    if metric == "cosine":
        query = np.array(spec.normalize_row(query.tolist()))
    scored = [
        (r.id, spec.raw_score(metric, query.tolist(), r.vector.tolist()))
        for r in recs
        if pred is None or pred(r.metadata)
    ]
    scored.sort(key=lambda t: (-spec.rank_key(metric, t[1]), t[0].encode()))
    return scored[:k]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@pytest.mark.parametrize("k", [1, 5, 39, 40, 100])
def test_search_equals_independent_reference(metric: str, k: int) -> None:
    s, v, _ = _store(metric)
    q = _data(1, 6, seed=99)[0]
    hits = s.search(q, k=k)
    assert [(h.id, h.raw) for h in hits] == _reference(s, metric, q, k)
    for h in hits:
        assert h.score == spec.reported_score(metric, h.raw)
    # scores are "higher is better" for every metric
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_filter_applies_before_top_k(metric: str) -> None:
    s, _, _ = _store(metric)
    q = _data(1, 6, seed=7)[0]
    hits = s.search(q, k=10, filter={"odd": True, "i": {"$lt": 30}})
    assert len(hits) == 10  # 15 records match, so k come back
    assert all(h.metadata["odd"] and h.metadata["i"] < 30 for h in hits)
    assert [(h.id, h.raw) for h in hits] == _reference(s, metric, q, 10, lambda m: m["odd"] and m["i"] < 30)
    assert len(s.search(q, k=10, filter={"i": {"$in": [1, 2, 3]}})) == 3
    assert s.search(q, k=10, filter={"i": -1}) == []


def test_many_exact_ties_resolve_by_id_bytes_at_the_kth_place() -> None:
    s = ValoriStore(4, "dot")
    ids = [f"t{i}" for i in range(50)] + ["\u00e9", "Z", "a"]
    s.upsert(np.tile([1.0, 0, 0, 0], (len(ids), 1)), ids=ids)
    hits = s.search([1.0, 0, 0, 0], k=7)
    assert [h.id for h in hits] == sorted(ids, key=str.encode)[:7]
    assert len({h.raw for h in hits}) == 1
    # k vs k+1: a prefix
    assert [h.id for h in s.search([1.0, 0, 0, 0], k=8)][:7] == [h.id for h in hits]


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_batch_equals_alone(metric: str) -> None:
    s, _, _ = _store(metric, n=300)
    qs = _data(70, 6, seed=11)  # more than one kernel query block
    batch = s.search_batch(qs, k=9, filter={"odd": False})
    alone = [s.search(q, k=9, filter={"odd": False}) for q in qs]
    assert batch == alone


def test_empty_store_and_k_zero() -> None:
    s = ValoriStore(3)
    assert s.search([1, 2, 3]) == [] and s.search_batch([[1, 2, 3]]) == [[]]
    s2, _, _ = _store()
    assert s2.search(_data(1, 6)[0], k=0) == []


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_overflow_fallback_is_exact(metric: str) -> None:
    """Magnitudes near 32768 at dim 64 exceed the int64 proof: the exact path must be used."""
    rng = np.random.Generator(np.random.PCG64(8))
    dim = 64
    v = rng.integers(-(2**31), 2**31 - 1, size=(30, dim)) / 65536.0
    s = ValoriStore(dim, metric)
    s.upsert(v, ids=[f"x{i:02d}" for i in range(30)])
    q = v[4]
    hits = s.search(q, k=30)
    assert [(h.id, h.raw) for h in hits] == _reference(s, metric, q, 30)
    assert max(abs(h.raw) for h in hits) > 2**63  # really beyond int64
    assert s.search_batch([q, v[5]], k=5) == [s.search(q, k=5), s.search(v[5], k=5)]


# ---------------------------------------------------------------- determinism of state
def test_insertion_order_and_chunking_do_not_change_hash_or_bytes() -> None:
    v = _data(60, 6)
    ids = [f"k{i}" for i in range(60)]
    metas = [{"i": i, "nested": {"b": [1, 2.5, None], "a": "x"}} for i in range(60)]
    whole = ValoriStore(6)
    whole.upsert(v, ids=ids, metadatas=metas)
    perm = np.random.Generator(np.random.PCG64(1)).permutation(60)
    chunked = ValoriStore(6)
    for start in range(0, 60, 7):
        sel = perm[start : start + 7]
        chunked.upsert(v[sel], ids=[ids[i] for i in sel], metadatas=[metas[i] for i in sel])
    # a detour: extra records added and removed, one overwritten then restored
    chunked.upsert([[1, 2, 3, 4, 5, 6]], ids=["tmp"])
    chunked.delete(["tmp"])
    assert whole.state_hash() == chunked.state_hash()
    assert whole.to_bytes() == chunked.to_bytes()


def test_hash_changes_with_any_content_change() -> None:
    s, v, _ = _store()
    h0 = s.state_hash()
    for change in (
        lambda: s.upsert([v[0]], ids=["id-000"], texts=["text 0"], metadatas=[{"i": 0, "odd": False, "x": 1}]),
        lambda: s.upsert([v[0]], ids=["id-000"], texts=["text 0!"], metadatas=[{"i": 0, "odd": False}]),
        lambda: s.upsert([v[1]], ids=["id-000"], texts=["text 0"], metadatas=[{"i": 0, "odd": False}]),
    ):
        s2 = ValoriStore.from_bytes(s.to_bytes())
        assert s2.state_hash() == h0
        change()
        assert s.state_hash() != h0
        s.upsert([v[0]], ids=["id-000"], texts=["text 0"], metadatas=[{"i": 0, "odd": False}])
        assert s.state_hash() == h0
    # int vs float vs bool in metadata are different content
    a, b, c = ValoriStore(2), ValoriStore(2), ValoriStore(2)
    a.upsert([[1, 0]], ids=["x"], metadatas=[{"v": 1}])
    b.upsert([[1, 0]], ids=["x"], metadatas=[{"v": 1.0}])
    c.upsert([[1, 0]], ids=["x"], metadatas=[{"v": True}])
    assert len({a.state_hash(), b.state_hash(), c.state_hash()}) == 3
    assert [x.get(["x"])[0].metadata["v"] for x in (a, b, c)] == [1, 1.0, True]
    assert [type(x.get(["x"])[0].metadata["v"]) for x in (a, b, c)] == [int, float, bool]


def test_snapshot_roundtrip_is_exact() -> None:
    s, v, _ = _store("l2")
    b = s.to_bytes()
    s2 = ValoriStore.from_bytes(b)
    assert s2.to_bytes() == b and s2.metric == "l2" and s2.dim == 6
    q = _data(1, 6, seed=5)[0]
    assert s2.search(q, k=10) == s.search(q, k=10)


def test_checkpoint_restore_and_history() -> None:
    s, v, _ = _store()
    q = _data(1, 6, seed=5)[0]
    cp1 = s.checkpoint("one")
    res1 = s.search(q, k=8)
    s.delete(["id-001", "id-002"])
    s.upsert([v[3]], ids=["new"], texts=["t"])
    cp2 = s.checkpoint("two")
    assert cp2.state_hash != cp1.state_hash
    assert s.restore("one") == cp1
    assert s.state_hash() == cp1.state_hash and s.search(q, k=8) == res1
    assert [c.label for c in s.history()] == ["one", "two"]
    s.restore(cp2)
    assert s.state_hash() == cp2.state_hash
    s.restore(cp1.seq)
    assert s.state_hash() == cp1.state_hash
    report = s.verify()
    assert report.ok and report.state_hash == cp1.state_hash
    assert report.event_counts["restore"] == 3


def test_threads_mutate_and_search_safely() -> None:
    s = ValoriStore(8, "cosine")
    rng = np.random.Generator(np.random.PCG64(2))
    data = rng.integers(1, 1 << 16, size=(400, 8)) / 65536.0
    errors: list[BaseException] = []

    def writer(t: int) -> None:
        try:
            for b in range(10):
                rows = slice(t * 100 + b * 10, t * 100 + b * 10 + 10)
                s.upsert(data[rows], ids=[f"w{t}-{i}" for i in range(b * 10, b * 10 + 10)])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    def reader() -> None:
        try:
            for _ in range(30):
                hits = s.search(data[0], k=5)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(t,)) for t in range(4)] + [
        threading.Thread(target=reader) for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(s) == 400
    ref = ValoriStore(8, "cosine")
    ref.upsert(data, ids=[f"w{t}-{i}" for t in range(4) for i in range(100)])
    assert s.state_hash() == ref.state_hash()
    assert s.verify().ok


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_mixed_magnitudes_split_between_kernel_and_exact_path(metric: str, monkeypatch) -> None:
    """A few extreme rows take the exact path; the rest stay on the kernel; results exact."""
    from valori_store.query import ranking as search_mod

    rng = np.random.Generator(np.random.PCG64(21))
    dim = 48
    normal = rng.integers(-(1 << 16), 1 << 16, size=(200, dim)) / 65536.0
    extreme = rng.integers(-(2**31), 2**31 - 1, size=(5, dim)) / 65536.0
    s = ValoriStore(dim, metric)
    s.upsert(np.vstack([normal, extreme]), ids=[f"n{i:03d}" for i in range(205)],
             metadatas=[{"big": i >= 200} for i in range(205)])
    exact_rows: list[int] = []
    real = search_mod._exact_keys
    monkeypatch.setattr(search_mod, "_exact_keys", lambda m, rows, q: exact_rows.append(len(rows)) or real(m, rows, q))
    def overflow_possible(q: np.ndarray, rec) -> bool:  # the proof, in Python ints
        qm = max(abs(int(v)) for v in spec.quantize(q, dim)[0])
        rm = max(abs(int(v)) for v in rec.vector)
        bound = dim * (qm + rm) ** 2 if metric == "l2" else dim * qm * rm
        return bound > 2**63 - 1

    saw_split = False
    for q in (normal[3], extreme[1], extreme[1] / 64):
        for flt, pred in ((None, None), ({"big": False}, lambda m: not m["big"])):
            exact_rows.clear()
            hits = s.search(q, k=12, filter=flt)
            assert [(h.id, h.raw) for h in hits] == _reference(s, metric, q, 12, pred)
            expected = [r for r in s.get(s.ids()) if (pred is None or pred(r.metadata)) and overflow_possible(q, r)]
            assert sum(exact_rows) == len(expected)  # exactly the rows that fail the proof
            saw_split |= 0 < len(expected) < 205
    assert saw_split  # some query really mixed kernel rows and exact rows
    # deleting the extreme rows brings every query back to the kernel
    s.delete([f"n{i:03d}" for i in range(200, 205)])
    exact_rows.clear()
    s.search(normal[0], k=5)
    assert exact_rows == []


def test_out_of_memory_while_growing_leaves_log_and_state_untouched(monkeypatch) -> None:
    from valori_store.state.table import RecordTable

    s = ValoriStore(3, "dot")
    s.upsert([[1, 2, 3]], ids=["a"])
    before, log_before = s.state_hash(), s.log_length
    real = RecordTable.reserve

    def no_memory(self, needed: int) -> None:
        if needed > self.matrix.shape[0]:
            raise MemoryError("simulated")
        real(self, needed)

    monkeypatch.setattr(RecordTable, "reserve", no_memory)
    with pytest.raises(MemoryError):
        s.upsert(np.ones((500, 3)), ids=[f"x{i}" for i in range(500)])
    assert s.log_length == log_before and s.state_hash() == before
    monkeypatch.undo()
    report = s.verify()
    assert report.ok and report.state_hash == before


# --------------------------------------------------------------------------- write (delete + upsert)


def test_write_is_one_event_equal_to_delete_then_upsert() -> None:
    a, b = ValoriStore(3), ValoriStore(3)
    for s in (a, b):
        s.upsert([[1, 0, 0], [0, 1, 0], [0, 0, 1]], ids=["x", "y", "z"])
    before = a.log_length
    assert a.write(delete=["x", "missing"], vectors=[[1, 1, 0], [1, 0, 1]], ids=["y", "w"]) == ["y", "w"]
    assert a.log_length == before + 1
    b.delete(["x", "missing"])
    b.upsert([[1, 1, 0], [1, 0, 1]], ids=["y", "w"])
    assert a.state_hash() == b.state_hash() and a.to_bytes() == b.to_bytes()
    assert a.verify().ok


def test_write_with_only_one_part_logs_the_plain_event() -> None:
    a, b = ValoriStore(2), ValoriStore(2)
    for s in (a, b):
        s.upsert([[1, 0], [0, 1]], ids=["p", "q"])
    a.write(delete=["p"])
    a.write(vectors=[[1, 1]], ids=["r"])
    a.write(delete=["nothing-here"])
    b.delete(["p"])
    b.upsert([[1, 1]], ids=["r"])
    assert a.log_length == b.log_length and a.state_hash() == b.state_hash()


def test_write_bad_input_changes_nothing() -> None:
    s = ValoriStore(2)
    s.upsert([[1, 0]], ids=["p"])
    before = (s.log_length, s.state_hash())
    with pytest.raises(InputError):
        s.write(delete=["p"], vectors=[[float("nan"), 0]], ids=["q"])
    with pytest.raises(InputError):
        s.write(delete=["p"], ids=["q"])
    assert (s.log_length, s.state_hash()) == before and "p" in s


def test_write_survives_reopen_as_one_record(tmp_path) -> None:
    s = ValoriStore.open(tmp_path / "db", dim=2)
    s.upsert([[1, 0], [0, 1]], ids=["p", "q"])
    s.write(delete=["p"], vectors=[[1, 1]], ids=["r"])
    expected = s.state_hash()
    s.close()
    with ValoriStore.open(tmp_path / "db") as again:
        assert again.state_hash() == expected and again.ids() == ["q", "r"]
    from valori_store import verify

    report = verify(tmp_path / "db")
    assert report.ok and report.event_counts.get("write") == 1


# --------------------------------------------------------------------------- batch metadata path


def test_metadata_batch_equals_per_record_canonical_form() -> None:
    from valori_store.format.canonical import canonical_metadata, canonical_metadata_batch

    metas = [None, {}, {"b": 1, "a": "x"}, {"f": 1.5, "t": True, "n": None}, {"nested": {"z": [1, 2.0]}},
             {"s": "é\u2028\"q\""}, {"big": 2**70}, {"neg0": -0.0}]
    assert canonical_metadata_batch(metas) == [canonical_metadata(m, k) for k, m in enumerate(metas)]


@pytest.mark.parametrize("n", [10, 5000])  # serial and parallel conversion kernels
def test_errors_keep_their_order_for_large_batches(n: int) -> None:
    s = ValoriStore(4)
    good = np.ones((n, 4))
    bad_vectors = good.copy()
    bad_vectors[n - 1, 0] = np.nan
    bad_meta = [{"i": i} for i in range(n)]
    bad_meta[n - 1] = {"x": {1, 2}}
    with pytest.raises(VectorError):  # vectors are checked first, even when metadata is bad too
        s.upsert(bad_vectors, metadatas=bad_meta)
    with pytest.raises(InputError, match="entries"):  # then lengths
        s.upsert(good, ids=[f"i{k}" for k in range(n + 1)], metadatas=bad_meta)
    with pytest.raises(MetadataError, match=f"#{n - 1}"):
        s.upsert(good, metadatas=bad_meta)
    assert len(s) == 0 and s.log_length == 1
    assert len(s.upsert(good, metadatas=[{"i": i} for i in range(n)])) == n



def test_upsert_without_vectors_raises() -> None:
    s = ValoriStore(2)
    with pytest.raises(InputError, match="needs vectors"):
        s.upsert(None, ids=["a"])  # type: ignore[arg-type]
    assert s.log_length == 1


def test_flat_metadata_batches_take_the_batch_path_and_equal_the_canonical_form() -> None:
    from valori_store.format.canonical import canonical_json, canonical_metadata_batch

    flat = [{"b": i, "a": f"x{i}\u00e9\"", "f": i / 7, "t": i % 2 == 0, "n": None, "big": 2**70 + i}
            for i in range(200)]
    assert canonical_metadata_batch(flat) == [canonical_json(m) for m in flat]
    assert canonical_metadata_batch(tuple(flat[:3])) == [canonical_json(m) for m in flat[:3]]
    assert canonical_metadata_batch([]) == []


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"x": float("nan")}, "NaN"),
        ({"x": float("-inf")}, "NaN"),
        ({"x": "\ud800"}, "#150"),
        ({1: "int key"}, "must be a str"),
        ({"x": (1, 2)}, "tuple"),
        ({"x": np.float64(1.0)}, "float64"),
        ({"x": True.__class__.__mro__[1](3)}, None),  # an exact int is fine
    ],
)
def test_one_bad_entry_in_a_flat_batch_gets_the_precise_error(bad, match) -> None:
    from valori_store.format.canonical import canonical_json, canonical_metadata_batch

    batch = [{"i": i, "s": "ok"} for i in range(300)]
    batch[150] = bad
    if match is None:
        assert canonical_metadata_batch(batch)[150] == canonical_json(bad)
        return
    with pytest.raises(MetadataError, match=match) as info:
        canonical_metadata_batch(batch)
    assert "#150" in str(info.value)
