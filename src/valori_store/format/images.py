"""Images: the state at a log position, so recovery and restore need not replay the log.

**Version 2** (spec-2 stores) is a manifest of content-addressed pages
(:mod:`.pages`)::

    "VALORIIM" | u16 version=2 | 6 zero bytes
    u64 seq | u64 log offset just after that event | 32-byte chain hash there
    32-byte state root | u16 spec (2) | u8 metric code | 1 zero byte | u32 dim | u64 count
    u32 number of pages, each: u8 depth | 32-byte key prefix | u32 count | 32-byte node digest
    32-byte tagged SHA-256 ("valori-image-v2") of everything before

The pages, in ascending key-prefix order, partition the records. **Version 1** (spec-1
stores, one per checkpoint, as valori-store 0.1 wrote them)::

    "VALORIIM" | u16 version=1 | 6 zero bytes
    u64 seq of the checkpoint event | u64 log offset just after it | 32-byte chain hash there
    u32 number of checkpoints so far, each: u64 seq, u32 len + label (0xFFFFFFFF = none),
        32-byte state digest
    u64 snapshot length | canonical snapshot bytes
    32-byte tagged SHA-256 ("valori-image-v1", see digests.py) of everything before
"""

from __future__ import annotations

from dataclasses import dataclass

from valori_store.errors import CorruptFileError, FormatVersionError
from valori_store.format import digests, snapshot
from valori_store.format.binary import Reader, opt_str, u32, u64
from valori_store.records import Checkpoint

MAGIC = b"VALORIIM"
VERSION = 1


def _digest(body: bytes | memoryview) -> bytes:
    h = digests.tagged(digests.IMAGE)
    h.update(body)
    return h.digest()


@dataclass(frozen=True)
class PageRef:
    """One page of a version-2 image: the trie node ``prefix`` (``depth`` nibbles)."""

    depth: int
    prefix: bytes
    count: int
    digest: bytes


@dataclass
class Manifest:
    """A decoded version-2 image."""

    seq: int
    log_end: int
    chain: bytes
    root: bytes
    spec: int
    metric_code: int
    dim: int
    count: int
    pages: list[PageRef]


def encode_manifest(m: Manifest) -> bytes:
    parts = [MAGIC, (2).to_bytes(2, "little"), bytes(6), u64(m.seq), u64(m.log_end), m.chain, m.root,
             m.spec.to_bytes(2, "little"), bytes([m.metric_code, 0]), u32(m.dim), u64(m.count), u32(len(m.pages))]
    for p in m.pages:
        parts += [bytes([p.depth]), p.prefix.ljust(32, b"\x00"), u32(p.count), p.digest]
    body = b"".join(parts)
    h = digests.tagged(digests.IMAGE_V2)
    h.update(body)
    return body + h.digest()


def version_of(data: bytes) -> int:
    """The image version (1 or 2) from its header; CorruptFileError if not an image."""
    if len(data) < 10 or data[:8] != MAGIC:
        raise CorruptFileError("not a valori image")
    return int.from_bytes(data[8:10], "little")


def decode_manifest(data: bytes, what: str) -> Manifest:
    """Verify the digest, then parse a version-2 image."""
    if len(data) < 16 + 32 or data[:8] != MAGIC:
        raise CorruptFileError(f"{what}: not a valori image")
    body, digest = memoryview(data)[:-32], data[-32:]
    h = digests.tagged(digests.IMAGE_V2)
    h.update(body)
    if h.digest() != digest:
        raise CorruptFileError(f"{what}: digest mismatch (corrupted or truncated image)")
    r = Reader(body, what)
    r.take(8)
    if r.u16() != 2 or any(r.take(6)):
        raise CorruptFileError(f"{what}: not a version-2 image")
    seq, log_end, chain, root = r.u64(), r.u64(), bytes(r.take(32)), bytes(r.take(32))
    spec, metric, zero, dim, count = r.u16(), r.u8(), r.u8(), r.u32(), r.u64()
    if zero or spec != 2:
        raise CorruptFileError(f"{what}: bad image header")
    pages = [PageRef(r.u8(), bytes(r.take(32)), r.u32(), bytes(r.take(32))) for _ in range(r.u32())]
    r.end()
    if sum(p.count for p in pages) != count:
        raise CorruptFileError(f"{what}: page counts do not add up to the image's record count")
    return Manifest(seq, log_end, chain, root, spec, metric, dim, count, pages)


@dataclass
class Image:
    """A decoded checkpoint image."""

    seq: int
    log_end: int
    chain: bytes
    checkpoints: list[Checkpoint]
    content: snapshot.Content


def encode(seq: int, log_end: int, chain: bytes, checkpoints: list[Checkpoint], snap: bytes) -> bytes:
    parts = [MAGIC, VERSION.to_bytes(2, "little"), bytes(6), u64(seq), u64(log_end), chain, u32(len(checkpoints))]
    for cp in checkpoints:
        parts += [u64(cp.seq), opt_str(cp.label), bytes.fromhex(cp.state_hash)]
    parts += [u64(len(snap)), snap]
    body = b"".join(parts)
    return body + _digest(body)


def decode(data: bytes, what: str) -> Image:
    """Verify the digest, then parse; CorruptFileError on any problem."""
    if len(data) < 16 + 32 or data[:8] != MAGIC:
        raise CorruptFileError(f"{what}: not a valori checkpoint image")
    body, digest = memoryview(data)[:-32], data[-32:]
    if _digest(body) != digest:
        raise CorruptFileError(f"{what}: digest mismatch (corrupted or truncated image)")
    r = Reader(body, what)
    r.take(8)
    if r.u16() != VERSION:
        raise FormatVersionError(f"{what}: not a version-1 image")
    if any(r.take(6)):
        raise CorruptFileError(f"{what}: reserved image header bytes are not zero")
    seq, log_end, chain = r.u64(), r.u64(), bytes(r.take(32))
    cps = []
    for _ in range(r.u32()):
        cseq, label = r.u64(), r.opt_text()
        cps.append(Checkpoint(cseq, bytes(r.take(32)).hex(), label))
    snap = r.take(r.u64())
    r.end()
    return Image(seq, log_end, chain, cps, snapshot.decode(snap, what))


def seq_of(data: bytes) -> int | None:
    """The event seq an image claims (both versions: the u64 at offset 16), unchecked; None
    when ``data`` is too short to hold one."""
    if len(data) < 24 or data[:8] != MAGIC:
        return None
    return int.from_bytes(data[16:24], "little")
