"""Records without a vector (``upsert_plain``): found by id and filter, never ranked, part of
the state (hash, snapshot format 2, log kinds 7 and 8), restored, replayed and reopened."""

from __future__ import annotations

import hashlib
import itertools
import struct
from pathlib import Path

import numpy as np
import pytest

from valori_store import IdError, InputError, ValoriStore, verify
from valori_store.format import snapshot
from valori_store.storage.recovery import read_log


def _store(metric: str = "l2") -> ValoriStore:
    s = ValoriStore(3, metric)
    s.upsert([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 3.0]], ids=["v1", "v2", "v3"], metadatas=[{"k": "a"}] * 3)
    s.upsert_plain(["p1", "p2"], texts=["plain one", None], metadatas=[{"k": "a"}, {"k": "b"}])
    return s


def test_plain_records_are_found_but_never_ranked() -> None:
    s = _store("l2")
    # a zero query is closest to a zero row under l2: plain records must still not appear
    hits = s.search([0.0, 0.0, 0.0], k=10)
    assert [h.id for h in hits] == ["v1", "v2", "v3"]
    assert [h.id for h in s.search([0.0, 0.0, 0.0], k=2, filter={"k": "a"})] == ["v1", "v2"]
    assert [[h.id for h in r] for r in s.search_batch([[0, 0, 0], [0, 0, 3.0]], k=5)] == [
        ["v1", "v2", "v3"], ["v3", "v1", "v2"]]
    assert [h.id for h in s.mmr_search([0, 0, 0], k=5, fetch_k=10)] == ["v1", "v2", "v3"]
    recs = s.get(["p1", "v1", "p2"])
    assert [r.id for r in recs] == ["p1", "v1", "p2"]
    assert recs[0].vector is None and recs[0].values is None and recs[0].text == "plain one"
    assert recs[1].vector.tolist() == [65536, 0, 0]
    assert [r.id for r in s.select({"k": "a"})] == ["p1", "v1", "v2", "v3"]
    assert s.select_ids({"k": "b"}) == ["p2"] and len(s) == 5 and "p2" in s


def test_overwriting_switches_between_vector_and_no_vector() -> None:
    s = _store("dot")
    s.upsert([[5.0, 5.0, 5.0]], ids=["p1"])  # p1 gains a vector
    s.upsert_plain(["v2"])  # v2 loses its vector
    assert [h.id for h in s.search([1.0, 1.0, 1.0], k=10)] == ["p1", "v3", "v1"]
    assert s.get(["v2"])[0].vector is None and s.get(["p1"])[0].vector is not None
    s.delete(["p2", "v2"])
    assert s.ids() == ["p1", "v1", "v3"] and s.to_bytes()[8] == 3  # spec 2 always writes format 3


def test_state_is_history_independent_and_round_trips() -> None:
    vec = {"a": [1.0, 2.0, 3.0], "b": [0.5, 0.0, -1.0]}
    plain = {"c": ("ct", {"n": 1}), "d": (None, {})}
    hashes = set()
    for order in itertools.permutations(["a", "b", "c", "d"]):
        s = ValoriStore(3, "cosine")
        for rid in order:
            if rid in vec:
                s.upsert([vec[rid]], ids=[rid])
            else:
                s.upsert_plain([rid], texts=[plain[rid][0]], metadatas=[plain[rid][1]])
        hashes.add(s.state_hash())
        data = s.to_bytes()
    assert len(hashes) == 1
    assert struct.unpack_from("<H", data, 8)[0] == 3
    assert ValoriStore.from_bytes(data).state_hash() == hashes.pop()
    assert ValoriStore.from_bytes(data).to_bytes() == data


def _decode_records(data: bytes, rec_off: int, count: int, flagged: bool) -> tuple[list[tuple[str, int]], int]:
    pos, seen = rec_off, []
    for _ in range(count):
        flags = 0
        if flagged:
            flags = data[pos]
            pos += 1
        (n,) = struct.unpack_from("<I", data, pos)
        rid = data[pos + 4 : pos + 4 + n].decode()
        pos += 4 + n
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4 + (0 if n == 0xFFFFFFFF else n)
        (n,) = struct.unpack_from("<I", data, pos)
        pos += 4 + n
        seen.append((rid, flags))
    return seen, pos


