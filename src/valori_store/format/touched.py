"""Which records an event touches, read without decoding the whole event.

Restore (``store/undo.py``) needs, for every write event in a stretch of the log, only the
ids it writes or deletes, and the value of the few ids it is looking for. Decoding each event
in full (every text, every metadata blob checked for canonical JSON, every vector copied)
costs in proportion to the log; this walks the payload's length fields in one compiled
pass, decodes the ids in bulk and leaves each value where it is until asked for.

Payload layouts (docs/format.md, events): an upsert is ``u32 count``, ``count`` record
entries, then ``count * dim`` little-endian ``i32``; a delete is ``u32 count`` and that many
``u32 len || id``; a write is a delete's ids then an upsert (then, for the ``_PLAIN`` kinds, a
second record section without vectors); a restore is ``u64 target || digest`` then a write.
Nothing is validated beyond what the walk needs: a caller applies what it takes from here
and checks the resulting state root.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numba import njit

from valori_store.errors import CorruptFileError
from valori_store.format import events
from valori_store.format.records_block import _column, entry_fields, u32_le
from valori_store.format.snapshot import DIGEST_SIZE
from valori_store.kernels.options import SERIAL

__all__ = ["Touch", "touched"]

WRITE_KINDS = (events.UPSERT, events.DELETE, events.WRITE, events.WRITE_PLAIN, events.RESTORE,
               events.RESTORE_PLAIN)


@njit(**SERIAL)
def _walk_entries(data: np.ndarray, pos: int, count: int, out: np.ndarray) -> int:
    """Fields of ``count`` record entries from ``pos`` into ``out`` (count, 6): id start,
    id length, text start, text length or -1, metadata start, its length. Returns the end
    position, or -1 when a length runs past the data."""
    size = data.shape[0]
    for i in range(count):
        pos = entry_fields(data, pos, size, out, i)
        if pos < 0:
            return -1
    return pos


@njit(**SERIAL)
def _walk_ids(data: np.ndarray, pos: int, count: int, out: np.ndarray) -> int:
    """Starts and lengths of ``count`` ``u32 len || id`` fields into ``out`` (count, 2)."""
    size = data.shape[0]
    for i in range(count):
        if pos + 4 > size:
            return -1
        n = u32_le(data, pos)
        out[i, 0], out[i, 1] = pos + 4, n
        pos += 4 + n
        if pos > size:
            return -1
    return pos


def _ids(data: memoryview, u8: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
         fail: Callable[[], CorruptFileError]) -> list[str]:
    try:
        joined = _column(u8, starts, lengths)
        ids = joined.decode("utf-8").split("\x00") if joined is not None else []
        if len(ids) != len(starts):
            ids = [bytes(data[a : a + b]).decode("utf-8") for a, b in zip(starts.tolist(), lengths.tolist())]
    except UnicodeDecodeError:
        raise fail() from None
    return ids


@dataclass(frozen=True)
class _Section:
    """A record section: ``fields`` (n, 6) as in :func:`_walk_entries`; ``rows_at`` the offset
    of its vector block, or -1 for records without vectors."""

    fields: np.ndarray
    rows_at: int


class Touch:
    """The ids one event deletes (``deleted``) and writes (``written``), and written records'
    values on demand (:meth:`values`). Effects apply in this order: deletes, then records with
    vectors, then records without. The payload is not copied: take values while the frame it
    came from is current."""

    def __init__(self, data: memoryview, dim: int, deleted: list[str], sections: list[tuple[list[str], _Section]]):
        self._data = data
        self._dim = dim
        self.deleted = deleted
        self._sections = sections

    @property
    def written(self) -> list[str]:
        return [rid for ids, _ in self._sections for rid in ids]

    def values(self, wanted: set[str]) -> dict[str, tuple[np.ndarray | None, str | None, bytes]]:
        """(row or None, text, metadata bytes), copied, of each record in ``wanted`` this event writes."""
        out: dict[str, tuple[np.ndarray | None, str | None, bytes]] = {}
        for ids, section in self._sections:
            for k in [k for k, rid in enumerate(ids) if rid in wanted]:
                out[ids[k]] = self._value(section, k)
        return out

    def _value(self, section: _Section, k: int) -> tuple[np.ndarray | None, str | None, bytes]:
        f = section.fields[k].tolist()
        data = self._data
        try:
            text = None if f[3] < 0 else bytes(data[f[2] : f[2] + f[3]]).decode("utf-8")
        except UnicodeDecodeError:
            raise CorruptFileError("an event holds a text that is not UTF-8") from None
        meta = bytes(data[f[4] : f[4] + f[5]])
        if section.rows_at < 0:
            return None, text, meta
        at = section.rows_at + k * self._dim * 4
        row = np.frombuffer(data, dtype="<i4", count=self._dim, offset=at).astype(np.int32)
        return row, text, meta


def touched(kind: int, payload: bytes | memoryview, dim: int, what: str, offset: int) -> Touch | None:
    """The records a write event touches (None for events that touch none)."""
    if kind not in WRITE_KINDS:
        return None
    data = memoryview(payload).cast("B")
    u8 = np.frombuffer(data, dtype=np.uint8)
    pos = 0

    def fail() -> CorruptFileError:
        return CorruptFileError(f"{what}: event at offset {offset}: a length runs past its payload")

    def count_at(p: int, min_size: int) -> int:
        """The u32 count at ``p`` of entries of at least ``min_size`` bytes (checked against
        what remains, so a damaged count never sizes an allocation)."""
        if p + 4 > len(data):
            raise fail()
        n = int.from_bytes(data[p : p + 4], "little")
        if n * min_size > len(data) - p - 4:
            raise fail()
        return n

    deleted: list[str] = []
    if kind in (events.RESTORE, events.RESTORE_PLAIN):
        pos = 8 + DIGEST_SIZE
    if kind != events.UPSERT:
        n = count_at(pos, 4)
        f = np.empty((n, 2), dtype=np.int64)
        pos = _walk_ids(u8, pos + 4, n, f)
        if pos < 0:
            raise fail()
        deleted = _ids(data, u8, f[:, 0], f[:, 1], fail)
    sections: list[tuple[list[str], _Section]] = []
    if kind != events.DELETE:
        for with_rows in (True, False):
            if not with_rows and kind not in (events.WRITE_PLAIN, events.RESTORE_PLAIN):
                break
            n = count_at(pos, 12)
            f = np.empty((n, 6), dtype=np.int64)
            pos = _walk_entries(u8, pos + 4, n, f)
            if pos < 0:
                raise fail()
            rows_at = pos if with_rows else -1
            if with_rows:
                pos += n * dim * 4
                if pos > len(data):
                    raise fail()
            sections.append((_ids(data, u8, f[:, 0], f[:, 1], fail), _Section(f, rows_at)))
    return Touch(data, dim, deleted, sections)
