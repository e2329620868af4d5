"""docs/format.md is normative: its worked example must equal what the code writes, and an
independent decoder written from the document must read what the code writes."""

from __future__ import annotations

import hashlib
import json
import re
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from valori_store import ValoriStore

DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"
METRICS = ("cosine", "dot", "l2")


# --------------------------------------------------------------------------- the document


def doc_text() -> str:
    assert DOC.is_file(), f"{DOC} is missing"
    return DOC.read_text(encoding="utf-8")


def fenced(info: str) -> str:
    """Body of the fenced block whose info string is exactly ``info``."""
    blocks = re.findall(r"^```" + re.escape(info) + r"[ \t]*\n(.*?)^```", doc_text(), flags=re.S | re.M)
    assert len(blocks) == 1, f"expected exactly one ```{info} block in docs/format.md, found {len(blocks)}"
    return blocks[0]


def hex_block(name: str) -> bytes:
    """Bytes of a ```hex <name> block: lines 'oooo: xx xx ...', offsets checked."""
    out = bytearray()
    for line in fenced(f"hex {name}").splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"([0-9a-f]{4,8}): ((?:[0-9a-f]{2} ?){1,16})", line.strip())
        assert m, f"bad hex line in {name}: {line!r}"
        assert int(m.group(1), 16) == len(out), f"{name}: offset {m.group(1)} but {len(out)} bytes so far"
        out += bytes.fromhex(m.group(2))
    assert out, name
    return bytes(out)


def example_inputs() -> dict[str, Any]:
    return json.loads(fenced("json example-inputs"))


def build(store: ValoriStore, inp: dict[str, Any]) -> None:
    ups = inp["upsert"]
    store.upsert(
        [r["vector"] for r in ups], ids=[r["id"] for r in ups], texts=[r["text"] for r in ups],
        metadatas=[r["metadata"] for r in ups],
    )


def test_worked_example_snapshot_matches_to_bytes() -> None:
    inp = example_inputs()
    s = ValoriStore(inp["dim"], inp["metric"])
    build(s, inp)
    expected = hex_block("snapshot-example")
    got = s.to_bytes()
    assert got.hex() == expected.hex(), "docs/format.md snapshot example is out of date"
    m = re.search(r"^state hash: `([0-9a-f]{64})`$", doc_text(), flags=re.M)
    assert m, "the doc states the example's state hash"
    assert s.state_hash() == m.group(1) == got[-32:].hex()
    # "149 bytes" in the heading
    assert f"`to_bytes()`, {len(got)} bytes" in doc_text()


def test_worked_example_log_and_image_match_the_directory(tmp_path: Path) -> None:
    inp = example_inputs()
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=inp["dim"], metric=inp["metric"]) as s:
        build(s, inp)
        cp = s.checkpoint(inp["checkpoint"])
    log = (root / "events.vlog").read_bytes()
    assert log.hex() == hex_block("log-example").hex(), "docs/format.md log example is out of date"
    img = (root / "images" / f"{cp.seq:012d}.vimg").read_bytes()
    assert img.hex() == hex_block("image-example").hex(), "docs/format.md image example is out of date"
    assert f"images/{cp.seq:012d}.vimg" in doc_text()


# --------------------------------------------------------------------------- an independent decoder


class R:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def take(self, n: int) -> bytes:
        assert self.pos + n <= len(self.data)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u(self, fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))[0]

    def str_(self) -> str:
        return self.take(self.u("I")).decode("utf-8")

    def opt_str(self) -> str | None:
        n = self.u("I")
        return None if n == 0xFFFFFFFF else self.take(n).decode("utf-8")


def b2(data: bytes, tag: bytes) -> bytes:
    """The doc's tagged SHA-256: SHA-256(tag || 0x00 || data)."""
    return hashlib.sha256(tag + b"\x00" + data).digest()


def doc_decode_snapshot(data: bytes) -> dict[str, Any]:
    r = R(data)
    assert r.take(8) == b"VALORIS\x00"
    assert r.u("H") == 1 and r.u("H") == 1
    metric = METRICS[r.u("B")]
    assert r.take(3) == bytes(3)
    dim = r.u("I")
    assert r.take(4) == bytes(4)
    count, vec_off, rec_off, rec_len = r.u("Q"), r.u("Q"), r.u("Q"), r.u("Q")
    assert r.take(8) == bytes(8)
    assert vec_off == 64 and rec_off == 64 + count * dim * 4 and len(data) == rec_off + rec_len + 32
    rows = np.frombuffer(r.take(count * dim * 4), dtype="<i4").reshape(count, dim)
    records = {}
    order = []
    for k in range(count):
        rid = r.str_()
        text = r.opt_str()
        meta = r.take(r.u("I"))
        obj = json.loads(meta)
        assert meta == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        records[rid] = (rows[k].tolist(), text, obj)
        order.append(rid.encode("utf-8"))
    assert order == sorted(order) and len(set(order)) == len(order)
    assert r.pos == len(data) - 32
    assert data[-32:] == b2(data[:-32], b"valori-state-v1")
    return {"metric": metric, "dim": dim, "records": records, "hash": data[-32:].hex()}


