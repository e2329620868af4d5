"""Events of the store's state machine and their canonical binary payloads.

Every change to a store is one event; replaying the events from empty rebuilds the
state exactly. Payload layouts (little-endian) are documented in docs/format.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from valori_store.errors import FormatVersionError
from valori_store.format.binary import Reader, blob, opt_str, pack_records, u32, u64
from valori_store.format.canonical import is_canonical_metadata
from valori_store.format.snapshot import DIGEST_SIZE, FORMAT_VERSION
from valori_store.spec import MAX_DIM, METRICS, SPEC_VERSION

CREATE, UPSERT, DELETE, CHECKPOINT, RESTORE, NOTE, WRITE = 0, 1, 2, 3, 4, 5, 6
NAMES = {
    CREATE: "create", UPSERT: "upsert", DELETE: "delete", CHECKPOINT: "checkpoint", RESTORE: "restore",
    NOTE: "note", WRITE: "write",
}


@dataclass(frozen=True)
class Create:
    """First event of every log: the store's shape."""

    dim: int
    metric: str
    kind: int = field(default=CREATE, init=False)


@dataclass(frozen=True)
class Upsert:
    """Insert or overwrite records; ``rows`` are the stored int32 vectors."""

    ids: list[str]
    rows: np.ndarray
    texts: list[str | None]
    metas: list[bytes]
    kind: int = field(default=UPSERT, init=False)


@dataclass(frozen=True)
class Delete:
    """Remove records (only ids that were present are recorded)."""

    ids: list[str]
    kind: int = field(default=DELETE, init=False)


@dataclass(frozen=True)
class CheckpointMark:
    """A named point; ``digest`` is the state digest at that point."""

    label: str | None
    digest: bytes
    kind: int = field(default=CHECKPOINT, init=False)


@dataclass(frozen=True)
class Restore:
    """Rewind to checkpoint ``target_seq``: delete ``deletes`` then apply ``upsert``.

    The diff makes the event self-contained: replay never needs an older state.
    """

    target_seq: int
    digest: bytes
    deletes: list[str]
    upsert: Upsert
    kind: int = field(default=RESTORE, init=False)


@dataclass(frozen=True)
class Note:
    """An annotation that changes no record: ``topic`` names its kind (e.g. ``session.turn``),
    ``body`` is canonical JSON (a dict). Sessions and their turns are notes, so they share
    the log's checksums and hash chain."""

    topic: str
    body: bytes
    kind: int = field(default=NOTE, init=False)


@dataclass(frozen=True)
class Write:
    """Deletes then an upsert, applied as one atomic event (``ValoriStore.write``)."""

    deletes: list[str]
    upsert: Upsert
    kind: int = field(default=WRITE, init=False)


Event = Create | Upsert | Delete | CheckpointMark | Restore | Note | Write


def _upsert_parts(ev: Upsert) -> list[bytes | memoryview]:
    """Upsert payload as (count + records, vector block): the block is a zero-copy view."""
    head = u32(len(ev.ids)) + pack_records(ev.ids, ev.texts, ev.metas)
    if not len(ev.ids):
        return [head]
    block = np.ascontiguousarray(ev.rows, dtype="<i4")  # no copy for C-ordered int32 on LE
    return [head, memoryview(block).cast("B")]


def _ids_payload(ids: list[str]) -> bytes:
    return u32(len(ids)) + b"".join(blob(i.encode("utf-8")) for i in ids)


def encode_parts(ev: Event) -> list[bytes | memoryview]:
    """Canonical payload of an event as buffers whose concatenation is :func:`encode`."""
    if isinstance(ev, Upsert):
        return _upsert_parts(ev)
    if isinstance(ev, Restore):
        return [u64(ev.target_seq) + ev.digest + _ids_payload(ev.deletes), *_upsert_parts(ev.upsert)]
    if isinstance(ev, Write):
        return [_ids_payload(ev.deletes), *_upsert_parts(ev.upsert)]
    return [encode(ev)]


def encode(ev: Event) -> bytes:
    """Canonical payload bytes of an event (its kind travels in the frame header)."""
    if isinstance(ev, (Upsert, Restore, Write)):
        return b"".join(encode_parts(ev))
    if isinstance(ev, Delete):
        return _ids_payload(ev.ids)
    if isinstance(ev, CheckpointMark):
        return opt_str(ev.label) + ev.digest
    if isinstance(ev, Note):
        return blob(ev.topic.encode("utf-8")) + blob(ev.body)
    if isinstance(ev, Create):
        return u32(ev.dim) + bytes([METRICS.index(ev.metric)]) + SPEC_VERSION.to_bytes(2, "little") + (
            FORMAT_VERSION.to_bytes(2, "little")
        )
    raise TypeError(f"not an event: {ev!r}")


def _read_upsert(r: Reader, dim: int) -> Upsert:
    count = r.u32()
    ids, texts, metas = [], [], []
    for _ in range(count):
        ids.append(r.text())
        texts.append(r.opt_text())
        meta = r.blob()
        if not is_canonical_metadata(meta):
            raise r.fail("metadata is not canonical JSON")
        metas.append(meta)
    rows = r.int32_matrix(count, dim)
    return Upsert(ids, rows, texts, metas)


def _read_ids(r: Reader) -> list[str]:
    return [r.text() for _ in range(r.u32())]


def decode(kind: int, payload: bytes | memoryview, dim: int, what: str, offset: int) -> Event:
    """Parse an event payload; raises CorruptFileError on any inconsistency."""
    r = Reader(payload, what, offset)
    ev: Event
    if kind == UPSERT:
        ev = _read_upsert(r, dim)
    elif kind == DELETE:
        ev = Delete(_read_ids(r))
    elif kind == CHECKPOINT:
        ev = CheckpointMark(r.opt_text(), bytes(r.take(DIGEST_SIZE)))
    elif kind == WRITE:
        ev = Write(_read_ids(r), _read_upsert(r, dim))
    elif kind == NOTE:
        topic = r.text()
        body = bytes(r.blob())
        if not is_canonical_metadata(body):
            raise r.fail("note body is not canonical JSON")
        ev = Note(topic, body)
    elif kind == RESTORE:
        target = r.u64()
        digest = bytes(r.take(DIGEST_SIZE))
        ev = Restore(target, digest, _read_ids(r), _read_upsert(r, dim))
    elif kind == CREATE:
        d, m, spec, fmt = r.u32(), r.u8(), r.u16(), r.u16()
        if spec != SPEC_VERSION or fmt != FORMAT_VERSION:
            raise FormatVersionError(
                f"{what}: log written by format {fmt} / numeric spec {spec}; this valori-store reads format "
                f"{FORMAT_VERSION} / spec {SPEC_VERSION}"
            )
        if m >= len(METRICS) or not 1 <= d <= MAX_DIM:
            raise r.fail("bad create event")
        ev = Create(d, METRICS[m])
    else:
        raise r.fail(f"unknown event type {kind}")
    r.end()
    return ev
