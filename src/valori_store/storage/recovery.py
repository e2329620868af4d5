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

import mmap
import os
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import events
from valori_store.format.frames import (
    BASE_CHAIN_AT,
    CHAIN_SIZE,
    CRC,
    DAMAGED_FINAL,
    FILE_HEADER,
    FILE_HEADER_SIZE,
    FRAME_HEAD,
    FRAME_MAGIC,
    GENESIS,
    OVERHEAD,
    Frame,
    ScanResult,
    chain_next,
    check_file_header,
    encode_frame,
)
from valori_store.format.frames import scan as scan_frames
from valori_store.records import Checkpoint
from valori_store.spec import METRICS
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import page_store
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog
from valori_store.storage.image_files import RecoveryWarning, remove_stale_images, usable_image
from valori_store.storage.layout import compact_temp_path, exists, images_dir, log_path
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


def shape_of(kind: int, payload: Any, what: str, offset: int) -> events.Create:
    """The store's shape from its first event (create, or a compacted log's base)."""
    ev = events.decode(kind, payload, 0, what, offset)
    if isinstance(ev, events.Base):
        return events.Create(ev.dim, ev.metric, ev.spec)
    assert isinstance(ev, events.Create)
    return ev


def rebuild(root: Path, frames: list[Frame], shape: events.Create, what: str) -> Recovered:
    """Head state from checked ``frames``: the newest image consistent with them, then the
    events after it (checkpoints and notes are collected from every frame). An image whose
    root is not the one the log records (at its own checkpoint or base, or at a later
    checkpoint once the frames after it are applied) is skipped with a RecoveryWarning."""
    skip: set[int] = set()
    while True:
        try:
            return _rebuild(root, frames, shape, what, skip)
        except _ImageDisagrees as exc:
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
            _check_root(table, base.root, manifest, base_seq)
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
                _check_root(table, ev.digest, manifest, frame.seq)
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
            _cut_torn_tail(root, fh, str(path), scan)
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


def fast_recover(root: Path, fh: BinaryIO, what: str, durability: str) -> Recovered | None:
    """Spec-2 recovery from the newest usable version-2 image (see the module docstring), or
    None when there is none (or the log is of spec 1): the caller then checks the whole log."""
    data = mmap_file(fh)
    if data is None:
        return None
    try:
        check_file_header(data, what)
        heads = header_walk(data)
        if not heads or heads[0][1] not in (events.CREATE, events.BASE):
            return None
        shape = shape_of(heads[0][1], data[heads[0][2] + 20 : heads[0][3] - 36], what, heads[0][2])
        if shape.spec < 2:
            return None
        base_seq = heads[0][0]
        ends = {end: i for i, (_, _, _, end) in enumerate(heads)}
        damaged: list[str] = []
        found = page_store.manifests(root, damaged)
        for problem in damaged:
            warnings.warn(f"skipping unusable image: {problem}", RecoveryWarning, stacklevel=4)
        for manifest in reversed(found):
            i = ends.get(manifest.log_end)
            if i != manifest.seq - base_seq or bytes(data[manifest.log_end - 36 : manifest.log_end - 4]) != manifest.chain:
                continue
            if (manifest.dim, manifest.metric_code) != (shape.dim, METRICS.index(shape.metric)):
                continue
            try:
                table = page_store.load_image(root, manifest, shape.metric)
            except CorruptFileError as exc:
                warnings.warn(f"skipping unusable image: {exc}", RecoveryWarning, stacklevel=4)
                continue
            try:
                return _from_image(root, fh, data, what, durability, shape, heads, manifest, table)
            except _ImageDisagrees as exc:  # before anything was changed: try an older image
                warnings.warn(f"skipping unusable image: {exc}", RecoveryWarning, stacklevel=4)
        return None
    finally:
        del data


