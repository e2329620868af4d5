"""Retrieval receipts: content binding, tamper detection, re-execution at recorded states."""

from __future__ import annotations

import asyncio
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from valori_store import ValoriStore
from valori_store.receipts import Receipt, record_receipts, verify_receipt, verify_receipts


def _vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, dim))


def _fill(store: ValoriStore, n: int = 30, seed: int = 0) -> None:
    store.upsert(_vectors(n, seed=seed), ids=[f"d{i:02d}" for i in range(n)],
                 texts=[f"text {i}" for i in range(n)], metadatas=[{"i": i, "odd": i % 2 == 1} for i in range(n)])


@pytest.fixture
def store() -> ValoriStore:
    s = ValoriStore(8)
    _fill(s)
    return s


def test_receipt_binds_what_the_search_returned(store: ValoriStore) -> None:
    q = _vectors(1, seed=9)[0]
    hits, r = store.search_with_receipt(q, k=5, filter={"odd": True})
    assert r.ids == [h.id for h in hits] and r.raws == [h.raw for h in hits]
    assert r.state_hash == store.state_hash() and r.seq == store.log_length - 1
    assert r.k == 5 and r.metric == "cosine" and r.dim == 8
    assert json.loads(r.filter or "") == {"odd": {"$eq": True}}
    # The recorded query is the Q16.16 rounding of the input, before normalisation.
    expected = np.round(q * 65536).astype(np.int64)
    assert r.query_vector().astype(np.int64).tolist() == expected.tolist()
    assert r.digest == r.computed_digest()
    assert verify_receipt(store, r).ok


def test_json_round_trip_is_exact(store: ValoriStore) -> None:
    _, r = store.search_with_receipt(_vectors(1, seed=3)[0], k=4)
    text = r.to_json()
    again = Receipt.from_json(text)
    assert again == r and again.digest == r.digest and again.to_json() == text
    assert Receipt.from_dict(json.loads(text)) == r


