"""Restore in proportion to the change (spec-2 stores).

To rewind to checkpoint ``c``: the ids that can differ between now and ``c`` are those
touched by the events after ``c`` (read from the log's end, so the cost follows the
change). Their values at ``c`` come from the events between the newest image at or before
``c`` and ``c`` (or from the start of the log when there is no such image), else from that
image's page holding the id (one page read). The restore event lists exactly the records
that differ. Nothing here is trusted: the caller applies the event, compares the state root
with ``c``'s and undoes it (with :func:`inverse`) on a mismatch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from valori_store.format import events
from valori_store.format.touched import Touch, touched
from valori_store.format.records_block import unpack
from valori_store.records import Checkpoint
from valori_store.spec.state_tree import key_of
from valori_store.state.table import RecordTable
from valori_store.storage import page_store
from valori_store.store.live import Live


@dataclass(frozen=True)
class Value:
    """A record's content: ``row`` None for a record without a vector."""

    row: np.ndarray | None
    text: str | None
    meta: bytes


ABSENT = None


def _touches(live: Live, first: int, last: int | None = None) -> Iterator[Touch]:
    """What each write event in ``[first, last]`` touches, in log order (values not decoded)."""
    dim = live.table.dim
    for frame in live.log.frames(first, last):
        touch = touched(frame.kind, frame.payload, dim, "event log", frame.offset)
        if touch is not None:
            yield touch


def _current(table: RecordTable, rid: str) -> Value | None:
    row = table.row_of.get(rid)
    if row is None:
        return ABSENT
    vec = table.matrix[row].copy() if table.has_vector(row) else None
    return Value(vec, table.texts[row], table.metas[row])


def _same(a: Value | None, b: Value | None) -> bool:
    if a is None or b is None:
        return a is b
    if (a.row is None) != (b.row is None) or a.text != b.text or a.meta != b.meta:
        return False
    return a.row is None or bool(np.array_equal(a.row, b.row))


def _event(cp: Checkpoint | None, dim: int, changes: dict[str, Value | None]) -> events.Event:
    key = lambda s: s.encode("utf-8")  # noqa: E731
    ids = sorted(changes, key=key)
    deletes = [i for i in ids if changes[i] is ABSENT]
    vec = [i for i in ids if changes[i] is not ABSENT and changes[i].row is not None]  # type: ignore[union-attr]
    plain = [i for i in ids if changes[i] is not ABSENT and changes[i].row is None]  # type: ignore[union-attr]
    rows = np.stack([changes[i].row for i in vec]) if vec else np.zeros((0, dim), dtype=np.int32)  # type: ignore[union-attr]
    up = events.Upsert(vec, rows.astype(np.int32), [changes[i].text for i in vec],  # type: ignore[union-attr]
                       [changes[i].meta for i in vec])  # type: ignore[union-attr]
    pl = events.Plain(plain, [changes[i].text for i in plain], [changes[i].meta for i in plain])  # type: ignore[union-attr]
    if cp is None:
        return events.Write(deletes, up, pl)
    return events.Restore(cp.seq, bytes.fromhex(cp.state_hash), deletes, up, pl)


def restore_event(live: Live, cp: Checkpoint) -> tuple[events.Restore, events.Write]:
    """(the restore event turning the live state into ``cp``'s, its inverse)."""
    table = live.table
    wanted: set[str] = set()
    for touch in _touches(live, cp.seq + 1):
        wanted.update(touch.deleted)
        wanted.update(touch.written)
    base = None
    if live.root is not None:
        base = next((m for m in reversed(page_store.manifests(live.root)) if m.seq <= cp.seq), None)
    target: dict[str, Value | None] = {}
    if wanted:
        for touch in _touches(live, (base.seq + 1) if base is not None else 1, cp.seq):
            for rid in wanted.intersection(touch.deleted):
                target[rid] = ABSENT
            for rid, value in touch.values(wanted).items():
                target[rid] = Value(*value)
        for rid in sorted(wanted - target.keys()):
            target[rid] = _from_image(live, base, rid)
    changes = {rid: v for rid, v in target.items() if not _same(v, _current(table, rid))}
    undo = {rid: _current(table, rid) for rid in changes}
    restore = _event(cp, table.dim, changes)
    inverse = _event(None, table.dim, undo)
    assert isinstance(restore, events.Restore) and isinstance(inverse, events.Write)
    return restore, inverse


def _from_image(live: Live, base: object, rid: str) -> Value | None:
    if base is None or live.root is None:
        return ABSENT
    found = page_store.find_record(live.root, base, key_of(rid), live.table.dim)  # type: ignore[arg-type]
    if found is None:
        return ABSENT
    entry, row = found
    ids, texts, metas = unpack(entry, np.array([0, len(entry)], dtype=np.int64), "image page")
    if ids != [rid]:
        return ABSENT  # a foreign page: the root check after applying catches it
    return Value(row, texts[0], metas[0])