class _ImageDisagrees(CorruptFileError):
    """An image whose state root is not the one the log records for its position (at the
    image's checkpoint, or at a checkpoint after it once the log's tail is applied)."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


def _check_root(table: RecordTable, expected: bytes, manifest: Any, seq: int) -> None:
    if table.state_digest() != expected:
        raise _ImageDisagrees(f"image {manifest.seq}: the state it gives at event {seq} has root "
                              f"{table.state_digest().hex()[:16]}, the log records {expected.hex()[:16]}",
                              manifest.seq)


def _checked_payload(data: memoryview, what: str, seq: int, start: int, end: int) -> memoryview:
    """The payload of the frame at ``[start, end)``, checked against the chain hashes stored
    in it and in the frame before it (so a frame is checked without reading the others)."""
    head = bytes(data[start : start + FRAME_HEAD.size])
    payload = data[start + FRAME_HEAD.size + CRC.size : end - CHAIN_SIZE - CRC.size]
    stored = bytes(data[end - CHAIN_SIZE - CRC.size : end - CRC.size])
    if head[2] == events.BASE and start == FILE_HEADER_SIZE:
        expect = bytes(payload[BASE_CHAIN_AT : BASE_CHAIN_AT + CHAIN_SIZE])
    else:
        prev = GENESIS if start == FILE_HEADER_SIZE else bytes(data[start - CHAIN_SIZE - CRC.size : start - CRC.size])
        expect = chain_next(prev, head, payload)
    if stored != expect or CRC.unpack_from(data, end - CRC.size)[0] != end - start:
        raise CorruptFileError(f"{what}: hash chain mismatch in frame {seq} at offset {start} (payload or order "
                               f"altered)")
    return payload


def _from_image(root: Path, fh: BinaryIO, data: memoryview, what: str, durability: str, shape: events.Create,
                heads: list[tuple[int, int, int, int]], manifest: Any, table: RecordTable) -> Recovered:
    cps: list[Checkpoint] = []
    notes: list[tuple[int, events.Note]] = []
    base_seq = heads[0][0]
    # history before the image: checkpoints and notes, each checked against the chain
    # hashes around it (the image holds the records those frames produced)
    for seq, kind, start, end in heads[: manifest.seq - base_seq + 1]:
        if kind == events.BASE:
            base = events.decode(kind, _checked_payload(data, what, seq, start, end), shape.dim, what, start)
            assert isinstance(base, events.Base)
            cps, notes = machine.folded_history(base, what)
        elif kind in (events.CHECKPOINT, events.NOTE):
            ev = events.decode(kind, _checked_payload(data, what, seq, start, end), shape.dim, what, start)
            if isinstance(ev, events.CheckpointMark):
                cps.append(Checkpoint(seq, ev.digest.hex(), ev.label))
            else:
                assert isinstance(ev, events.Note)
                notes.append((seq, ev))
    # the image's root must be the log's at the image's checkpoint (or base), if any
    if cps and cps[-1].seq == manifest.seq:
        _check_root(table, bytes.fromhex(cps[-1].state_hash), manifest, manifest.seq)
    elif manifest.seq == base_seq and heads[0][1] == events.BASE:
        _check_root(table, base.root, manifest, manifest.seq)
    scan = scan_frames(data[manifest.log_end :], what, start=0, prev_chain=manifest.chain,
                       first_seq=manifest.seq + 1, base=manifest.log_end)
    for frame in scan.frames:  # every byte after the image, checked in full
        if frame.kind == events.CREATE:
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        ev = events.decode(frame.kind, frame.payload, shape.dim, what, frame.offset)
        machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            _check_root(table, ev.digest, manifest, frame.seq)
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            notes.append((frame.seq, ev))
    starts = [h[2] for h in heads[: manifest.seq - base_seq + 1]] + [f.offset for f in scan.frames]
    scan.frames = []
    if scan.torn_bytes:
        _cut_torn_tail(root, fh, what, scan)
    log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability, starts=starts, first_seq=base_seq)
    return Recovered(table, cps, notes, manifest.seq, log=log, dropped_bytes=scan.torn_bytes, base_seq=base_seq)


def _cut_torn_tail(root: Path, fh: BinaryIO, what: str, scan: ScanResult) -> None:
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


def mmap_file(fh: BinaryIO) -> memoryview | None:
    """The whole file as a read-only memoryview (None for an empty file)."""
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        return None
    return memoryview(mmap.mmap(fh.fileno(), size, access=mmap.ACCESS_READ))


def header_walk(data: memoryview) -> list[tuple[int, int, int, int]]:
    """(seq, kind, start, end) of each frame whose 16-byte header passes its CRC and fits in
    the file, from the first; stops at the first that does not (payloads are not read)."""
    out: list[tuple[int, int, int, int]] = []
    pos, size = FILE_HEADER_SIZE, len(data)
    unpack, crc_at = FRAME_HEAD.unpack_from, CRC.unpack_from
    while pos + FRAME_HEAD.size + CRC.size <= size:
        head = data[pos : pos + FRAME_HEAD.size]
        if zlib.crc32(head) != crc_at(data, pos + FRAME_HEAD.size)[0]:
            break
        magic, kind, flags, length, seq = unpack(data, pos)
        end = pos + OVERHEAD + length
        expected = (out[0][0] + len(out)) if out else (seq if kind == events.BASE else 0)
        if magic != FRAME_MAGIC or flags or seq != expected or end > size:
            break
        out.append((seq, kind, pos, end))
        pos = end
    return out


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