def doc_decode_upsert(r: R, dim: int) -> list[tuple[str, str | None, bytes, list[int]]]:
    n = r.u("I")
    heads = [(r.str_(), r.opt_str(), r.take(r.u("I"))) for _ in range(n)]
    rows = np.frombuffer(r.take(n * dim * 4), dtype="<i4").reshape(n, dim).tolist() if n else []
    return [(i, t, m, row) for (i, t, m), row in zip(heads, rows)]


def doc_decode_log(data: bytes) -> list[dict[str, Any]]:
    assert data[:8] == b"VALORILG" and struct.unpack_from("<H", data, 8)[0] == 1 and data[10:16] == bytes(6)
    pos, chain, frames, dim = 16, bytes(32), [], 0
    while pos < len(data):
        head = data[pos:pos + 16]
        magic, kind, flags, length, seq = struct.unpack("<2sBBIQ", head)
        assert magic == b"VF" and flags == 0 and seq == len(frames)
        assert struct.unpack_from("<I", data, pos + 16)[0] == zlib.crc32(head)
        payload = data[pos + 20:pos + 20 + length]
        chain = b2(chain + head + payload, b"valori-log-v1")
        assert data[pos + 20 + length:pos + 52 + length] == chain
        assert struct.unpack_from("<I", data, pos + 52 + length)[0] == 56 + length
        r = R(payload)
        ev: dict[str, Any] = {"kind": kind, "seq": seq, "chain": chain, "end": pos + 56 + length}
        if kind == 0:
            dim = r.u("I")
            ev.update(dim=dim, metric=METRICS[r.u("B")], spec=r.u("H"), fmt=r.u("H"))
        elif kind == 1:
            ev["records"] = doc_decode_upsert(r, dim)
        elif kind == 2:
            ev["ids"] = [r.str_() for _ in range(r.u("I"))]
        elif kind == 3:
            ev.update(label=r.opt_str(), digest=r.take(32).hex())
        elif kind == 4:
            ev.update(target=r.u("Q"), digest=r.take(32).hex(), deletes=[r.str_() for _ in range(r.u("I"))])
            ev["records"] = doc_decode_upsert(r, dim)
        else:
            raise AssertionError(f"unknown kind {kind}")
        assert r.pos == len(payload)
        frames.append(ev)
        pos += 56 + length
    assert frames[0]["kind"] == 0
    return frames


def doc_replay(frames: list[dict[str, Any]]) -> dict[str, tuple[list[int], str | None, Any]]:
    state: dict[str, tuple[list[int], str | None, Any]] = {}
    for ev in frames:
        if ev["kind"] == 2:
            for i in ev["ids"]:
                del state[i]  # the store logs present ids only
        if ev["kind"] == 4:
            for i in ev["deletes"]:
                del state[i]
        if ev["kind"] in (1, 4):
            for rid, text, meta, row in ev["records"]:
                state[rid] = (row, text, json.loads(meta))
    return state


def doc_decode_image(data: bytes) -> dict[str, Any]:
    assert data[-32:] == b2(data[:-32], b"valori-image-v1")
    r = R(data)
    assert r.take(8) == b"VALORIIM" and r.u("H") == 1 and r.take(6) == bytes(6)
    seq, log_end, chain = r.u("Q"), r.u("Q"), r.take(32)
    cps = [(r.u("Q"), r.opt_str(), r.take(32).hex()) for _ in range(r.u("I"))]
    snap = r.take(r.u("Q"))
    assert r.pos == len(data) - 32
    return {"seq": seq, "log_end": log_end, "chain": chain, "checkpoints": cps, "snapshot": doc_decode_snapshot(snap)}


def live(store: ValoriStore) -> dict[str, tuple[list[int], str | None, Any]]:
    return {r.id: (r.vector.tolist(), r.text, r.metadata) for r in store.get(store.ids())}