def test_format_3_snapshot_follows_the_documented_layout() -> None:
    """An independent decoder written from docs/format.md, section 2."""
    s = _store("dot")
    data = s.to_bytes()
    magic, fmt, spec_v, metric, dim, count, vec_off, rec_off, rec_len = struct.unpack_from("<8sHHB3xI4xQQQQ", data, 0)
    assert (magic, fmt, spec_v, metric, dim, count, vec_off) == (b"VALORIS\x00", 3, 2, 1, 3, 5, 64)
    body, digest = data[:-32], data[-32:]
    assert hashlib.sha256(b"valori-snapshot-v2\x00" + body).digest() == digest
    assert body[-32:].hex() == s.state_hash()  # the state root sits before the file digest
    rows = np.frombuffer(data, "<i4", count * dim, vec_off).reshape(count, dim)
    seen, pos = _decode_records(data, rec_off, count, flagged=True)
    assert pos == rec_off + rec_len == len(data) - 64
    assert [(rid, f, rows[i].tolist()) for i, (rid, f) in enumerate(seen)] == [
        ("p1", 1, [0, 0, 0]), ("p2", 1, [0, 0, 0]), ("v1", 0, [65536, 0, 0]), ("v2", 0, [0, 131072, 0]),
        ("v3", 0, [0, 0, 196608])]


def test_format_2_is_the_spec_1_layout_with_flags() -> None:
    """A spec-1 state (a 0.1 store) holding a record without a vector: format 2, whose
    digest is the spec-1 state hash."""
    content = _store("dot")._live.table.content()
    content.spec = 1
    data = snapshot.encode(content)
    fmt, spec_v = struct.unpack_from("<HH", data, 8)
    assert (fmt, spec_v) == (2, 1)
    assert hashlib.sha256(b"valori-state-v1\x00" + data[:-32]).digest() == data[-32:] == snapshot.state_digest(content)
    (count, rec_off) = struct.unpack_from("<Q", data, 24)[0], struct.unpack_from("<Q", data, 40)[0]
    seen, _ = _decode_records(data, rec_off, count, flagged=True)
    assert seen == [("p1", 1), ("p2", 1), ("v1", 0), ("v2", 0), ("v3", 0)]
    loaded = ValoriStore.from_bytes(data)
    assert loaded.state_hash() == data[-32:].hex() and loaded.to_bytes() == data


def test_write_is_one_atomic_event_and_rejects_an_id_given_twice() -> None:
    s = _store("l2")
    before, length = s.state_hash(), s.log_length
    with pytest.raises(IdError, match="both with and without a vector"):
        s.write(delete=["v1"], vectors=[[1.0, 1, 1]], ids=["x"], plain_ids=["x"])
    with pytest.raises(InputError):
        s.write(plain_texts=["t"])
    with pytest.raises(IdError):
        s.upsert_plain(["y", "y"])
    assert (s.state_hash(), s.log_length) == (before, length)
    out = s.write(delete=["v1", "p2"], vectors=[[1.0, 1, 1]], ids=["x"], plain_ids=["y"], plain_texts=["why"])
    assert out == ["x", "y"] and s.log_length == length + 1
    assert s.ids() == ["p1", "v2", "v3", "x", "y"]


def test_restore_replay_and_reopen_reproduce_plain_records(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=3, metric="l2") as s:
        s.upsert([[1.0, 0, 0]], ids=["v1"])
        s.upsert_plain(["p1", "p2"], texts=["one", "two"])
        cp = s.checkpoint("with-plain")
        s.upsert([[2.0, 2, 2]], ids=["p1"])  # p1 gains a vector
        s.delete(["p2"])
        s.upsert_plain(["v1"])
        s.restore(cp)  # needs a restore event with plain records (kind 8)
        assert s.state_hash() == cp.state_hash
        assert s.get(["p1"])[0].vector is None and s.get(["v1"])[0].vector is not None
        head = s.state_hash()
        assert s.verify().ok
        kinds = [f.kind for f in read_log(root).frames]
        assert 7 in kinds and 8 in kinds
    rep = verify(root)
    assert rep.ok and rep.state_hash == head
    with ValoriStore.open(root) as s2:
        assert s2.state_hash() == head
        assert [h.id for h in s2.search([0, 0, 0], k=5)] == ["v1"]
        assert s2.restore("with-plain").state_hash == cp.state_hash
