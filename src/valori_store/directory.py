"""A durable store directory: lock, event log, checkpoint images, and recovery.

Layout::

    <dir>/LOCK                exclusive flock held by the one writer
    <dir>/events.vlog         the append-only event log (never truncated except a torn tail)
    <dir>/images/<seq>.vimg   one checkpoint image per checkpoint

Recovery: the newest image that verifies, then the log frames after it. A torn final
frame is cut off with a warning stating how many bytes were dropped; damage before the
tail raises CorruptFileError.
"""

from __future__ import annotations

import fcntl
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import events, images, machine
from .atomic import fsync_dir, write_atomic
from .errors import CorruptFileError, LockedError, NotFoundError
from .eventlog import FILE_HEADER, FILE_HEADER_SIZE, GENESIS, FileLog, Frame, ScanResult, check_file_header, iter_frames
from .records import Checkpoint
from .table import RecordTable

LOG_NAME = "events.vlog"
LOCK_NAME = "LOCK"
IMAGES = "images"


class TornTailWarning(UserWarning):
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
    return (root / LOG_NAME).exists()


def create(root: Path, dim: int, metric: str, durability: str) -> Recovered:
    """Initialise a new store directory with a log holding its create event."""
    root.mkdir(parents=True, exist_ok=True)
    (root / IMAGES).mkdir(exist_ok=True)
    fd = acquire_lock(root)
    try:
        if exists(root):
            raise CorruptFileError(f"{root} already holds a store")
        write_atomic(root / LOG_NAME, FILE_HEADER)
        fh: BinaryIO = open(root / LOG_NAME, "r+b")
        log = FileLog(fh, FILE_HEADER_SIZE, GENESIS, 0, "fsync")
        log.append(events.CREATE, events.encode(events.Create(dim, metric)))
        log.durability = durability
        fsync_dir(root)
        return Recovered(RecordTable(dim), metric, log, [], fd, 0)
    except BaseException:
        release_lock(fd)
        raise


def _newest_image(root: Path, log_size: int) -> images.Image | None:
    """The newest image that verifies and lies inside the log; skips bad ones with a warning."""
    folder = root / IMAGES
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.vimg"), reverse=True):
        try:
            img = images.decode(path.read_bytes(), str(path))
        except CorruptFileError as exc:
            warnings.warn(f"skipping unusable checkpoint image: {exc}", TornTailWarning, stacklevel=4)
            continue
        if img.log_end <= log_size:
            return img
    return None


def recover(root: Path, durability: str) -> Recovered:
    """Open an existing directory: newest valid image + log tail (see module docstring)."""
    if not exists(root):
        raise NotFoundError(f"no valori store at {root} (no {LOG_NAME}); pass dim= to create one")
    fd = acquire_lock(root)
    try:
        log_path = root / LOG_NAME
        fh: BinaryIO = open(log_path, "r+b")
        size = os.fstat(fh.fileno()).st_size
        head = fh.read(FILE_HEADER_SIZE)
        check_file_header(head, str(log_path))
        img = _newest_image(root, size)
        if img is None:
            full = machine.replay(_read(fh, 0), str(log_path))
            table, metric, cps = full.table, full.metric, list(full.checkpoints)
            scan = full.scan
            assert scan is not None
        else:
            table, metric, cps = img.table, img.metric, list(img.checkpoints)
            scan = _apply_tail(fh, img, table, cps, str(log_path))
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
        log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability)
        return Recovered(table, metric, log, cps, fd, dropped)
    except BaseException:
        release_lock(fd)
        raise


def _read(fh: BinaryIO, offset: int) -> bytes:
    fh.seek(offset)
    return fh.read()


def _apply_tail(fh: BinaryIO, img: images.Image, table: RecordTable, cps: list[Checkpoint], what: str) -> ScanResult:
    tail = _read(fh, img.log_end)
    dim = table.dim
    for item in iter_frames(tail, what, start=0, prev_chain=img.chain, first_seq=img.seq + 1, base=img.log_end):
        if isinstance(item, ScanResult):
            return item
        frame: Frame = item
        ev = events.decode(frame.kind, frame.payload, dim, what, frame.offset)
        if isinstance(ev, events.Create):
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
    raise AssertionError("unreachable")


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
