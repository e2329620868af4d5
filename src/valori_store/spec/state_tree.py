"""The state spec (version 2): the state root, a Merkle hash trie over the records.

Readable reference code (hashlib, Python lists); :mod:`valori_store.state.merkle` computes
the same digests at speed, and the tests compare them. All digests are tagged SHA-256:
``H[T](x) = SHA-256(T || 0x00 || x)``.

Records
-------
* **key** of a record: ``H["valori-key-v2"](id as UTF-8)``, 32 bytes; read as 64 hex
  nibbles, most significant first.
* **leaf** of a record: ``H["valori-leaf-v2"](u8 flags || u32 len(id) || id || text || u32
  len(metadata) || metadata || vector)`` where ``flags`` is 0 for a record with a vector
  and 1 for one without, ``text`` is ``u32 len || UTF-8`` or ``0xFFFFFFFF`` for none,
  ``metadata`` is the canonical JSON, and ``vector`` is the stored row as ``dim`` little-
  endian int32 (absent when flags is 1). Integers are little-endian.

The trie
--------
A node is the set of records whose key starts with a nibble prefix ``p`` of length ``d``.

* A node with ``d < FIXED_DEPTH`` (2), or with more than ``BUCKET_MAX`` (16) records and
  ``d < 64``, is **split**: ``H["valori-node-v2"](u64 count || child_0 || ... || child_15)``
  where ``child_i`` is the digest of the node ``p + i``. (The top two levels are always
  split, so the 256 subtrees of depth 2 partition the records by the first key byte: a
  sharded store holding any grouping of them combines into the same root.)
* Any other node is a **bucket**: ``H["valori-bucket-v2"](u32 count || key_1 || leaf_1 ||
  ... )`` over its records in ascending key order (an empty bucket has count 0).

The shape therefore depends on the set of keys alone, never on history. The **state
root** is ``H["valori-state-v2"](u16 spec version (2) || u8 metric code || u32 dim ||
digest of the node with the empty prefix)``; the state hash is its hex.

Proofs
------
A proof for an id holds the record (or nothing, for an absent id), its bucket's entries
and, for each split node from the top down, its count and its 15 other children.
:func:`verify_proof` recomputes the leaf, the bucket and every node up to the root.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

STATE_SPEC_VERSION = 2
FIXED_DEPTH = 2
BUCKET_MAX = 16
KEY_NIBBLES = 64
NO_TEXT = 0xFFFFFFFF
TAG_KEY = b"valori-key-v2"
TAG_LEAF = b"valori-leaf-v2"
TAG_BUCKET = b"valori-bucket-v2"
TAG_NODE = b"valori-node-v2"
TAG_STATE = b"valori-state-v2"


def tagged_hash(tag: bytes, data: bytes) -> bytes:
    """``SHA-256(tag || 0x00 || data)``."""
    return hashlib.sha256(tag + b"\x00" + data).digest()


@dataclass(frozen=True)
class RecordBytes:
    """A record as the leaf sees it: id, text (None: no text), canonical metadata bytes, and
    the stored row as little-endian int32 bytes (None: no vector)."""

    id: str
    text: str | None
    metadata: bytes
    vector: bytes | None


def record_entry(rec: RecordBytes) -> bytes:
    """``u32 len(id) || id || text || u32 len(metadata) || metadata`` (the snapshot record layout)."""
    rid = rec.id.encode("utf-8")
    text = struct.pack("<I", NO_TEXT) if rec.text is None else struct.pack("<I", len(rec.text.encode("utf-8"))) + (
        rec.text.encode("utf-8"))
    return struct.pack("<I", len(rid)) + rid + text + struct.pack("<I", len(rec.metadata)) + rec.metadata


def key_of(record_id: str) -> bytes:
    return tagged_hash(TAG_KEY, record_id.encode("utf-8"))


def leaf_of(rec: RecordBytes) -> bytes:
    flags = b"\x01" if rec.vector is None else b"\x00"
    return tagged_hash(TAG_LEAF, flags + record_entry(rec) + (rec.vector or b""))


def nibble(key: bytes, i: int) -> int:
    """Nibble ``i`` of a key (0 = the high half of the first byte)."""
    b = key[i >> 1]
    return b >> 4 if i % 2 == 0 else b & 15


def bucket_digest(entries: Sequence[tuple[bytes, bytes]]) -> bytes:
    """Digest of a bucket from its (key, leaf) entries in ascending key order."""
    return tagged_hash(TAG_BUCKET, struct.pack("<I", len(entries)) + b"".join(k + v for k, v in entries))


def split_digest(count: int, children: Sequence[bytes]) -> bytes:
    assert len(children) == 16
    return tagged_hash(TAG_NODE, struct.pack("<Q", count) + b"".join(children))


def is_split(depth: int, count: int) -> bool:
    """The shape rule: is the node of this depth and record count split?"""
    return depth < FIXED_DEPTH or (count > BUCKET_MAX and depth < KEY_NIBBLES)


def node_digest(entries: Sequence[tuple[bytes, bytes]], depth: int) -> bytes:
    """Digest of the node holding ``entries`` (sorted by key, all sharing the node's prefix)."""
    if not is_split(depth, len(entries)):
        return bucket_digest(entries)
    groups: list[list[tuple[bytes, bytes]]] = [[] for _ in range(16)]
    for e in entries:
        groups[nibble(e[0], depth)].append(e)
    return split_digest(len(entries), [node_digest(g, depth + 1) for g in groups])


def root_of(top: bytes, metric_code: int, dim: int) -> bytes:
    """The state root from the digest of the top node."""
    return tagged_hash(TAG_STATE, struct.pack("<HBI", STATE_SPEC_VERSION, metric_code, dim) + top)


def state_root(records: Sequence[RecordBytes], metric_code: int, dim: int) -> bytes:
    """The state root of a set of records (ids unique)."""
    entries = sorted((key_of(r.id), leaf_of(r)) for r in records)
    return root_of(node_digest(entries, 0), metric_code, dim)


# ----------------------------------------------------------------------------- proofs


@dataclass(frozen=True)
class PathStep:
    """One split node on the way down: its record count and its other 15 children's digests."""

    count: int
    siblings: tuple[bytes, ...]


@dataclass(frozen=True)
class Proof:
    """Inclusion (``record`` given) or absence (``record`` None) of ``id`` in a state."""

    id: str
    record: RecordBytes | None
    metric_code: int
    dim: int
    path: tuple[PathStep, ...]
    bucket: tuple[tuple[bytes, bytes], ...] = field(default=())


def prove(records: Sequence[RecordBytes], record_id: str, metric_code: int, dim: int) -> Proof:
    """The proof for ``record_id`` (present or absent) in the state of ``records``."""
    key = key_of(record_id)
    entries = sorted((key_of(r.id), leaf_of(r)) for r in records)
    by_id = {r.id: r for r in records}
    path: list[PathStep] = []
    depth = 0
    while is_split(depth, len(entries)):
        groups: list[list[tuple[bytes, bytes]]] = [[] for _ in range(16)]
        for e in entries:
            groups[nibble(e[0], depth)].append(e)
        mine = nibble(key, depth)
        path.append(PathStep(len(entries), tuple(node_digest(g, depth + 1) for i, g in enumerate(groups) if i != mine)))
        entries = groups[mine]
        depth += 1
    return Proof(record_id, by_id.get(record_id), metric_code, dim, tuple(path), tuple(entries))


def proof_root(proof: Proof) -> bytes:
    """The root a proof leads to; ValueError when the proof is inconsistent in itself."""
    key = key_of(proof.id)
    entries = list(proof.bucket)
    if [k for k, _ in entries] != sorted({k for k, _ in entries}):
        raise ValueError("bucket entries are not in strictly ascending key order")
    depth = len(proof.path)
    if is_split(depth, len(entries)):
        raise ValueError("the bucket is too large for its depth (the node would be split)")
    mine = [v for k, v in entries if k == key]
    if proof.record is None:
        if mine:
            raise ValueError("an absence proof whose bucket holds the id's key")
    else:
        if proof.record.id != proof.id:
            raise ValueError("the proof's record has another id")
        if mine != [leaf_of(proof.record)]:
            raise ValueError("the record's leaf is not in its bucket")
    for k, _ in entries:
        if any(nibble(k, i) != nibble(key, i) for i in range(depth)):
            raise ValueError("a bucket entry lies outside the id's branch")
    digest = bucket_digest(entries)
    for d in range(depth - 1, -1, -1):
        step = proof.path[d]
        if len(step.siblings) != 15 or not is_split(d, step.count):
            raise ValueError(f"path step {d} is malformed")
        children = list(step.siblings)
        children.insert(nibble(key, d), digest)
        digest = split_digest(step.count, children)
    return root_of(digest, proof.metric_code, proof.dim)


def verify_proof(root: bytes, proof: Proof) -> bool:
    """True when ``proof`` leads to ``root`` (the record, or its absence, is in that state)."""
    try:
        return proof_root(proof) == root
    except (ValueError, IndexError, TypeError):
        return False
