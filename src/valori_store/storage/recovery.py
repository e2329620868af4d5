"""Opening a store directory: create, recover for writing, or rebuild read-only.

Recovery: every log frame is checked (CRC, sequence number, hash chain); then the newest
image whose position and chain hash match the log is loaded and the events after it are
applied. For writing (:func:`recover`), a torn final frame is cut off with a
TornTailWarning stating how many bytes were dropped (and images of checkpoints it removed
are deleted); damage before the tail raises CorruptFileError. Read-only
(:func:`recover_readonly`) does the same without the lock and without changing anything:
a torn final record is only reported, since a writer may be appending it right now.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import events
from valori_store.format.frames import (
    DAMAGED_FINAL,
    FILE_HEADER,
    FILE_HEADER_SIZE,
    GENESIS,
    Frame,
    ScanResult,
    check_file_header,
    encode_frame,
)
from valori_store.format.frames import scan as scan_frames
from valori_store.records import Checkpoint
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog
from valori_store.storage.image_files import RecoveryWarning, remove_stale_images, usable_image
from valori_store.storage.layout import exists, images_dir, log_path
from valori_store.storage.lock import acquire_lock, release_lock

__all__ = ["LogView", "Recovered", "RecoveryWarning", "TornTailWarning", "check_log", "create", "read_log",
           "recover", "recover_readonly"]


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
    def shape(self) -> events.Create:
        return events.Create(self.dim, self.metric, self.spec)

    @property
    def events(self) -> int:
        return len(self.frames)

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

    @property
    def metric(self) -> str:
        return self.table.metric.name


def check_log(data: bytes, what: str) -> tuple[ScanResult, events.Create]:
    """Check a whole log (header, every frame's CRC, sequence and chain; a create event
    first): the scan result and the store's shape. CorruptFileError on damage before the
    tail; a torn tail is reported in the scan, not raised."""
    check_file_header(data, what)
    scan = scan_frames(data, what)
    frames = scan.frames
    if not frames or frames[0].kind != events.CREATE:
        raise CorruptFileError(f"{what}: the log does not start with a create event")
    shape = events.decode(events.CREATE, frames[0].payload, 0, what, frames[0].offset)
    assert isinstance(shape, events.Create)
    return scan, shape


def rebuild(root: Path, frames: list[Frame], shape: events.Create, what: str) -> Recovered:
    """Head state from checked ``frames``: the newest image consistent with them, then the
    events after it (checkpoints and notes are collected from every frame)."""
    img = usable_image(root, frames)
    if img is None:
        table, first = RecordTable(shape.dim, shape.metric, shape.spec), 1
    else:
        table, first = RecordTable.from_content(img.content), img.seq + 1
    cps: list[Checkpoint] = []
    notes: list[tuple[int, events.Note]] = []
    for frame in frames[1:]:
        if frame.kind == events.CREATE:
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        if frame.seq < first and frame.kind not in (events.CHECKPOINT, events.NOTE):
            continue
        ev = events.decode(frame.kind, frame.payload, shape.dim, what, frame.offset)
        if frame.seq >= first:
            machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            notes.append((frame.seq, ev))
    return Recovered(table, cps, notes, None if img is None else img.seq)


def create(root: Path, dim: int, metric: str, durability: str) -> Recovered:
    """Initialise a new store directory; its log (header + create event) appears atomically."""
    root.mkdir(parents=True, exist_ok=True)
    images_dir(root).mkdir(exist_ok=True)
    fd = acquire_lock(root)
    fh: BinaryIO | None = None
    try:
        if exists(root):
            raise CorruptFileError(f"{root} already holds a store")
        frame, chain = encode_frame(0, events.CREATE, events.encode(events.Create(dim, metric)), GENESIS)
        write_atomic(log_path(root), FILE_HEADER + frame)
        fh = open(log_path(root), "r+b")
        log = FileLog(fh, FILE_HEADER_SIZE + len(frame), chain, 1, durability)
        return Recovered(RecordTable(dim, metric), [], [], log=log, lock_fd=fd)
    except BaseException:
        if fh is not None:
            fh.close()
        release_lock(fd)
        raise


def recover(root: Path, durability: str, dim: int | None = None, metric: str | None = None) -> Recovered:
    """Open an existing directory for writing (see the module docstring).

    ``dim``/``metric``, when given, must match the store (InputError before any repair).
    """
    if not exists(root):
        raise NotFoundError(f"no valori store at {root} (no {log_path(root).name}); pass dim= to create one")
    fd = acquire_lock(root)
    fh: BinaryIO | None = None
    try:
        path = log_path(root)
        what = str(path)
        fh = open(path, "r+b")
        data = fh.read()
        scan, shape = check_log(data, what)
        if (dim is not None and dim != shape.dim) or (metric is not None and metric != shape.metric):
            raise InputError(
                f"{root} holds a store with dim={shape.dim}, metric={shape.metric!r}; "
                f"you asked for dim={dim}, metric={metric!r}"
            )
        rec = rebuild(root, scan.frames, shape, what)
        del data
        scan.frames = []
        if scan.torn_bytes:
            warnings.warn(
                f"{path}: cut off {scan.torn_bytes} bytes at offset {scan.good_end} ({scan.torn_reason}); "
                f"the store recovered to event {scan.next_seq - 1}",
                TornTailWarning,
                stacklevel=3,
            )
            fh.truncate(scan.good_end)
            fh.flush()
            os.fsync(fh.fileno())
            remove_stale_images(root, scan.good_end)
        images_dir(root).mkdir(exist_ok=True)
        rec.log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability)
        rec.lock_fd = fd
        rec.dropped_bytes = scan.torn_bytes
        return rec
    except BaseException:
        if fh is not None:
            fh.close()
        release_lock(fd)
        raise


def read_log(root: str | os.PathLike[str]) -> LogView:
    """Read and check a store directory's log without locking or changing it.

    Raises NotFoundError (no store there) or CorruptFileError (damage before the tail).
    """
    root = Path(root)
    path = log_path(root)
    if not path.is_file():
        raise NotFoundError(f"no valori store at {root} (no {path.name})")
    with open(path, "rb") as fh:
        data = fh.read()
    scan, shape = check_log(data, str(path))
    return LogView(path, data, scan.frames, scan.good_end, scan.torn_bytes, scan.torn_reason, scan.last_chain,
                   shape.dim, shape.metric, shape.spec)


def recover_readonly(root: str | os.PathLike[str]) -> Recovered:
    """Rebuild the head state like :func:`recover`, without the lock and without repairs.

    Image problems and a torn tail become lines in ``Recovered.warnings``.
    """
    root = Path(root)
    view = read_log(root)
    with warnings.catch_warnings(record=True) as caught:  # image warnings become report lines
        warnings.simplefilter("always")
        rec = rebuild(root, view.frames, view.shape, str(view.path))
    rec.view = view
    rec.warnings.extend(str(w.message) for w in caught)
    if view.damaged_final:
        rec.warnings.append(
            f"{view.path}: the final record ({view.torn_bytes} bytes at offset {view.good_end}) is complete but "
            f"fails its checks ({view.torn_reason}): damaged, or still being written; ignored here (valori-store "
            f"verify reports it as corruption; opening the store for writing cuts it off)")
    elif view.torn_bytes:
        rec.warnings.append(
            f"{view.path}: {view.torn_bytes} bytes after offset {view.good_end} are a torn or in-progress record "
            f"({view.torn_reason}); ignored here, cut off when the store is next opened for writing")
    return rec
