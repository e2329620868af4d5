"""Checkpoint images: a snapshot plus the log position it corresponds to.

A durable store writes one image per checkpoint (``images/<seq>.vimg``), so restore and
recovery do not replay the whole log. Layout (little-endian)::

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
        raise FormatVersionError(f"{what}: unsupported image version")
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