@pytest.mark.parametrize("metric", METRICS)
def test_independent_decoder_reads_what_the_store_writes(tmp_path: Path, metric: str) -> None:
    rng = np.random.default_rng(7)
    root = tmp_path / metric
    dim = 5
    ids = ["\U0001f600", "z", "a", "\u00e9", "A", "ab", "b\u4e2d", "0"]
    with ValoriStore.open(root, dim=dim, metric=metric) as s:
        s.upsert(rng.integers(-2000, 2000, size=(len(ids), dim)) / 64.0, ids=ids,
                 texts=[None, "", "t", "\u2603", None, "x" * 40, "y", "z"],
                 metadatas=[{"b": 1, "a": [1.5, None, True], "\u00e9": {"z": "q"}}, None, {}, {"n": -1}, {"f": 0.1},
                            {"k": "v"}, None, {"big": 2 ** 70}])
        s.delete(["z", "A"])
        c1 = s.checkpoint("one")
        s.upsert(rng.integers(-2000, 2000, size=(2, dim)) / 64.0, ids=["a", "new"], texts=["t2", None])
        c2 = s.checkpoint()
        s.restore("one")
        generated = s.upsert(rng.integers(1, 2000, size=(2, dim)) / 64.0)
        expected = live(s)
        h = s.state_hash()
        snap = s.to_bytes()
        log_length = s.log_length
    log = (root / "events.vlog").read_bytes()
    frames = doc_decode_log(log)
    assert len(frames) == log_length
    assert frames[0]["metric"] == metric and frames[0]["dim"] == dim and frames[0]["spec"] == frames[0]["fmt"] == 1
    assert [f["kind"] for f in frames] == [0, 1, 2, 3, 1, 3, 4, 1]
    assert frames[2]["ids"] == ["A", "z"]  # canonical order
    assert frames[3]["label"] == "one" and frames[3]["digest"] == c1.state_hash
    assert frames[5]["label"] is None and frames[5]["digest"] == c2.state_hash
    assert frames[6]["target"] == c1.seq and frames[6]["digest"] == c1.state_hash
    assert frames[6]["deletes"] == ["new"] and [r[0] for r in frames[6]["records"]] == ["a"]
    assert doc_replay(frames) == expected
    # generated ids follow the documented formula from the previous frame's chain hash
    prev_chain = frames[6]["chain"]
    want = [str(uuid.UUID(bytes=hashlib.blake2b(prev_chain + struct.pack("<Q", i), digest_size=16,
                                                   person=b"valori-auto-id").digest(), version=4)) for i in range(2)]
    assert generated == want
    # the snapshot
    dec = doc_decode_snapshot(snap)
    assert dec["metric"] == metric and dec["dim"] == dim and dec["hash"] == h
    assert dec["records"] == expected
    # the images
    for cp, cp_list in ((c1, [c1]), (c2, [c1, c2])):
        img = doc_decode_image((root / "images" / f"{cp.seq:012d}.vimg").read_bytes())
        assert img["seq"] == cp.seq
        frame = frames[cp.seq]
        assert img["log_end"] == frame["end"] and img["chain"] == frame["chain"]
        assert img["checkpoints"] == [(c.seq, c.label, c.state_hash) for c in cp_list]
        assert img["snapshot"]["hash"] == cp.state_hash
        assert img["snapshot"]["records"] == doc_replay(frames[: cp.seq + 1])


def test_empty_snapshot_is_96_bytes() -> None:
    data = ValoriStore(3, "l2").to_bytes()
    assert len(data) == 96
    dec = doc_decode_snapshot(data)
    assert dec["records"] == {} and dec["metric"] == "l2" and dec["dim"] == 3
    assert "96 bytes" in doc_text()


def test_payload_parts_concatenate_to_the_canonical_payload() -> None:
    """The log writes an upsert/restore payload in pieces; the pieces are the payload."""
    import numpy as np

    from valori_store.format import events

    rows = np.array([[1, -2, 3], [2**31 - 1, -(2**31), 0]], dtype=np.int32)
    up = events.Upsert(["a", "\u00e9"], rows, ["t", None], [b"{}", b'{"k":1}'])
    rs = events.Restore(7, bytes(32), ["x"], up)
    for ev in (up, rs, events.Delete(["a"]), events.CheckpointMark("l", bytes(32))):
        joined = b"".join(bytes(p) for p in events.encode_parts(ev))
        assert joined == events.encode(ev)
        back = events.decode(ev.kind, joined, 3, "test", 0)
        assert events.encode(back) == joined
    # the vector block is little-endian int32, row-major
    assert bytes(events.encode_parts(up)[1])[:4] == (1).to_bytes(4, "little", signed=True)
