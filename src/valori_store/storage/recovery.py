"""Opening a store directory: create, recover for writing, or rebuild read-only.

Recovery of a spec-1 store (valori-store 0.1): every log frame is checked (CRC, sequence
number, hash chain); then the newest image whose position and chain hash match the log is
loaded and the events after it are applied. A spec-2 store opens from its newest
version-2 image whose position and chain hash match the log (each of its pages re-derived
and checked against the state root); the frames after it are checked in full and applied.
Before the image only what the open store needs is read: every frame header (CRC, sequence
number, length) and the checkpoint and note events, each checked against the chain hashes
stored in it and in the frame before it; record payloads there are not read (the image
holds their result): ``valori_store.verify`` replays and checks every byte. For writing
(:func:`recover`), a torn final frame is cut off with a
TornTailWarning stating how many bytes were dropped (and images of checkpoints it removed
are deleted); damage before the tail raises CorruptFileError. Read-only
(:func:`recover_readonly`) does the same without the lock and without changing anything:
a torn final record is only reported, since a writer may be appending it right now.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import BinaryIO

from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import events
from valori_store.format.frames import (
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
from valori_store.storage import page_store
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog
from valori_store.storage.image_files import RecoveryWarning, usable_image
from valori_store.storage.image_recovery import ImageDisagrees, check_root, fast_recover
from valori_store.storage.layout import compact_temp_path, exists, images_dir, log_path
from valori_store.storage.lock import acquire_lock, release_lock
from valori_store.storage.recovered import LogView, Recovered, TornTailWarning, cut_torn_tail, shape_of

__all__ = ["LogView", "Recovered", "RecoveryWarning", "TornTailWarning", "check_log", "create", "read_log",
           "recover", "recover_readonly"]


def check_log(data: bytes, what: str) -> tuple[ScanResult, events.Create]:
    """Check a whole log (header, every frame's CRC, sequence and chain; a create event
    first): the scan result and the store's shape. CorruptFileError on damage before the
    tail; a torn tail is reported in the scan, not raised."""
    check_file_header(data, what)
    scan = scan_frames(data, what)
    frames = scan.frames
    if not frames or frames[0].kind not in (events.CREATE, events.BASE):
        raise CorruptFileError(f"{what}: the log does not start with a create event")
    return scan, shape_of(frames[0].kind, frames[0].payload, what, frames[0].offset)


def rebuild(root: Path, frames: list[Frame], shape: events.Create, what: str) -> Recovered:
    """Head state from checked ``frames``: the newest image consistent with them, then the
    events after it (checkpoints and notes are collected from every frame). An image whose
    root is not the one the log records (at its own checkpoint or base, or at a later
    checkpoint once the frames after it are applied) is skipped with a RecoveryWarning."""
    skip: set[int] = set()
    while True:
        try:
            return _rebuild(root, frames, shape, what, skip)
        except ImageDisagrees as exc:
            warnings.warn(f"skipping unusable image: {exc}", RecoveryWarning, stacklevel=3)
            skip.add(exc.seq)


def _rebuild(root: Path, frames: list[Frame], shape: events.Create, what: str, skip: set[int]) -> Recovered:
    table, first, manifest = None, 1, None
    base_seq = frames[0].seq if frames else 0
    if shape.spec >= 2:
        damaged: list[str] = []
        found = page_store.manifests(root, damaged)
        if not skip:
            for problem in damaged:
                warnings.warn(f"skipping unusable image: {problem}", RecoveryWarning, stacklevel=4)
        for candidate in reversed(found):
            i = candidate.seq - base_seq
            if candidate.seq in skip:
                continue
            if 0 <= i < len(frames) and frames[i].end == candidate.log_end and frames[i].chain == candidate.chain:
                try:
                    table, first = page_store.load_image(root, candidate, shape.metric), candidate.seq + 1
                    manifest = candidate
                    break
                except CorruptFileError as exc:
                    warnings.warn(f"skipping unusable image: {exc}", RecoveryWarning, stacklevel=4)
                    skip.add(candidate.seq)
    else:
        img = usable_image(root, frames)
        if img is not None:
            table, first = RecordTable.from_content(img.content), img.seq + 1
    cps: list[Checkpoint] = []
    notes: list[tuple[int, events.Note]] = []
    if frames and frames[0].kind == events.BASE:
        base = events.decode(events.BASE, frames[0].payload, shape.dim, what, frames[0].offset)
        assert isinstance(base, events.Base)
        cps, notes = machine.folded_history(base, what)
        if table is None:
            raise CorruptFileError(f"{what}: the log was compacted at event {base_seq} but its base image is missing "
                                   f"or damaged")
        if manifest is not None and manifest.seq == base_seq:
            check_root(table, base.root, manifest, base_seq)
    if table is None:
        table = RecordTable(shape.dim, shape.metric, shape.spec)
    for frame in frames[1:]:
        if frame.kind == events.CREATE:
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        if frame.seq < first and frame.kind not in (events.CHECKPOINT, events.NOTE):
            continue
        ev = events.decode(frame.kind, frame.payload, shape.dim, what, frame.offset)
        if frame.seq >= first:
            machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            if manifest is not None and frame.seq >= manifest.seq:
                check_root(table, ev.digest, manifest, frame.seq)
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            notes.append((frame.seq, ev))
    return Recovered(table, cps, notes, None if first == 1 else first - 1, base_seq=base_seq)


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
        log = FileLog(fh, FILE_HEADER_SIZE + len(frame), chain, 1, durability, starts=[FILE_HEADER_SIZE])
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
        compact_temp_path(root).unlink(missing_ok=True)  # an interrupted compaction's unfinished log
        path = log_path(root)
        what = str(path)
        fh = open(path, "r+b")
        fast = fast_recover(root, fh, what, durability)
        if fast is not None:
            _check_shape(root, fast.table, dim, metric)
            fast.lock_fd = fd
            return fast
        fh.seek(0)
        data = fh.read()
        scan, shape = check_log(data, what)
        if (dim is not None and dim != shape.dim) or (metric is not None and metric != shape.metric):
            raise InputError(
                f"{root} holds a store with dim={shape.dim}, metric={shape.metric!r}; "
                f"you asked for dim={dim}, metric={metric!r}"
            )
        rec = rebuild(root, scan.frames, shape, what)
        starts = [f.offset for f in scan.frames]
        del data
        scan.frames = []
        if scan.torn_bytes:
            cut_torn_tail(root, fh, str(path), scan)
        images_dir(root).mkdir(exist_ok=True)
        rec.log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability, starts=starts,
                          first_seq=rec.base_seq)
        rec.lock_fd = fd
        rec.dropped_bytes = scan.torn_bytes
        return rec
    except BaseException:
        if fh is not None:
            fh.close()
        release_lock(fd)
        raise


def _check_shape(root: Path, table: RecordTable, dim: int | None, metric: str | None) -> None:
    if (dim is not None and dim != table.dim) or (metric is not None and metric != table.metric.name):
        raise InputError(
            f"{root} holds a store with dim={table.dim}, metric={table.metric.name!r}; "
            f"you asked for dim={dim}, metric={metric!r}"
        )


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
