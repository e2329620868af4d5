"""What recovering a store directory gives: the head state, its history and the log
(:class:`Recovered`), a log as read from disk (:class:`LogView`), and the small steps both
recovery paths share (the store's shape from its first event, cutting a torn tail)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from valori_store.errors import NotFoundError
from valori_store.format import events
from valori_store.format.frames import DAMAGED_FINAL, Frame, ScanResult
from valori_store.records import Checkpoint
from valori_store.state.table import RecordTable
from valori_store.storage.filelog import FileLog
from valori_store.storage.image_files import RecoveryWarning, remove_stale_images

__all__ = ["LogView", "Recovered", "TornTailWarning", "cut_torn_tail", "shape_of"]


class TornTailWarning(RecoveryWarning):
    """A torn final log record was cut off during recovery."""


@dataclass
class LogView:
    """A store log as read from disk (never modified). ``frames`` are the valid frames;
    bytes after ``good_end`` (``torn_bytes`` of them) are a torn or in-progress record."""

    path: Path
    data: bytes
    frames: list[Frame]
    good_end: int
    torn_bytes: int
    torn_reason: str | None
    chain: bytes
    dim: int
    metric: str
    spec: int = 2

    @property
    def base_seq(self) -> int:
        """Seq of the first frame: 0, or the base event of a compacted log."""
        return self.frames[0].seq if self.frames else 0

    def frame(self, seq: int) -> Frame:
        """The frame of event ``seq`` (NotFoundError before a compacted log's base or past the end)."""
        i = seq - self.base_seq
        if not 0 <= i < len(self.frames):
            before = seq < self.base_seq
            raise NotFoundError(f"{self.path}: no event {seq}" + (
                f" (events before {self.base_seq} were compacted away)" if before else ""))
        return self.frames[i]

    @property
    def shape(self) -> events.Create:
        return events.Create(self.dim, self.metric, self.spec)

    @property
    def events(self) -> int:
        """Number of events in the history (the next seq; a compacted log's folded ones count)."""
        return self.base_seq + len(self.frames)

    @property
    def damaged_final(self) -> bool:
        """The torn tail is a complete final frame that fails its checks (not a short write)."""
        return bool(self.torn_bytes) and (self.torn_reason or "").startswith(DAMAGED_FINAL)

    def counts(self) -> dict[str, int]:
        """Events per kind name (from frame headers alone)."""
        out: dict[str, int] = {}
        for f in self.frames:
            name = events.NAMES.get(f.kind, f"kind-{f.kind}")
            out[name] = out.get(name, 0) + 1
        return out

    def decode(self, frame: Frame) -> events.Event:
        return events.decode(frame.kind, frame.payload, self.dim, str(self.path), frame.offset)


@dataclass
class Recovered:
    """The head state a directory recovered to.

    ``log`` is the writable log (None when rebuilt read-only); ``view`` the log as read from
    disk (read-only recovery only); ``lock_fd`` the directory lock (writers only).
    """

    table: RecordTable
    checkpoints: list[Checkpoint]
    notes: list[tuple[int, events.Note]]
    image_seq: int | None = None  # the image the state started from (None: replayed from empty)
    log: FileLog | None = None
    lock_fd: int | None = None
    dropped_bytes: int = 0
    view: LogView | None = None
    warnings: list[str] = field(default_factory=list)
    #: Seq of the log's first frame (0, or a compacted log's base event).
    base_seq: int = 0

    @property
    def metric(self) -> str:
        return self.table.metric.name


def shape_of(kind: int, payload: Any, what: str, offset: int) -> events.Create:
    """The store's shape from its first event (create, or a compacted log's base)."""
    ev = events.decode(kind, payload, 0, what, offset)
    if isinstance(ev, events.Base):
        return events.Create(ev.dim, ev.metric, ev.spec)
    assert isinstance(ev, events.Create)
    return ev


def cut_torn_tail(root: Path, fh: BinaryIO, what: str, scan: ScanResult) -> None:
    warnings.warn(
        f"{what}: cut off {scan.torn_bytes} bytes at offset {scan.good_end} ({scan.torn_reason}); "
        f"the store recovered to event {scan.next_seq - 1}",
        TornTailWarning,
        stacklevel=4,
    )
    fh.truncate(scan.good_end)
    fh.flush()
    os.fsync(fh.fileno())
    remove_stale_images(root, scan.good_end)
