"""docs/format.md is normative: its worked example must equal what the code writes, and an
independent decoder written from the document must read what the code writes.

The decoder below (the ``doc_*`` functions) uses struct, hashlib, zlib, json and base64
only: nothing of valori_store is imported to decode or hash. The store is driven through
its public API (``ValoriStore``, ``verify``, ``migrate``) to produce the files, and every
comparison is with a value the decoder recomputed from the bytes by the document's rules.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import struct
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest

from valori_store import ValoriStore, migrate, verify, verify_proof

DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"
FIXTURES_V0_1 = Path(__file__).resolve().parent.parent / "fixtures" / "v0_1"
METRICS = ("cosine", "dot", "l2")
ZERO32 = bytes(32)


# =========================================================================== the document


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


def named_digests() -> dict[str, bytes]:
    """The ```text tree-example block: lines 'name = 64 hex digits'."""
    out = {}
    for line in fenced("text tree-example").splitlines():
        if not line.strip():
            continue
        m = re.fullmatch(r"(\S+)\s+=\s+([0-9a-f]{64})", line.strip())
        assert m, f"bad line in tree-example: {line!r}"
        out[m.group(1)] = bytes.fromhex(m.group(2))
    return out


def example_inputs() -> dict[str, Any]:
    return json.loads(fenced("json example-inputs"))


# =========================================================================== the decoder


def H(tag: str, data: bytes) -> bytes:
    """The doc's tagged SHA-256: SHA-256(tag || 0x00 || data)."""
    return hashlib.sha256(tag.encode("ascii") + b"\x00" + data).digest()


class R:
    """Sequential little-endian reader; every read is bounds-checked."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = bytes(data), pos

    def take(self, n: int) -> bytes:
        assert n >= 0 and self.pos + n <= len(self.data), "read past the end"
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def u(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt)))[0]

    def blob(self) -> bytes:
        return self.take(self.u("I"))

    def str_(self) -> str:
        return self.blob().decode("utf-8")

    def opt_str(self) -> str | None:
        n = self.u("I")
        return None if n == 0xFFFFFFFF else self.take(n).decode("utf-8")

    def done(self) -> None:
        assert self.pos == len(self.data), f"{len(self.data) - self.pos} bytes left over"


def canonical(meta: bytes) -> bytes:
    """Section 1: the bytes must be exactly the canonical JSON of an object."""
    obj = json.loads(meta)
    assert type(obj) is dict
    assert meta == json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                              allow_nan=False).encode("utf-8")
    return meta


# A record as the decoder keeps it: (row as a tuple of ints, or None without a vector; text; metadata bytes).
Rec = tuple[tuple[int, ...] | None, str | None, bytes]
State = dict[str, Rec]


def read_record(r: R) -> tuple[str, str | None, bytes]:
    """``str id, opt_str text, blob metadata`` (section 1)."""
    rid = r.str_()
    assert rid, "ids are non-empty"
    return rid, r.opt_str(), canonical(r.blob())


def entry_bytes(rid: str, text: str | None, meta: bytes) -> bytes:
    """The record entry of section 1, re-encoded from its fields."""
    b = rid.encode("utf-8")
    t = struct.pack("<I", 0xFFFFFFFF) if text is None else struct.pack("<I", len(text.encode())) + text.encode()
    return struct.pack("<I", len(b)) + b + t + struct.pack("<I", len(meta)) + meta


def rows_of(raw: bytes, n: int, dim: int) -> list[tuple[int, ...]]:
    vals = struct.unpack(f"<{n * dim}i", raw)
    return [tuple(vals[k * dim:(k + 1) * dim]) for k in range(n)]


def id_order(ids: Any) -> list[str]:
    return sorted(ids, key=lambda s: s.encode("utf-8"))


# --------------------------------------------------------------------------- the state tree (section 2)

FIXED_DEPTH, BUCKET_MAX = 2, 16


def key_of(rid: str) -> bytes:
    return H("valori-key-v2", rid.encode("utf-8"))


def leaf_of(rid: str, rec: Rec) -> bytes:
    row, text, meta = rec
    flags = b"\x01" if row is None else b"\x00"
    vec = b"" if row is None else struct.pack(f"<{len(row)}i", *row)
    return H("valori-leaf-v2", flags + entry_bytes(rid, text, meta) + vec)


def nibble(key: bytes, i: int) -> int:
    return key[i // 2] >> 4 if i % 2 == 0 else key[i // 2] & 15


def is_split(depth: int, count: int) -> bool:
    return depth < FIXED_DEPTH or (count > BUCKET_MAX and depth < 64)


def bucket_digest(entries: list[tuple[bytes, bytes]]) -> bytes:
    return H("valori-bucket-v2", struct.pack("<I", len(entries)) + b"".join(k + v for k, v in entries))


def split_digest(count: int, children: list[bytes]) -> bytes:
    assert len(children) == 16
    return H("valori-node-v2", struct.pack("<Q", count) + b"".join(children))


def node_digest(entries: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not is_split(depth, len(entries)):
        return bucket_digest(entries)
    groups: list[list[tuple[bytes, bytes]]] = [[] for _ in range(16)]
    for e in entries:
        groups[nibble(e[0], depth)].append(e)
    return split_digest(len(entries), [node_digest(g, depth + 1) for g in groups])


def root_from_top(top: bytes, metric_code: int, dim: int) -> bytes:
    return H("valori-state-v2", struct.pack("<HBI", 2, metric_code, dim) + top)


def entries_of(state: State) -> list[tuple[bytes, bytes]]:
    return sorted((key_of(i), leaf_of(i, rec)) for i, rec in state.items())


def tree_root(state: State, metric_code: int, dim: int) -> bytes:
    return root_from_top(node_digest(entries_of(state), 0), metric_code, dim)


def subtrees(state: State) -> dict[int, tuple[bytes, int]]:
    """Digest and count of each non-empty depth-2 node (first key byte), section 2.4."""
    by: dict[int, list[tuple[bytes, bytes]]] = {}
    for e in entries_of(state):
        by.setdefault(e[0][0], []).append(e)
    return {s: (node_digest(es, 2), len(es)) for s, es in by.items()}


def combine(parts: list[dict[int, tuple[bytes, int]]], metric_code: int, dim: int) -> bytes:
    """Section 2.4: the root from the depth-2 subtrees of shards holding disjoint first bytes."""
    sub: dict[int, tuple[bytes, int]] = {}
    for p in parts:
        assert not set(p) & set(sub), "shards must hold disjoint first key bytes"
        sub.update(p)
    empty = bucket_digest([])
    level1 = []
    total = 0
    for hi in range(16):
        kids = [sub.get(16 * hi + lo, (empty, 0)) for lo in range(16)]
        n = sum(c for _, c in kids)
        level1.append(split_digest(n, [d for d, _ in kids]))
        total += n
    return root_from_top(split_digest(total, level1), metric_code, dim)


# --------------------------------------------------------------------------- proofs (section 3)


def doc_verify_proof(root: bytes, proof: dict[str, Any]) -> str:
    """Section 3's algorithm: 'present', 'absent', or raises AssertionError/ValueError (invalid)."""
    assert proof["version"] == 1
    assert proof["root"] == root.hex()
    rid, metric_code, dim = proof["id"], proof["metric_code"], proof["dim"]
    assert type(proof["present"]) is bool and 0 <= metric_code <= 2 and 1 <= dim <= 65536
    key = key_of(rid)
    entries = [(bytes.fromhex(k), bytes.fromhex(v)) for k, v in proof["bucket"]]
    assert all(len(k) == 32 and len(v) == 32 for k, v in entries)
    assert [k for k, _ in entries] == sorted({k for k, _ in entries}), "bucket keys strictly ascending"
    depth = len(proof["path"])
    assert not is_split(depth, len(entries)), "the bucket would be split at this depth"
    for k, _ in entries:
        assert all(nibble(k, i) == nibble(key, i) for i in range(depth)), "entry outside the id's branch"
    mine = [v for k, v in entries if k == key]
    if proof["present"]:
        vec = proof["vector"]
        row = None
        if vec is not None:
            raw = base64.b64decode(vec, validate=True)
            assert len(raw) == 4 * dim
            row = struct.unpack(f"<{dim}i", raw)
        rec: Rec = (row, proof["text"], proof["metadata"].encode("utf-8"))
        assert mine == [leaf_of(rid, rec)], "the record's leaf is not in the bucket"
    else:
        assert mine == [], "an absence proof whose bucket holds the key"
    digest = bucket_digest(entries)
    for d in range(depth - 1, -1, -1):
        step = proof["path"][d]
        sib = [bytes.fromhex(x) for x in step["siblings"]]
        assert len(sib) == 15 and all(len(x) == 32 for x in sib)
        assert 0 <= step["count"] < 1 << 64 and is_split(d, step["count"])
        sib.insert(nibble(key, d), digest)
        digest = split_digest(step["count"], sib)
    assert root_from_top(digest, metric_code, dim) == root, "the proof does not lead to the root"
    return "present" if proof["present"] else "absent"


def doc_proof_ok(root: bytes, proof: dict[str, Any]) -> str:
    try:
        return doc_verify_proof(root, proof)
    except (AssertionError, ValueError, KeyError, TypeError, struct.error):
        return "invalid"


# --------------------------------------------------------------------------- snapshots (section 4)


def doc_encode_snapshot_v1(state: State, metric_code: int, dim: int) -> bytes:
    """A spec-1 snapshot (format 1, or 2 with a record without a vector), section 4.3."""
    order = id_order(state)
    plain = any(state[i][0] is None for i in order)
    fmt = 2 if plain else 1
    vectors = b"".join(struct.pack(f"<{dim}i", *(state[i][0] or (0,) * dim)) for i in order)
    records = b"".join((bytes([1 if state[i][0] is None else 0]) if plain else b"") + entry_bytes(i, *state[i][1:])
                       for i in order)
    head = struct.pack("<8sHHB3sI4sQQQQ8s", b"VALORIS\x00", fmt, 1, metric_code, bytes(3), dim, bytes(4),
                       len(order), 64, 64 + len(vectors), len(records), bytes(8))
    body = head + vectors + records
    return body + H("valori-state-v1", body)


def doc_decode_snapshot(data: bytes) -> dict[str, Any]:
    magic, fmt, spec, metric, r1, dim, r2, count, vec_off, rec_off, rec_len, r3 = struct.unpack_from(
        "<8sHHB3sI4sQQQQ8s", data, 0)
    assert magic == b"VALORIS\x00" and r1 == bytes(3) and r2 == bytes(4) and r3 == bytes(8)
    assert (fmt, spec) in ((1, 1), (2, 1), (3, 2)) and metric < 3 and 1 <= dim <= 65536
    trailer = 64 if fmt == 3 else 32
    tag = "valori-snapshot-v2" if fmt == 3 else "valori-state-v1"
    assert data[-32:] == H(tag, data[:-32]), "file digest"
    assert vec_off == 64 and rec_off == 64 + count * dim * 4 and len(data) == rec_off + rec_len + trailer
    rows = rows_of(data[64:rec_off], count, dim)
    r = R(data[:rec_off + rec_len], rec_off)
    state: State = {}
    order = []
    for k in range(count):
        flag = r.u("B") if fmt != 1 else 0
        assert flag in (0, 1)
        rid, text, meta = read_record(r)
        if flag:
            assert rows[k] == (0,) * dim, "a record without a vector has a zero row"
        state[rid] = (None if flag else rows[k], text, meta)
        order.append(rid.encode("utf-8"))
    r.done()
    assert order == sorted(set(order)), "ids strictly ascending"
    if fmt == 2:
        assert any(v[0] is None for v in state.values())
    out = {"format": fmt, "spec": spec, "metric_code": metric, "metric": METRICS[metric], "dim": dim,
           "state": state}
    if fmt == 3:
        out["root"] = data[-64:-32]
        assert out["root"] == tree_root(state, metric, dim), "recorded root"
        out["hash"] = out["root"].hex()
    else:
        out["hash"] = data[-32:].hex()
        assert doc_encode_snapshot_v1(state, metric, dim) == data, "format 1/2 is canonical"
    return out


# --------------------------------------------------------------------------- events (section 5)


def read_upsert(r: R, dim: int) -> list[tuple[str, Rec]]:
    n = r.u("I")
    heads = [read_record(r) for _ in range(n)]
    rows = rows_of(r.take(n * dim * 4), n, dim) if n else []
    return [(i, (row, t, m)) for (i, t, m), row in zip(heads, rows)]


def read_plain(r: R) -> list[tuple[str, Rec]]:
    m = r.u("I")
    assert m >= 1
    return [(i, (None, t, meta)) for i, t, meta in (read_record(r) for _ in range(m))]


def read_ids(r: R) -> list[str]:
    return [r.str_() for _ in range(r.u("I"))]


def doc_decode_event(kind: int, payload: bytes, dim: int) -> dict[str, Any]:
    r = R(payload)
    ev: dict[str, Any] = {"kind": kind}
    if kind == 0:
        ev.update(dim=r.u("I"), metric_code=r.u("B"), spec=r.u("H"), format=r.u("H"))
        assert (ev["spec"], ev["format"]) in ((1, 1), (2, 3))
    elif kind == 1:
        ev["records"] = read_upsert(r, dim)
    elif kind == 2:
        ev["deletes"] = read_ids(r)
    elif kind == 3:
        ev.update(label=r.opt_str(), digest=r.take(32))
    elif kind in (4, 8):
        ev.update(target=r.u("Q"), digest=r.take(32), deletes=read_ids(r), records=read_upsert(r, dim))
        if kind == 8:
            ev["records"] += read_plain(r)
    elif kind == 5:
        ev.update(topic=r.str_(), body=canonical(r.blob()))
    elif kind in (6, 7):
        ev.update(deletes=read_ids(r), records=read_upsert(r, dim))
        if kind == 7:
            ev["records"] += read_plain(r)
    elif kind == 9:
        assert payload[-32:] == H("valori-base-v1", payload[:-32]), "base digest"
        r = R(payload[:-32])
        ev.update(dim=r.u("I"), metric_code=r.u("B"), spec=r.u("H"), chain=r.take(32), root=r.take(32))
        assert ev["spec"] == 2
        folded = []
        for _ in range(r.u("I")):
            seq, fkind, fpayload = r.u("Q"), r.u("B"), r.blob()
            assert fkind in (3, 5) and (not folded or seq > folded[-1]["seq"])
            folded.append({"seq": seq, **doc_decode_event(fkind, fpayload, ev["dim"])})
        ev["folded"] = folded
    else:
        raise AssertionError(f"unknown kind {kind}")
    r.done()
    return ev


def doc_apply(state: State, ev: dict[str, Any]) -> None:
    for i in ev.get("deletes", []):
        del state[i]  # the store logs present ids only
    for i, rec in ev.get("records", []):
        state[i] = rec


# --------------------------------------------------------------------------- the log (section 6)


def doc_decode_log(data: bytes) -> dict[str, Any]:
    magic, version, reserved = struct.unpack_from("<8sH6s", data, 0)
    assert magic == b"VALORILG" and version in (1, 2) and reserved == bytes(6)
    pos, chain, frames, dim = 16, ZERO32, [], 0
    while pos < len(data):
        head = data[pos:pos + 16]
        fmagic, kind, flags, length, seq = struct.unpack("<2sBBIQ", head)
        assert fmagic == b"VF" and flags == 0
        assert struct.unpack_from("<I", data, pos + 16)[0] == zlib.crc32(head)
        payload = data[pos + 20:pos + 20 + length]
        stored = data[pos + 20 + length:pos + 52 + length]
        assert struct.unpack_from("<I", data, pos + 52 + length)[0] == 56 + length
        if not frames:
            assert kind == (0 if version == 1 else 9), "v1 starts with create, v2 with a base event"
            if kind == 0:
                assert seq == 0
        else:
            assert seq == frames[-1]["seq"] + 1 and kind not in (0, 9)
        if kind == 9:
            chain = payload[7:39]  # the base frame stores the replaced history's chain hash
        else:
            chain = H("valori-log-v1", chain + head + payload)
        assert stored == chain, f"chain hash of frame {seq}"
        ev = doc_decode_event(kind, payload, dim)
        if kind in (0, 9):
            dim = ev["dim"]
        ev.update(seq=seq, chain=chain, offset=pos, end=pos + 56 + length, raw=data[pos:pos + 56 + length])
        frames.append(ev)
        pos += 56 + length
    assert frames
    return {"version": version, "frames": frames, "dim": dim, "metric_code": frames[0]["metric_code"],
            "spec": frames[0]["spec"]}


def doc_replay(log: dict[str, Any], upto: int | None = None, base_state: State | None = None) -> State:
    frames = log["frames"]
    if frames[0]["kind"] == 9:
        assert base_state is not None, "a compacted log replays from its base image"
        assert tree_root(base_state, log["metric_code"], log["dim"]) == frames[0]["root"]
    state: State = dict(base_state or {})
    for ev in frames:
        if upto is not None and ev["seq"] > upto:
            break
        doc_apply(state, ev)
    return state


def doc_state_digest(state: State, log: dict[str, Any]) -> bytes:
    """The state digest of the log's spec (section 2 / 12)."""
    if log["spec"] == 1:
        return doc_encode_snapshot_v1(state, log["metric_code"], log["dim"])[-32:]
    return tree_root(state, log["metric_code"], log["dim"])


# --------------------------------------------------------------------------- images (section 7)


def doc_decode_manifest(data: bytes) -> dict[str, Any]:
    assert data[-32:] == H("valori-image-v2", data[:-32])
    r = R(data[:-32])
    assert r.take(8) == b"VALORIIM" and r.u("H") == 2 and r.take(6) == bytes(6)
    m: dict[str, Any] = {"seq": r.u("Q"), "log_end": r.u("Q"), "chain": r.take(32), "root": r.take(32),
                         "spec": r.u("H"), "metric_code": r.u("B")}
    assert r.u("B") == 0 and m["spec"] == 2
    m.update(dim=r.u("I"), count=r.u("Q"))
    m["pages"] = [{"depth": r.u("B"), "prefix": r.take(32), "count": r.u("I"), "digest": r.take(32)}
                  for _ in range(r.u("I"))]
    r.done()
    assert sum(p["count"] for p in m["pages"]) == m["count"]
    return m


def prefix_ok(key: bytes, prefix: bytes, depth: int) -> bool:
    return all(nibble(key, i) == nibble(prefix, i) for i in range(depth))


def doc_decode_page(data: bytes, name: str, ref: dict[str, Any], dim: int, metric_code: int) -> State:
    magic, version, spec, metric, depth, z1, pdim, n, prefix, z2 = struct.unpack_from("<8sHHBB2sII32s8s", data, 0)
    assert (magic, version, spec, z1, z2) == (b"VALORIPG", 1, 2, bytes(2), bytes(8))
    assert (pdim, metric, depth, n, prefix) == (dim, metric_code, ref["depth"], ref["count"], ref["prefix"])
    r = R(data, 64)
    keys = [r.take(32) for _ in range(n)]
    flags = r.take(n)
    assert r.take(-n % 4) == bytes(-n % 4)
    rows = rows_of(r.take(4 * n * dim), n, dim)
    offsets = [r.u("Q") for _ in range(n + 1)]
    records = data[r.pos:]
    assert offsets[0] == 0 and offsets[-1] == len(records)
    state: State = {}
    entries = []
    for k in range(n):
        er = R(records[offsets[k]:offsets[k + 1]])
        rid, text, meta = read_record(er)
        er.done()
        assert flags[k] in (0, 1) and (flags[k] == 0 or rows[k] == (0,) * dim)
        rec: Rec = (None if flags[k] else rows[k], text, meta)
        assert keys[k] == key_of(rid) and prefix_ok(keys[k], prefix, depth)
        state[rid] = rec
        entries.append((keys[k], leaf_of(rid, rec)))
    assert [k for k, _ in entries] == sorted({k for k, _ in entries})
    assert node_digest(entries, depth) == ref["digest"], "a page is named by its node digest"
    assert name == ref["digest"].hex() + ".vpg"
    return state


def doc_image_state(root: Path, manifest: dict[str, Any]) -> State:
    """The state an image holds, every page checked, the root recomputed from the records."""
    state: State = {}
    for ref in manifest["pages"]:
        name = ref["digest"].hex() + ".vpg"
        part = doc_decode_page((root / "pages" / name).read_bytes(), name, ref, manifest["dim"],
                               manifest["metric_code"])
        assert not set(part) & set(state)
        state.update(part)
    assert len(state) == manifest["count"]
    assert tree_root(state, manifest["metric_code"], manifest["dim"]) == manifest["root"]
    assert doc_root_from_pages(manifest) == manifest["root"]
    return state


def doc_root_from_pages(manifest: dict[str, Any]) -> bytes:
    """Section 7.2: the root from the page digests alone (no record read)."""
    pages = {(p["depth"], p["prefix"]): p for p in manifest["pages"]}
    empty = bucket_digest([])

    def node(prefix: bytes, depth: int) -> tuple[bytes, int]:
        p = pages.get((depth, prefix))
        if p is not None:
            return p["digest"], p["count"]
        if depth >= 2 and not any(q["depth"] > depth and prefix_ok(q["prefix"], prefix, depth)
                                  for q in manifest["pages"]):
            return empty, 0  # an empty node below the fixed levels
        kids = []
        for c in range(16):
            b = bytearray(prefix)
            b[depth // 2] |= c << 4 if depth % 2 == 0 else c
            kids.append(node(bytes(b), depth + 1))
        total = sum(n for _, n in kids)
        assert depth < 2 or total > BUCKET_MAX
        return split_digest(total, [d for d, _ in kids]), total

    top, _ = node(ZERO32, 0)
    return root_from_top(top, manifest["metric_code"], manifest["dim"])


def doc_decode_image_v1(data: bytes) -> dict[str, Any]:
    assert data[-32:] == H("valori-image-v1", data[:-32])
    r = R(data[:-32])
    assert r.take(8) == b"VALORIIM" and r.u("H") == 1 and r.take(6) == bytes(6)
    img: dict[str, Any] = {"seq": r.u("Q"), "log_end": r.u("Q"), "chain": r.take(32)}
    img["checkpoints"] = [(r.u("Q"), r.opt_str(), r.take(32)) for _ in range(r.u("I"))]
    img["snapshot"] = doc_decode_snapshot(r.take(r.u("Q")))
    r.done()
    return img


# =========================================================================== helpers


def live_state(store: ValoriStore) -> State:
    out: State = {}
    for rec in store.get(store.ids()):
        row = None if rec.vector is None else tuple(int(x) for x in rec.vector.tolist())
        meta = json.dumps(rec.metadata, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        out[rec.id] = (row, rec.text, meta)
    return out


def manifest_files(root: Path) -> dict[int, dict[str, Any]]:
    out = {}
    for p in sorted((root / "images").glob("*.vimg")):
        m = doc_decode_manifest(p.read_bytes())
        assert p.name == f"{m['seq']:012d}.vimg"
        out[m["seq"]] = m
    return out


def ids_with_first_key_byte(byte: int, n: int, prefix: str) -> list[str]:
    out, i = [], 0
    while len(out) < n:
        rid = f"{prefix}{i}"
        if key_of(rid)[0] == byte:
            out.append(rid)
        i += 1
    return out


# =========================================================================== the worked example


def build_example(root: Path) -> dict[str, Any]:
    """Run the example inputs against a store directory; what it wrote at each step."""
    inp = example_inputs()
    got: dict[str, Any] = {}
    with ValoriStore.open(root, dim=inp["dim"], metric=inp["metric"]) as s:
        ups = inp["upsert"]
        s.upsert([r["vector"] for r in ups], ids=[r["id"] for r in ups], texts=[r["text"] for r in ups],
                 metadatas=[r["metadata"] for r in ups])
        cp = s.checkpoint(inp["checkpoint"])
        got["checkpoint"] = cp
        got["state_hash"] = s.state_hash()
        got["snapshot"] = s.to_bytes()
        got["log"] = (root / "events.vlog").read_bytes()
        got["proof"] = s.prove([inp["prove"]])[0].to_dict()
        assert inp["write_image"] is True
        s.write_image()
        got["manifest"] = (root / "images" / f"{cp.seq:012d}.vimg").read_bytes()
        got["pages"] = {p.name: p.read_bytes() for p in sorted((root / "pages").iterdir())}
        s.delete(inp["delete"])
        got["log_before_compaction"] = (root / "events.vlog").read_bytes()
        s.compact(before=inp["compact_before"])
        got["compacted_log"] = (root / "events.vlog").read_bytes()
        got["base_manifest"] = (root / "images" / f"{cp.seq:012d}.vimg").read_bytes()
        got["head_hash"] = s.state_hash()
    return got


def test_worked_example_is_what_the_store_writes(tmp_path: Path) -> None:
    got = build_example(tmp_path / "s")
    text = doc_text()
    for block, key in (("snapshot-example", "snapshot"), ("log-example", "log"), ("manifest-example", "manifest"),
                       ("compacted-log-example", "compacted_log")):
        assert hex_block(block).hex() == got[key].hex(), f"docs/format.md {block} is out of date"
        assert f"{len(got[key])} bytes" in text, f"the doc states the size of {block}"
    page = hex_block("page-example")
    names = [n for n, b in got["pages"].items() if b == page]
    assert len(names) == 1, "docs/format.md page-example is out of date"
    assert f"pages/{names[0]}" in text
    for name in got["pages"]:
        assert name[:-4] in text, "the doc names every page of the example"
    m = re.search(r"^state hash: `([0-9a-f]{64})`$", text, flags=re.M)
    assert m and m.group(1) == got["state_hash"] == got["checkpoint"].state_hash
    m = re.search(r"^head state hash after the compaction: `([0-9a-f]{64})`$", text, flags=re.M)
    assert m and m.group(1) == got["head_hash"]
    assert named_digests()["root"].hex() == got["state_hash"]


def test_worked_example_decodes_by_the_document(tmp_path: Path) -> None:
    """The decoder reads the doc's own hex blocks and recomputes every digest the doc names."""
    inp = example_inputs()
    code, dim = METRICS.index(inp["metric"]), inp["dim"]
    q = {r["id"]: (tuple(round(v * 65536) for v in r["vector"]), r["text"],
                   json.dumps(r["metadata"] or {}, separators=(",", ":")).encode()) for r in inp["upsert"]}
    # the snapshot: format 3, both records, their root
    snap = doc_decode_snapshot(hex_block("snapshot-example"))
    assert snap["format"] == 3 and snap["dim"] == dim and snap["metric"] == inp["metric"]
    assert snap["state"] == q
    # the named digests of the tree
    d = named_digests()
    a, b = sorted(q)  # "a", "b"
    empty = bucket_digest([])
    ka, kb = key_of(a), key_of(b)
    assert (d["key(a)"], d["key(b)"]) == (ka, kb)
    assert (d["leaf(a)"], d["leaf(b)"]) == (leaf_of(a, q[a]), leaf_of(b, q[b]))
    assert d["E"] == empty and d["bucket(a)"] == bucket_digest([(ka, d["leaf(a)"])])
    assert d["bucket(b)"] == bucket_digest([(kb, d["leaf(b)"])])
    assert d["E1"] == split_digest(0, [empty] * 16)
    assert ka[0] >> 4 != kb[0] >> 4, "the example's keys differ in the first nibble"
    for name, k, bucket in (("N(a)", ka, d["bucket(a)"]), ("N(b)", kb, d["bucket(b)"])):
        kids = [empty] * 16
        kids[k[0] & 15] = bucket
        assert d[name] == split_digest(1, kids)
    level1 = [d["E1"]] * 16
    level1[ka[0] >> 4], level1[kb[0] >> 4] = d["N(a)"], d["N(b)"]
    assert d["top"] == split_digest(2, level1)
    assert d["root"] == root_from_top(d["top"], code, dim) == snap["root"] == tree_root(q, code, dim)
    # the proof of the example's id, described by the named digests
    proof = build_example(tmp_path / "s")["proof"]
    assert proof["id"] == inp["prove"] == a and proof["present"]
    assert proof["path"][0] == {"count": 2, "siblings": [x.hex() for i, x in enumerate(level1) if i != ka[0] >> 4]}
    assert proof["path"][1] == {"count": 1, "siblings": [empty.hex()] * 15}
    assert proof["bucket"] == [[ka.hex(), d["leaf(a)"].hex()]]
    assert doc_verify_proof(d["root"], proof) == "present"
    # the log: create, upsert (caller's order), checkpoint recording the root
    log = doc_decode_log(hex_block("log-example"))
    fr = log["frames"]
    assert log["version"] == 1 and [f["kind"] for f in fr] == [0, 1, 3]
    assert (fr[0]["dim"], fr[0]["metric_code"], fr[0]["spec"], fr[0]["format"]) == (dim, code, 2, 3)
    assert [i for i, _ in fr[1]["records"]] == [r["id"] for r in inp["upsert"]]
    assert fr[2]["label"] == inp["checkpoint"] and fr[2]["digest"] == d["root"]
    assert doc_replay(log) == q
    # the manifest and its pages: in key order, named by their node digests
    man = doc_decode_manifest(hex_block("manifest-example"))
    assert (man["seq"], man["log_end"], man["chain"], man["root"]) == (2, fr[2]["end"], fr[2]["chain"], d["root"])
    assert [p["digest"] for p in man["pages"]] == sorted([d["bucket(a)"], d["bucket(b)"]],
                                                         key=lambda x: (ka if x == d["bucket(a)"] else kb))
    assert doc_root_from_pages(man) == d["root"]
    ref = next(p for p in man["pages"] if p["digest"] == d["bucket(a)"])
    assert doc_decode_page(hex_block("page-example"), d["bucket(a)"].hex() + ".vpg", ref, dim, code) == {a: q[a]}
    # the compacted log: a base event at the checkpoint's seq, then the delete, chain kept
    clog = doc_decode_log(hex_block("compacted-log-example"))
    base, dele = clog["frames"]
    assert clog["version"] == 2 and base["kind"] == 9 and base["seq"] == fr[2]["seq"]
    assert (base["chain"], base["root"], base["dim"], base["metric_code"]) == (fr[2]["chain"], d["root"], dim, code)
    assert base["folded"] == [{k: fr[2][k] for k in ("seq", "kind", "label", "digest")}]
    assert dele["kind"] == 2 and dele["deletes"] == inp["delete"] and dele["seq"] == 3
    head = doc_replay(clog, base_state=q)
    assert head == {a: q[a]}
    m = re.search(r"^head state hash after the compaction: `([0-9a-f]{64})`$", doc_text(), flags=re.M)
    assert m and m.group(1) == tree_root(head, code, dim).hex()


def test_example_directory_decodes_by_the_document(tmp_path: Path) -> None:
    """The example's directory after compaction: the base manifest is repositioned for the
    new log, the frame after the base keeps its bytes, and the replay gives the head."""
    root = tmp_path / "s"
    got = build_example(root)
    old = doc_decode_log(got["log_before_compaction"])
    new = doc_decode_log(got["compacted_log"])
    assert new["frames"][1]["raw"] == old["frames"][3]["raw"]  # the delete frame, byte for byte
    base_m = doc_decode_manifest(got["base_manifest"])
    first_m = doc_decode_manifest(got["manifest"])
    assert base_m["log_end"] == new["frames"][0]["end"] == 16 + len(new["frames"][0]["raw"])
    assert {k: v for k, v in base_m.items() if k != "log_end"} == {k: v for k, v in first_m.items() if k != "log_end"}
    assert manifest_files(root) == {2: base_m}
    state = doc_image_state(root, base_m)
    head = doc_replay(new, base_state=state)
    assert tree_root(head, new["metric_code"], new["dim"]).hex() == got["head_hash"]


# =========================================================================== real stores


def _workload(s: ValoriStore, dim: int) -> dict[str, Any]:
    """Every event kind a store writes, through the public API."""
    def vecs(n: int, seed: int) -> list[list[float]]:
        return [[((seed * 31 + i * 7 + j * 13) % 61 - 30) / 16.0 for j in range(dim)] for i in range(n)]

    ids = ["\U0001f600", "z", "a", "\u00e9", "A", "ab", "b\u4e2d", "0"]
    out: dict[str, Any] = {}
    s.upsert(vecs(len(ids), 1), ids=ids, texts=[None, "", "t", "\u2603", None, "x" * 40, "y", "z"],
             metadatas=[{"b": 1, "a": [1.5, None, True], "\u00e9": {"z": "q"}}, None, {}, {"n": -1}, {"f": 0.1},
                        {"k": "v"}, None, {"big": 2 ** 70}])
    crowd = ids_with_first_key_byte(0x00, 20, "crowd-")  # 20 keys under one depth-2 node: it splits
    s.upsert(vecs(20, 2), ids=crowd, texts=[f"c{i}" for i in range(20)])
    s.delete(["z", "A"])
    out["c1"] = s.checkpoint("one")
    s.upsert_plain(["p1", "p2"], texts=["plain", None], metadatas=[{"p": 1}, None])
    s.write(delete=["0"], vectors=vecs(2, 3), ids=["a", "new"], texts=["t2", None])
    s.annotate("test.topic", {"x": [1, 2], "y": "\u00e9"})
    out["c2"] = s.checkpoint()
    s.upsert_plain(["p1"], texts=["changed"])
    s.restore(out["c2"])  # puts p1 back without a vector: kind 8
    s.restore("one")  # kind 4
    out["generated"] = s.upsert(vecs(2, 4))
    return out


@pytest.mark.parametrize("metric", METRICS)
def test_independent_decoder_reads_a_store_directory(tmp_path: Path, metric: str) -> None:
    root = tmp_path / metric
    dim = 3
    with ValoriStore.open(root, dim=dim, metric=metric) as s:
        w = _workload(s, dim)
        s.write_image()
        expected = live_state(s)
        head = s.state_hash()
        snap = s.to_bytes()
        log_length = s.log_length
        present = [i for i in ("\u00e9", "0", w["generated"][0], *ids_with_first_key_byte(0, 20, "crowd-")[:2])]
        proofs = [p.to_dict() for p in s.prove(present + ["missing", "crowd-absent", "p1"])]
    code = METRICS.index(metric)
    log = doc_decode_log((root / "events.vlog").read_bytes())
    fr = log["frames"]
    assert len(fr) == log_length and log["version"] == 1
    assert (fr[0]["spec"], fr[0]["format"], fr[0]["metric_code"], fr[0]["dim"]) == (2, 3, code, dim)
    kinds = [f["kind"] for f in fr]
    assert kinds == [0, 1, 1, 2, 3, 7, 6, 5, 3, 7, 8, 4, 1], kinds
    assert fr[3]["deletes"] == ["A", "z"]  # canonical order
    assert fr[6]["deletes"] == ["0"]
    c1, c2 = w["c1"], w["c2"]
    assert (fr[4]["label"], fr[4]["digest"].hex()) == ("one", c1.state_hash)
    assert (fr[8]["label"], fr[8]["digest"].hex()) == (None, c2.state_hash)
    assert (fr[10]["target"], fr[10]["digest"].hex()) == (c2.seq, c2.state_hash)
    assert [i for i, _ in fr[10]["records"]] == ["p1"] and fr[10]["records"][0][1] == (None, "plain", b'{"p":1}')
    assert (fr[11]["target"], fr[11]["digest"].hex()) == (c1.seq, c1.state_hash)
    assert fr[11]["deletes"] == ["new", "p1", "p2"]
    assert fr[7]["topic"] == "test.topic"
    # every recorded digest is the root of the replayed state there
    for f in fr:
        if f["kind"] in (3, 4, 8):
            assert f["digest"] == doc_state_digest(doc_replay(log, f["seq"]), log)
    state = doc_replay(log)
    assert state == expected
    assert tree_root(state, code, dim).hex() == head
    # generated ids: from the chain hash of the frame before the upsert
    prev = fr[-2]["chain"]
    assert w["generated"] == [str(uuid.UUID(bytes=hashlib.blake2b(prev + struct.pack("<Q", i), digest_size=16,
                                                                   person=b"valori-auto-id").digest(), version=4))
                              for i in range(2)]
    # the snapshot
    dec = doc_decode_snapshot(snap)
    assert dec["format"] == 3 and dec["state"] == expected and dec["hash"] == head
    # the image: its pages hold the state, named by their digests
    mans = manifest_files(root)
    m = mans[max(mans)]
    assert (m["seq"], m["log_end"], m["chain"]) == (fr[-1]["seq"], fr[-1]["end"], fr[-1]["chain"])
    assert doc_image_state(root, m) == expected
    assert {p.name for p in (root / "pages").iterdir()} >= {p["digest"].hex() + ".vpg" for p in m["pages"]}
    crowd_page = next(p for p in m["pages"] if p["prefix"][0] == 0)
    assert crowd_page["depth"] == 2 and crowd_page["count"] >= 17  # a split node as one page
    # proofs: present and absent ones verify by the doc; any edit is rejected by both verifiers
    rootb = bytes.fromhex(head)
    assert [doc_verify_proof(rootb, p) for p in proofs] == ["present"] * len(present) + ["absent"] * 3
    assert len(next(p for p in proofs if p["id"].startswith("crowd-"))["path"]) == 3
    for p in proofs:
        assert verify_proof(head, p).ok
        for edit in _edits(p, present[0]):
            assert doc_proof_ok(rootb, edit) == "invalid"
            assert not verify_proof(head, edit).ok
    report = verify(root)
    assert report.ok and report.state_hash == head


def _edits(p: dict[str, Any], stored_id: str) -> list[dict[str, Any]]:
    def flip(h: str) -> str:
        return ("0" if h[0] != "0" else "1") + h[1:]

    out = []
    e = json.loads(json.dumps(p))
    if e["bucket"]:
        e["bucket"][0][1] = flip(e["bucket"][0][1])
    else:  # an empty bucket gains an entry
        e["bucket"].append(["00" * 32, "11" * 32])
    out.append(e)
    e = json.loads(json.dumps(p))
    e["path"][0]["siblings"][3] = flip(e["path"][0]["siblings"][3])
    out.append(e)
    e = json.loads(json.dumps(p))
    e["path"][-1]["count"] += 1
    out.append(e)
    e = json.loads(json.dumps(p))
    # another id: a presence proof names one record; an absence proof must not prove a stored id absent
    # (it may prove other absent ids: every id whose branch ends in an empty node it shows)
    e["id"] = e["id"] + "x" if p["present"] else stored_id
    out.append(e)
    if p["present"]:
        e = json.loads(json.dumps(p))
        e["text"] = (e["text"] or "") + "!"
        out.append(e)
        e = json.loads(json.dumps(p))
        e["present"] = False
        out.append(e)
    return out


def test_compacted_log_decodes_by_the_document(tmp_path: Path) -> None:
    root = tmp_path / "c"
    dim = 2
    with ValoriStore.open(root, dim=dim, metric="l2") as s:
        s.upsert([[1, 2], [3, 4], [5, 6]], ids=["x", "y", "z"])
        s.annotate("n.one", {"i": 1})
        first = s.checkpoint("first")
        s.delete(["y"])
        second = s.checkpoint("second")
        s.upsert_plain(["p"], texts=["t"])
        s.annotate("n.two", {"i": 2})
        third = s.checkpoint("third")
        s.upsert([[7, 8]], ids=["w"])
        before = doc_decode_log((root / "events.vlog").read_bytes())
        s.compact(before=first)
        s.compact(before="third")  # a second compaction folds the first base's events too
        head = s.state_hash()
        expected = live_state(s)
        events_total = s.log_length
        history = [(c.seq, c.state_hash, c.label) for c in s.history()]
    log = doc_decode_log((root / "events.vlog").read_bytes())
    base = log["frames"][0]
    assert log["version"] == 2 and base["kind"] == 9 and base["seq"] == third.seq
    assert base["seq"] + len(log["frames"]) == events_total == len(before["frames"])
    # the base records the chain and root at its seq; its folded events are the checkpoint and
    # note events before it, payload for payload
    at = before["frames"][third.seq]
    assert (base["chain"], base["root"]) == (at["chain"], at["digest"])
    want = [{k: v for k, v in f.items() if k not in ("chain", "offset", "end", "raw")}
            for f in before["frames"][:third.seq + 1] if f["kind"] in (3, 5)]
    assert base["folded"] == want
    assert [(f["seq"], f["digest"].hex(), f["label"]) for f in base["folded"] if f["kind"] == 3] == [
        (c.seq, c.state_hash, c.label) for c in (first, second, third)] == history
    # later frames keep their bytes (and so their chain hashes)
    assert [f["raw"] for f in log["frames"][1:]] == [f["raw"] for f in before["frames"][third.seq + 1:]]
    mans = manifest_files(root)
    assert set(mans) == {third.seq}, "images before the base are pruned"
    m = mans[third.seq]
    assert (m["log_end"], m["chain"], m["root"]) == (base["end"], base["chain"], base["root"])
    state = doc_replay(log, base_state=doc_image_state(root, m))
    assert state == expected and tree_root(state, 2, dim).hex() == head
    assert verify(root).ok


def test_pages_below_depth_two_and_their_combination(tmp_path: Path) -> None:
    """More than 4096 records under one first key byte: that subtree is stored as pages of
    depth 3, and the root still follows from the page digests alone."""
    root = tmp_path / "big"
    ids = ids_with_first_key_byte(0xA7, 4100, "k")
    with ValoriStore.open(root, dim=1, metric="dot") as s:
        s.upsert([[float(i % 7)] for i in range(len(ids))], ids=ids)
        s.upsert([[1.0]], ids=["elsewhere"])
        s.write_image()
        head = s.state_hash()
    (m,) = manifest_files(root).values()
    deep = [p for p in m["pages"] if p["prefix"][0] == 0xA7]
    assert len(deep) > 1 and {p["depth"] for p in deep} == {3}
    # depth 3: the first byte and the high nibble of the second; the rest zero
    assert all(p["prefix"][1] & 0x0F == 0 and p["prefix"][2:] == bytes(30) for p in deep)
    assert len({p["prefix"][1] for p in deep}) == len(deep)
    prefixes = [p["prefix"] for p in m["pages"]]
    assert prefixes == sorted(prefixes)
    assert m["root"].hex() == head == doc_root_from_pages(m).hex()
    assert len(doc_image_state(root, m)) == len(ids) + 1


def test_shards_holding_disjoint_key_bytes_combine_into_the_root() -> None:
    """Section 2.4: two stores holding the records of disjoint first key bytes; the root of
    a store holding all of them follows from their depth-2 subtrees."""
    ids = [f"r{i}" for i in range(60)]
    vectors = [[float(i), float(-i)] for i in range(60)]
    whole, low, high = ValoriStore(2, "dot"), ValoriStore(2, "dot"), ValoriStore(2, "dot")
    whole.upsert(vectors, ids=ids)
    for shard, keep in ((low, lambda k: k < 0x80), (high, lambda k: k >= 0x80)):
        pick = [i for i, rid in enumerate(ids) if keep(key_of(rid)[0])]
        shard.upsert([vectors[i] for i in pick], ids=[ids[i] for i in pick])
    parts = [subtrees(doc_decode_snapshot(s.to_bytes())["state"]) for s in (low, high)]
    assert combine(parts, 1, 2).hex() == whole.state_hash()
    assert combine([{}], 1, 2).hex() == ValoriStore(2, "dot").state_hash()


def test_empty_states() -> None:
    for metric in METRICS:
        s = ValoriStore(3, metric)
        data = s.to_bytes()
        assert len(data) == 128
        dec = doc_decode_snapshot(data)
        assert dec["state"] == {} and dec["metric"] == metric and dec["dim"] == 3
        assert dec["hash"] == s.state_hash() == combine([{}], METRICS.index(metric), 3).hex()
        v1 = s.to_bytes(spec=1)
        assert len(v1) == 96 and doc_decode_snapshot(v1)["hash"] == s.state_hash(spec=1)
    assert "128 bytes" in doc_text() and "96 bytes" in doc_text()


def test_spec_1_snapshots_decode_by_the_document() -> None:
    s = ValoriStore(2, "cosine")
    s.upsert([[1.0, 2.0], [-3.0, 0.5]], ids=["b", "a"], texts=["x", None], metadatas=[{"q": [1]}, None])
    one = doc_decode_snapshot(s.to_bytes(spec=1))
    assert one["format"] == 1 and one["hash"] == s.state_hash(spec=1)
    s.upsert_plain(["c"], texts=["no vector"])
    two = doc_decode_snapshot(s.to_bytes(spec=1))
    assert two["format"] == 2 and two["hash"] == s.state_hash(spec=1) and two["state"]["c"][0] is None
    three = doc_decode_snapshot(s.to_bytes())
    assert three["format"] == 3 and three["state"] == two["state"] and three["hash"] == s.state_hash()


def test_a_0_1_store_and_its_migration_decode_by_the_document(tmp_path: Path) -> None:
    src = tmp_path / "core"
    shutil.copytree(FIXTURES_V0_1 / "core", src)
    original = (src / "events.vlog").read_bytes()
    log = doc_decode_log(original)
    assert log["version"] == 1 and (log["spec"], log["frames"][0]["format"]) == (1, 1)
    checkpoints = {}
    for f in log["frames"]:
        if f["kind"] in (3, 4, 8):
            state = doc_replay(log, f["seq"])
            assert f["digest"] == doc_state_digest(state, log), "a spec-1 digest hashes the format-1/2 snapshot"
        if f["kind"] == 3:
            checkpoints[f["seq"]] = (f["label"], f["digest"])
    images = sorted((src / "images").glob("*.vimg"))
    assert images
    for p in images:
        img = doc_decode_image_v1(p.read_bytes())
        f = log["frames"][img["seq"]]
        assert p.name == f"{img['seq']:012d}.vimg" and (img["log_end"], img["chain"]) == (f["end"], f["chain"])
        assert img["snapshot"]["state"] == doc_replay(log, img["seq"])
        assert img["checkpoints"] == [(s, lab, d) for s, (lab, d) in checkpoints.items() if s <= img["seq"]]
    v1_head = doc_state_digest(doc_replay(log), log).hex()
    snap = doc_decode_snapshot((FIXTURES_V0_1 / "core.vsnap").read_bytes())
    assert snap["format"] == 1 and snap["hash"] == v1_head
    # migrate: same seqs, checkpoints record roots, a last note maps seq -> 0.1 hash
    result = migrate(src)
    backup = tmp_path / "core.v1-backup"
    assert result.changed and Path(result.backup or "") == backup
    assert (backup / "events.vlog").read_bytes() == original
    new = doc_decode_log((src / "events.vlog").read_bytes())
    assert (new["spec"], new["frames"][0]["format"]) == (2, 3)
    assert len(new["frames"]) == len(log["frames"]) + 1
    for old_f, new_f in zip(log["frames"][1:], new["frames"][1:]):
        assert new_f["kind"] == old_f["kind"] and new_f["seq"] == old_f["seq"]
        if new_f["kind"] in (3, 4, 8):
            assert new_f["digest"] == tree_root(doc_replay(new, new_f["seq"]), new["metric_code"], new["dim"])
        elif new_f["kind"] == 5 and new_f["topic"] == "session.turn":
            body = json.loads(new_f["body"])
            assert body["state_hash"] == new["frames"][body["seq"]]["digest"].hex()
        else:
            assert new_f["raw"][20:-36] == old_f["raw"][20:-36]  # the same payload
    note = new["frames"][-1]
    assert note["kind"] == 5 and note["topic"] == "valori.migration"
    body = json.loads(note["body"])
    assert body["v1_checkpoints"] == {str(s): d.hex() for s, (_, d) in checkpoints.items()}
    assert body["v1_state_hash"] == v1_head and body["from_spec"] == 1 and body["to_spec"] == 2
    mans = manifest_files(src)
    m = mans[note["seq"]]
    assert doc_image_state(src, m) == doc_replay(new) == doc_replay(log)
    with ValoriStore.open(src) as s:
        assert s.state_hash() == m["root"].hex()


def test_torn_tails_and_the_compaction_temp_file(tmp_path: Path) -> None:
    root = tmp_path / "t"
    with ValoriStore.open(root, dim=2, metric="dot") as s:
        s.upsert([[1, 2]], ids=["a"])
        good = (root / "events.vlog").read_bytes()
    (root / ".events.vlog.compact").write_bytes(b"left by a killed compaction")
    with open(root / "events.vlog", "ab") as fh:
        fh.write(bytes(300))  # a zero-filled tail
    with pytest.warns(UserWarning, match="300 bytes"):
        with ValoriStore.open(root) as s:
            assert s.log_length == 2
    assert (root / "events.vlog").read_bytes() == good
    assert not (root / ".events.vlog.compact").exists()
    doc_decode_log(good)