@pytest.mark.parametrize(("field", "value"), [
    ("state_hash", "00" * 32), ("seq", 0), ("k", 3), ("filter", '{"odd":{"$eq":false}}'),
    ("results", [["d00", "1"]]), ("query", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="), ("metric", "dot"),
    ("mode", "mmr"), ("spec_version", 1),
])
def test_any_edit_is_reported_as_tampered(store: ValoriStore, field: str, value: object) -> None:
    _, r = store.search_with_receipt(_vectors(1, seed=4)[0], k=4, filter={"odd": True})
    data = r.to_dict()
    assert data[field] != value
    data[field] = value
    check = verify_receipt(store, data)
    assert check.status == "tampered" and not check.ok


def test_resealed_forgery_is_a_mismatch(store: ValoriStore) -> None:
    _, r = store.search_with_receipt(_vectors(1, seed=5)[0], k=4)
    swapped = [r.results[1], r.results[0], *r.results[2:]]
    forged = Receipt(**{**r.body(), "results": swapped}).sealed()
    check = verify_receipt(store, forged)
    assert check.status == "mismatch"
    assert check.actual == r.results and check.expected == swapped


def test_verifies_at_the_recorded_state_after_changes(store: ValoriStore) -> None:
    q = _vectors(1, seed=6)[0]
    hits_then, r = store.search_with_receipt(q, k=6)
    store.upsert(_vectors(5, seed=7), ids=[f"new{i}" for i in range(5)])
    store.delete([hits_then[0].id])
    assert [h.id for h in store.search(q, k=6)] != r.ids  # the live answer changed
    check = verify_receipt(store, r)
    assert check.ok, check.message


def test_receipts_after_restore_and_from_directory(tmp_path: Path) -> None:
    s = ValoriStore.open(tmp_path / "db", dim=8, durability="none")
    _fill(s)
    cp = s.checkpoint("base")
    q = _vectors(1, seed=11)[0]
    _, r1 = s.search_with_receipt(q, k=5)
    s.delete([f"d{i:02d}" for i in range(10)])
    _, r2 = s.search_with_receipt(q, k=5)
    s.restore(cp)
    _, r3 = s.search_with_receipt(q, k=5)
    assert r3.results == r1.results and r3.state_hash == r1.state_hash and r3.seq > r1.seq
    # While the store is open (locked), the directory can be verified from its files.
    assert [c.status for c in verify_receipts(tmp_path / "db", [r1, r2, r3])] == ["match"] * 3
    s.close()
    reopened = ValoriStore.open(tmp_path / "db")
    assert all(c.ok for c in verify_receipts(reopened, [r1, r2, r3]))


def test_other_store_is_state_unavailable(store: ValoriStore) -> None:
    _, r = store.search_with_receipt(_vectors(1, seed=12)[0], k=3)
    other = ValoriStore(8)
    _fill(other, seed=1)
    assert verify_receipt(other, r).status == "state-unavailable"
    wrong_shape = ValoriStore(4)
    wrong_shape.upsert([[1, 0, 0, 0]])
    assert verify_receipt(wrong_shape, r).status == "state-unavailable"


@pytest.mark.parametrize("more_events", [False, True], ids=["final-record", "middle-record"])
def test_tampered_log_is_reported(tmp_path: Path, more_events: bool) -> None:
    s = ValoriStore.open(tmp_path / "db", dim=8, durability="none")
    _fill(s)
    _, r = s.search_with_receipt(_vectors(1, seed=13)[0], k=3)
    if more_events:
        s.upsert(_vectors(1, seed=14), ids=["after"])
        s.checkpoint("after")
    s.close()
    log = tmp_path / "db" / "events.vlog"
    data = bytearray(log.read_bytes())
    data[200] ^= 0x01  # inside the upsert record the receipt's state depends on
    log.write_bytes(bytes(data))
    check = verify_receipt(tmp_path / "db", r)
    assert check.status == "corrupt-log" and not check.ok


def test_snapshot_file(store: ValoriStore, tmp_path: Path) -> None:
    _, r = store.search_with_receipt(_vectors(1, seed=14)[0], k=3)
    store.save(tmp_path / "s.vsnap")
    assert verify_receipt(tmp_path / "s.vsnap", r).ok
    store.upsert(_vectors(1, seed=15), ids=["later"])
    _, r2 = store.search_with_receipt(_vectors(1, seed=14)[0], k=3)
    assert verify_receipt(tmp_path / "s.vsnap", r2).status == "state-unavailable"


def test_batch_receipts_equal_single_receipts(store: ValoriStore) -> None:
    qs = _vectors(7, seed=16)
    with record_receipts() as got:
        store.search_batch(qs, k=4, filter={"odd": False})
    singles = [store.search_with_receipt(q, k=4, filter={"odd": False})[1] for q in qs]
    assert [r.to_json() for r in got] == [r.to_json() for r in singles]


def test_mmr_receipt(store: ValoriStore) -> None:
    hits, r = store.mmr_search_with_receipt(_vectors(1, seed=17)[0], k=4, fetch_k=12, lambda_mult=0.3)
    lam = Fraction(0.3)
    assert r.mode == "mmr" and r.fetch_k == 12 and r.lam == f"{lam.numerator}/{lam.denominator}"
    assert r.ids == [h.id for h in hits]
    assert verify_receipt(store, r).ok
    # The same results claimed under another lambda: verification re-runs MMR with that
    # lambda, so the verdict follows whether lambda 1/2 really picks the same ids.
    forged = Receipt(**{**r.body(), "lam": "1/2"}).sealed()
    same = [h.id for h in store.mmr_search(_vectors(1, seed=17)[0], k=4, fetch_k=12, lambda_mult=0.5)] == r.ids
    assert verify_receipt(store, forged).status == ("match" if same else "mismatch")
    lam_zero = Receipt(**{**r.body(), "lam": "0/1"}).sealed()  # pure diversity picks otherwise here
    diverse = [h.id for h in store.mmr_search(_vectors(1, seed=17)[0], k=4, fetch_k=12, lambda_mult=0.0)]
    assert diverse != r.ids and verify_receipt(store, lam_zero).status == "mismatch"
    assert verify_receipt(store, Receipt(**{**r.body(), "lam": "x"}).sealed()).status == "invalid"


def test_identical_histories_give_identical_receipt_bytes() -> None:
    a, b = ValoriStore(8), ValoriStore(8)
    for s in (a, b):
        _fill(s)
        s.delete(["d03"])
    q = _vectors(1, seed=18)[0]
    assert a.search_with_receipt(q, k=5)[1].to_json() == b.search_with_receipt(q, k=5)[1].to_json()


def test_recorder_nesting_threads_and_asyncio(store: ValoriStore) -> None:
    q = _vectors(1, seed=19)[0]
    with record_receipts() as outer:
        store.search(q)
        with record_receipts() as inner:
            store.mmr_search(q)
        assert len(inner) == 1

        async def main() -> None:
            await asyncio.gather(asyncio.to_thread(store.search, q, 2), asyncio.to_thread(store.search, q, 3))
        asyncio.run(main())
    assert len(outer) == 4 and outer[1] is inner[0]
    assert sorted(r.k for r in outer) == [2, 3, 4, 4]
    store.search(q)  # no recorder: nothing recorded anywhere
    assert len(outer) == 4


@pytest.mark.parametrize("bad", [{"x": 1}, "not json", [], {"digest": "x"}])
def test_malformed_receipts_are_invalid(store: ValoriStore, bad: object) -> None:
    check = verify_receipts(store, [bad])[0]  # type: ignore[list-item]
    assert check.status == "invalid"
