"""Events of the store's state machine and their canonical binary payloads.

Every change to a store is one event; replaying the events from empty rebuilds the
state exactly. Payload layouts (little-endian) are documented in docs/format.md.

A record normally carries a vector (an :class:`Upsert` row). Records *without* a vector
(:class:`Plain`, found by id or filter, never ranked) exist since 0.2; the events that
carry them have their own kinds (``WRITE_PLAIN``, ``RESTORE_PLAIN``), so a history without
such records has exactly the bytes valori-store 0.1 wrote.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from valori_store.errors import CorruptFileError, FormatVersionError
from valori_store.format import digests
from valori_store.format import records_block
from valori_store.format.binary import Reader, blob, opt_str, u32, u64
from valori_store.format.canonical import is_canonical_metadata
from valori_store.format.records_block import PackedRecords
from valori_store.format.snapshot import DIGEST_SIZE, FORMAT_TREE, FORMAT_VERSION
from valori_store.spec import MAX_DIM, MAX_ID_BYTES, METRICS, SPEC_VERSION

CREATE, UPSERT, DELETE, CHECKPOINT, RESTORE, NOTE, WRITE, WRITE_PLAIN, RESTORE_PLAIN, BASE = range(10)
NAMES = {
    CREATE: "create", UPSERT: "upsert", DELETE: "delete", CHECKPOINT: "checkpoint", RESTORE: "restore",
    NOTE: "note", WRITE: "write", WRITE_PLAIN: "write", RESTORE_PLAIN: "restore", BASE: "base",
}


@dataclass(frozen=True)
class Create:
    """First event of every log: the store's shape and its spec version (1: a store made by
    valori-store 0.1, whose state hash hashes the whole snapshot; 2: the state tree)."""

    dim: int
    metric: str
    spec: int = SPEC_VERSION
    kind: int = field(default=CREATE, init=False)


@dataclass(frozen=True)
class Upsert:
    """Insert or overwrite records; ``rows`` are the stored int32 vectors."""

    ids: list[str]
    rows: np.ndarray
    texts: list[str | None]
    metas: list[bytes]
    packed: PackedRecords | None = field(default=None, compare=False, repr=False)
    kind: int = field(default=UPSERT, init=False)

    def packed_records(self) -> PackedRecords:
        """The records packed (computed once; decoded events carry their payload's)."""
        if self.packed is None:
            object.__setattr__(self, "packed", records_block.pack(self.ids, self.texts, self.metas))
        assert self.packed is not None
        return self.packed

    @classmethod
    def empty(cls, dim: int) -> Upsert:
        return cls([], np.zeros((0, dim), dtype=np.int32), [], [])


@dataclass(frozen=True)
class Plain:
    """Records without a vector: ids, texts and canonical metadata (not an event itself)."""

    ids: list[str] = field(default_factory=list)
    texts: list[str | None] = field(default_factory=list)
    metas: list[bytes] = field(default_factory=list)
    packed: PackedRecords | None = field(default=None, compare=False, repr=False)

    def packed_records(self) -> PackedRecords:
        if self.packed is None:
            object.__setattr__(self, "packed", records_block.pack(self.ids, self.texts, self.metas))
        assert self.packed is not None
        return self.packed


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
    """Rewind to checkpoint ``target_seq``: delete ``deletes`` then apply ``upsert`` and ``plain``.

    The diff makes the event self-contained: replay never needs an older state.
    """

    target_seq: int
    digest: bytes
    deletes: list[str]
    upsert: Upsert
    plain: Plain = field(default_factory=Plain)

    @property
    def kind(self) -> int:
        return RESTORE_PLAIN if self.plain.ids else RESTORE


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
    """Deletes, then an upsert and records without vectors, applied as one atomic event."""

    deletes: list[str]
    upsert: Upsert
    plain: Plain = field(default_factory=Plain)

    @property
    def kind(self) -> int:
        return WRITE_PLAIN if self.plain.ids else WRITE


#: The snapshot format a create event records for each spec version.
CREATE_FORMAT = {1: FORMAT_VERSION, 2: FORMAT_TREE}


@dataclass(frozen=True)
class Base:
    """First event of a compacted log (kind 9): the store's shape, the hash chain and state
    root of the history it replaced (the state is the base image at this event's seq), and
    the checkpoint and note events of that history (``(seq, kind, payload)``), kept so
    history and sessions still list them."""

    dim: int
    metric: str
    spec: int
    chain: bytes
    root: bytes
    folded: list[tuple[int, int, bytes]] = field(default_factory=list)
    kind: int = field(default=BASE, init=False)


Event = Base | Create | Upsert | Delete | CheckpointMark | Restore | Note | Write


def _base_digest(body: bytes | memoryview) -> bytes:
    """Tagged SHA-256 ("valori-base-v1") that ends a base event's payload: the base frame's
    chain hash is the replaced history's, so it does not cover the payload; this does."""
    h = digests.tagged(digests.BASE)
    h.update(body)
    return bytes(h.digest())


def _upsert_parts(ev: Upsert) -> list[bytes | memoryview]:
    """Upsert payload as (count + records, vector block): the block is a zero-copy view."""
    head = u32(len(ev.ids)) + ev.packed_records().data
    if not len(ev.ids):
        return [head]
    block = np.ascontiguousarray(ev.rows, dtype="<i4")  # no copy for C-ordered int32 on LE
    return [head, memoryview(block).cast("B")]


def _plain_payload(plain: Plain) -> bytes:
    return u32(len(plain.ids)) + plain.packed_records().data


def _ids_payload(ids: list[str]) -> bytes:
    return u32(len(ids)) + b"".join(blob(i.encode("utf-8")) for i in ids)


def encode_parts(ev: Event) -> list[bytes | memoryview]:
    """Canonical payload of an event as buffers whose concatenation is :func:`encode`."""
    if isinstance(ev, Upsert):
        return _upsert_parts(ev)
    if isinstance(ev, Restore):
        out = [u64(ev.target_seq) + ev.digest + _ids_payload(ev.deletes), *_upsert_parts(ev.upsert)]
    elif isinstance(ev, Write):
        out = [_ids_payload(ev.deletes), *_upsert_parts(ev.upsert)]
    else:
        return [encode(ev)]
    return [*out, _plain_payload(ev.plain)] if ev.plain.ids else out


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
        return u32(ev.dim) + bytes([METRICS.index(ev.metric)]) + ev.spec.to_bytes(2, "little") + (
            CREATE_FORMAT[ev.spec].to_bytes(2, "little")
        )
    if isinstance(ev, Base):
        folded = b"".join(u64(seq) + bytes([kind]) + blob(payload) for seq, kind, payload in ev.folded)
        body = (u32(ev.dim) + bytes([METRICS.index(ev.metric)]) + ev.spec.to_bytes(2, "little") + ev.chain + ev.root
                + u32(len(ev.folded)) + folded)
        return body + _base_digest(body)
    raise TypeError(f"not an event: {ev!r}")


def _read_records(r: Reader) -> tuple[list[str], list[str | None], list[bytes], PackedRecords]:
    count = r.count(12)  # u32 id length, u32 text length, u32 metadata length at least
    ids, texts, metas = [], [], []
    start = r.pos
    offsets = np.zeros(count + 1, dtype=np.int64)
    for i in range(count):
        ids.append(r.text())
        texts.append(r.opt_text())
        meta = r.blob()
        if not is_canonical_metadata(meta):
            raise r.fail("metadata is not canonical JSON")
        metas.append(meta)
        offsets[i + 1] = r.pos - start
    return ids, texts, metas, PackedRecords(bytes(r.data[start : r.pos]), offsets)


def _read_upsert(r: Reader, dim: int) -> Upsert:
    ids, texts, metas, packed = _read_records(r)
    return Upsert(ids, r.int32_matrix(len(ids), dim), texts, metas, packed)


def _read_plain(r: Reader) -> Plain:
    plain = Plain(*_read_records(r))
    if not plain.ids:
        raise r.fail("an event for records without vectors holds none (the canonical form has another kind)")
    return plain


def _read_ids(r: Reader) -> list[str]:
    return [r.text() for _ in range(r.count(4))]


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
    elif kind in (WRITE, WRITE_PLAIN):
        deletes, upsert = _read_ids(r), _read_upsert(r, dim)
        ev = Write(deletes, upsert, _read_plain(r) if kind == WRITE_PLAIN else Plain())
    elif kind == NOTE:
        topic = r.text()
        body = bytes(r.blob())
        if not is_canonical_metadata(body):
            raise r.fail("note body is not canonical JSON")
        ev = Note(topic, body)
    elif kind in (RESTORE, RESTORE_PLAIN):
        target = r.u64()
        digest = bytes(r.take(DIGEST_SIZE))
        deletes, upsert = _read_ids(r), _read_upsert(r, dim)
        ev = Restore(target, digest, deletes, upsert, _read_plain(r) if kind == RESTORE_PLAIN else Plain())
    elif kind == BASE:
        if len(payload) < DIGEST_SIZE or _base_digest(payload[:-DIGEST_SIZE]) != bytes(payload[-DIGEST_SIZE:]):
            raise CorruptFileError(f"{what}: the base event at offset {offset} fails its digest (damaged)")
        r = Reader(memoryview(payload)[:-DIGEST_SIZE], what, offset)
        d, m, spec = r.u32(), r.u8(), r.u16()
        chain, root = bytes(r.take(DIGEST_SIZE)), bytes(r.take(DIGEST_SIZE))
        folded: list[tuple[int, int, bytes]] = []
        for _ in range(r.count(13)):
            seq, fkind, fpayload = r.u64(), r.u8(), bytes(r.blob())
            if fkind not in (CHECKPOINT, NOTE):
                raise r.fail(f"a base event folds an event of kind {fkind}")
            if folded and seq <= folded[-1][0]:
                raise r.fail("a base event's folded events are out of order")
            decode(fkind, fpayload, d, what, offset)  # checked like the event itself
            folded.append((seq, fkind, fpayload))
        if spec != 2 or m >= len(METRICS) or not 1 <= d <= MAX_DIM:
            raise r.fail("bad base event")
        ev = Base(d, METRICS[m], spec, chain, root, folded)
    elif kind == CREATE:
        d, m, spec, fmt = r.u32(), r.u8(), r.u16(), r.u16()
        if CREATE_FORMAT.get(spec) != fmt:
            raise FormatVersionError(
                f"{what}: log written by format {fmt} / spec {spec}; this valori-store reads "
                + ", ".join(f"format {f} / spec {s}" for s, f in CREATE_FORMAT.items())
            )
        if m >= len(METRICS) or not 1 <= d <= MAX_DIM:
            raise r.fail("bad create event")
        ev = Create(d, METRICS[m], spec)
    else:
        raise r.fail(f"unknown event type {kind}")
    r.end()
    _check_record_ids(ev, r)
    return ev


def _check_record_ids(ev: Event, r: Reader) -> None:
    """The id rules writers enforce, enforced on what is read back (a crafted frame with
    valid checksums must not build a state no writer can): ids non-empty, at most
    MAX_ID_BYTES, unique within a section, none both with and without a vector."""
    if isinstance(ev, Upsert):
        sections = [ev.ids]
    elif isinstance(ev, Delete):
        sections = [ev.ids]
    elif isinstance(ev, (Write, Restore)):
        sections = [ev.deletes, ev.upsert.ids + ev.plain.ids]
    else:
        return
    for ids in sections:
        if len(set(ids)) != len(ids):
            raise r.fail("an id appears twice in one event")
        if not ids:
            continue
        lengths = list(map(len, ids))
        if min(lengths) == 0:
            raise r.fail("an empty id")
        if max(lengths) * 4 > MAX_ID_BYTES:  # a str of n characters has at most 4n UTF-8 bytes
            size = max(len(rid.encode("utf-8")) for rid in ids)
            if size > MAX_ID_BYTES:
                raise r.fail(f"an id of {size} bytes (ids are 1 to {MAX_ID_BYTES} bytes)")
