"""Read-only access to a durable store directory: no lock, no repair, no writes.

:func:`read_log` reads ``events.vlog`` as it is on disk and checks every frame (CRC,
sequence number, hash chain) exactly like recovery does, but a torn final record is only
*reported* (``torn_bytes``), never cut off: a writer in another process may be appending
it right now. :func:`recover` rebuilds the head state the way
:func:`valori_store.directory.recover` does (newest checkpoint image consistent with the
log, then the events after it) without taking the directory lock and without deleting or
truncating anything. :func:`open_readonly` wraps the result (or a snapshot file) in a
:class:`ReadOnlyStore`: every read and search works (receipts included, with the
directory's own log positions); any mutation raises :class:`ReadOnlyError`.

Invariant: nothing in this module opens a file for writing.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from valori_store.errors import InputError, NotFoundError, ValoriError
from valori_store.format import events, snapshot
from valori_store.records import Checkpoint
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import directory
from valori_store.storage.filelog import DAMAGED_FINAL, FILE_HEADER_SIZE, FileLog, Frame
from valori_store.store.facade import ValoriStore

__all__ = ["LogView", "ReadOnlyError", "ReadOnlyStore", "Recovered", "check_store_path", "open_readonly",
           "read_log", "recover", "state_at", "store_from"]


class ReadOnlyError(ValoriError):
    """A mutation was attempted on a store opened read-only."""


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

    @property
    def events(self) -> int:
        return len(self.frames)

    def counts(self) -> dict[str, int]:
        """Events per kind name (from frame headers alone)."""
        out: dict[str, int] = {}
        for f in self.frames:
            name = events.NAMES.get(f.kind, f"kind-{f.kind}")
            out[name] = out.get(name, 0) + 1
        return out

    def decode(self, frame: Frame) -> events.Event:
        return events.decode(frame.kind, frame.payload, self.dim, str(self.path), frame.offset)


def log_path(root: Path) -> Path:
    return root / directory.LOG_NAME


def read_log(root: str | os.PathLike[str]) -> LogView:
    """Read and check a store directory's log without locking or changing it.

    Raises NotFoundError (no store there) or CorruptFileError (damage before the tail).
    """
    root = Path(root)
    path = log_path(root)
    if not path.is_file():
        raise NotFoundError(f"no valori store at {root} (no {directory.LOG_NAME})")
    with open(path, "rb") as fh:
        data = fh.read()
    scan, shape = directory.check_log(data, str(path))
    return LogView(path, data, scan.frames, scan.good_end, scan.torn_bytes, scan.torn_reason, scan.last_chain,
                   shape.dim, shape.metric)


@dataclass
class Recovered:
    """The head state of a directory, rebuilt read-only."""

    log: LogView
    table: RecordTable
    checkpoints: list[Checkpoint]
    notes: list[tuple[int, events.Note]]
    image_seq: int | None  # the checkpoint image the state started from (None: replayed from empty)
    warnings: list[str] = field(default_factory=list)

    @property
    def metric(self) -> str:
        return self.log.metric


def recover(root: str | os.PathLike[str]) -> Recovered:
    """Rebuild the head state like recovery does, without the lock and without repairs."""
    root = Path(root)
    log = read_log(root)
    notes_out: list[str] = []
    with warnings.catch_warnings(record=True) as caught:  # image warnings become report lines
        warnings.simplefilter("always")
        head = directory.rebuild(root, log.frames, log.dim, str(log.path))
    notes_out.extend(str(w.message) for w in caught)
    if log.torn_bytes and (log.torn_reason or "").startswith(DAMAGED_FINAL):
        notes_out.append(
            f"{log.path}: the final record ({log.torn_bytes} bytes at offset {log.good_end}) is complete but fails "
            f"its checks ({log.torn_reason}): damaged, or still being written; ignored here (valori-store verify "
            f"reports it as corruption; opening the store for writing cuts it off)")
    elif log.torn_bytes:
        notes_out.append(
            f"{log.path}: {log.torn_bytes} bytes after offset {log.good_end} are a torn or in-progress record "
            f"({log.torn_reason}); ignored here, cut off when the store is next opened for writing")
    return Recovered(log, head.table, head.checkpoints, head.notes, head.image_seq, notes_out)


def state_at(root: str | os.PathLike[str], log: LogView, seq: int,
             on_event: Callable[[Frame], None] | None = None) -> tuple[RecordTable, machine.ReplayResult | None]:
    """The state right after event ``seq``: a checkpoint image holding exactly that state
    when one exists, else a replay of the log from empty up to ``seq``.

    ``on_event(frame)`` (if given) is called after each replayed event (for progress).
    Returns (table, replay result or None when an image was used).
    """
    if not 0 <= seq < log.events:
        raise NotFoundError(f"{log.path}: no event {seq} (the log holds events 0..{log.events - 1})")
    frame = log.frames[seq]
    if frame.kind == events.CHECKPOINT:
        ev = log.decode(frame)
        assert isinstance(ev, events.CheckpointMark)
        img = directory.load_image(Path(root), seq)
        if img is not None and img.log_end == frame.end and img.chain == frame.chain and (
                snapshot.state_digest(img.table, log.metric) == ev.digest):
            return img.table, None
    result = None
    for fr, _, result in machine.walk(memoryview(log.data)[: frame.end], str(log.path), check_digests=True):
        if on_event is not None:
            on_event(fr)
    assert result is not None
    return result.table, result


class ReadOnlyStore(ValoriStore):
    """A :class:`ValoriStore` whose every mutation raises :class:`ReadOnlyError`.

    Searches, receipts (bound to the source's log positions), sessions listing and
    ``state_hash`` work as on the original store.
    """

    def _commit(self, ev: events.Event, in_place: bool = False) -> int:
        raise ReadOnlyError("this store was opened read-only; open it with ValoriStore.open to change it")


def store_from(root: Path, rec: Recovered) -> ReadOnlyStore:
    """A read-only store over a recovered directory state. Its log is the directory's own
    log file opened for reading, up to the last valid frame, so receipts carry the
    directory's log positions and verify against it."""
    fh = open(rec.log.path, "rb")
    log = FileLog(fh, rec.log.good_end, rec.log.chain, rec.log.events, "none", durable=False)
    store = ReadOnlyStore.__new__(ReadOnlyStore)
    store._setup(rec.table, rec.metric, log, rec.checkpoints, root, None, rec.notes)
    return store


def open_readonly(path: str | os.PathLike[str]) -> ReadOnlyStore:
    """A read-only store over a directory (head state, no lock taken) or a snapshot file."""
    p = Path(path)
    if p.is_dir():
        return store_from(p, recover(p))
    if not p.exists():
        raise NotFoundError(f"no store directory or snapshot file at {p}")
    store_ = ReadOnlyStore.load(p)
    assert isinstance(store_, ReadOnlyStore)
    return store_


def is_log_file(path: Path) -> bool:
    """True if ``path`` is a file that starts like a store log (not a snapshot)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(FILE_HEADER_SIZE)
    except OSError:
        return False
    return head[:8] == b"VALORILG"


def check_store_path(path: Path) -> str:
    """``"directory"`` or ``"snapshot"`` for a usable path; NotFoundError / InputError otherwise."""
    if path.is_dir():
        if not log_path(path).is_file():
            raise NotFoundError(f"no valori store at {path} (a directory without {directory.LOG_NAME})")
        return "directory"
    if not path.exists():
        raise NotFoundError(f"no store directory or snapshot file at {path}")
    if is_log_file(path):
        raise InputError(f"{path} is a store's event log; pass its directory {path.parent}")
    return "snapshot"
