"""A durable store directory: lock, event log, checkpoint images, and recovery.

Layout::

    <dir>/LOCK                exclusive flock held by the one writer
    <dir>/events.vlog         the append-only event log (never truncated except a torn tail)
    <dir>/images/<seq>.vimg   one checkpoint image per checkpoint

Recovery: every log frame is checked (CRC, sequence number, hash chain); then the newest
image whose position and chain hash match the log is loaded and the events after it are
applied. A torn final frame is cut off with a TornTailWarning stating how many bytes were
dropped (and images of checkpoints it removed are deleted); damage before the tail raises
CorruptFileError.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from valori_store.errors import CorruptFileError, InputError, LockedError, NotFoundError
from valori_store.format import events, images
from valori_store.records import Checkpoint
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import (
    FILE_HEADER,
    FILE_HEADER_SIZE,
    GENESIS,
    FileLog,
    Frame,
    ScanResult,
    check_file_header,
    encode_frame,
)
from valori_store.storage.filelog import scan as scan_frames

LOG_NAME = "events.vlog"
LOCK_NAME = "LOCK"
IMAGES = "images"


class RecoveryWarning(UserWarning):
    """Recovery worked around a problem (a skipped image, a failed image write...)."""


class TornTailWarning(RecoveryWarning):
    """A torn final log record was cut off during recovery."""


@dataclass
class Recovered:
    """The state a directory recovered to."""

    table: RecordTable
    metric: str
    log: FileLog
    checkpoints: list[Checkpoint]
    lock_fd: int
    dropped_bytes: int
    notes: list[tuple[int, events.Note]] = field(default_factory=list)


def image_path(root: Path, seq: int) -> Path:
    return root / IMAGES / f"{seq:012d}.vimg"


def acquire_lock(root: Path) -> int:
    """Take the directory's exclusive lock or raise LockedError."""
    fd = os.open(root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockedError(
            f"{root} is open for writing by another ValoriStore (in this or another process); "
            f"close it first, or load a snapshot read-only with ValoriStore.load"
        ) from None
    return fd


def release_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def exists(root: Path) -> bool:
    """True if ``root`` holds a store log (created atomically, so complete or absent)."""
    return (root / LOG_NAME).is_file()


def create(root: Path, dim: int, metric: str, durability: str) -> Recovered:
    """Initialise a new store directory; its log (header + create event) appears atomically."""
    root.mkdir(parents=True, exist_ok=True)
    (root / IMAGES).mkdir(exist_ok=True)
    fd = acquire_lock(root)
    fh: BinaryIO | None = None
    try:
        if exists(root):
            raise CorruptFileError(f"{root} already holds a store")
        frame, chain = encode_frame(0, events.CREATE, events.encode(events.Create(dim, metric)), GENESIS)
        write_atomic(root / LOG_NAME, FILE_HEADER + frame)
        fh = open(root / LOG_NAME, "r+b")
        log = FileLog(fh, FILE_HEADER_SIZE + len(frame), chain, 1, durability)
        return Recovered(RecordTable(dim), metric, log, [], fd, 0)
    except BaseException:
        if fh is not None:
            fh.close()
        release_lock(fd)
        raise


def _usable_image(root: Path, frames: list[Frame]) -> images.Image | None:
    """The newest image that verifies and whose position and chain hash match the log.

    An image that fails its digest is skipped with a RecoveryWarning. An image that does
    not match the log (e.g. written before a torn tail was cut off) is skipped silently:
    it describes a state the log no longer leads to.
    """
    folder = root / IMAGES
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.vimg"), reverse=True):
        try:
            img = images.decode(path.read_bytes(), str(path))
        except CorruptFileError as exc:
            warnings.warn(f"skipping unusable checkpoint image: {exc}", RecoveryWarning, stacklevel=4)
            continue
        if img.seq < len(frames) and frames[img.seq].end == img.log_end and frames[img.seq].chain == img.chain:
            return img
    return None


def _remove_stale_images(root: Path, log_end: int) -> None:
    """Delete images of checkpoints that a torn-tail cut removed from the log."""
    for path in (root / IMAGES).glob("*.vimg"):
        try:
            img = images.decode(path.read_bytes(), str(path))
        except CorruptFileError:
            continue
        if img.log_end > log_end:
            path.unlink()


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


@dataclass
class HeadState:
    """The state after the last valid frame, rebuilt from the newest usable image + tail."""

    table: RecordTable
    checkpoints: list[Checkpoint]
    notes: list[tuple[int, events.Note]]
    image_seq: int | None


def rebuild(root: Path, frames: list[Frame], dim: int, what: str) -> HeadState:
    """Head state from checked ``frames``: the newest image consistent with them, then the
    events after it (checkpoints and notes are collected from every frame)."""
    img = _usable_image(root, frames)
    if img is None:
        table, first = RecordTable(dim), 1
    else:
        table, first = img.table, img.seq + 1
    cps: list[Checkpoint] = []
    notes: list[tuple[int, events.Note]] = []
    for frame in frames[1:]:
        if frame.kind == events.CREATE:
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        if frame.seq < first and frame.kind not in (events.CHECKPOINT, events.NOTE):
            continue
        ev = events.decode(frame.kind, frame.payload, dim, what, frame.offset)
        if frame.seq >= first:
            machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            notes.append((frame.seq, ev))
    return HeadState(table, cps, notes, None if img is None else img.seq)


def recover(root: Path, durability: str, dim: int | None = None, metric: str | None = None) -> Recovered:
    """Open an existing directory (see module docstring).

    Every frame of the log is checked (CRC, sequence, hash chain) before anything is
    trusted; the state is then the newest image consistent with the log plus the events
    after it. ``dim``/``metric``, when given, must match the store (InputError before any
    repair is made).
    """
    if not exists(root):
        raise NotFoundError(f"no valori store at {root} (no {LOG_NAME}); pass dim= to create one")
    fd = acquire_lock(root)
    fh: BinaryIO | None = None
    try:
        log_path = root / LOG_NAME
        what = str(log_path)
        fh = open(log_path, "r+b")
        data = fh.read()
        scan, shape = check_log(data, what)
        if (dim is not None and dim != shape.dim) or (metric is not None and metric != shape.metric):
            raise InputError(
                f"{root} holds a store with dim={shape.dim}, metric={shape.metric!r}; "
                f"you asked for dim={dim}, metric={metric!r}"
            )
        head = rebuild(root, scan.frames, shape.dim, what)
        del data
        scan.frames = []
        dropped = scan.torn_bytes
        if dropped:
            warnings.warn(
                f"{log_path}: cut off {dropped} bytes at offset {scan.good_end} ({scan.torn_reason}); "
                f"the store recovered to event {scan.next_seq - 1}",
                TornTailWarning,
                stacklevel=3,
            )
            fh.truncate(scan.good_end)
            fh.flush()
            os.fsync(fh.fileno())
            _remove_stale_images(root, scan.good_end)
        log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability)
        return Recovered(head.table, shape.metric, log, head.checkpoints, fd, dropped, head.notes)
    except BaseException:
        if fh is not None:
            fh.close()
        release_lock(fd)
        raise


def write_image(root: Path, seq: int, log: FileLog, checkpoints: list[Checkpoint], snap: bytes) -> None:
    """Write the image of checkpoint ``seq`` atomically (log synced first)."""
    log.sync()
    write_atomic(image_path(root, seq), images.encode(seq, log.end, log.chain, checkpoints, snap))


def load_image(root: Path, seq: int) -> images.Image | None:
    """The image of checkpoint ``seq`` if present and valid, else None."""
    path = image_path(root, seq)
    try:
        return images.decode(path.read_bytes(), str(path))
    except (OSError, CorruptFileError):
        return None
