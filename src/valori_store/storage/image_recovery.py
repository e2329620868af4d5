"""Opening a spec-2 store directory from its newest usable image (the fast path of
:mod:`.recovery`): frame headers walked without reading payloads, checkpoint and note
events before the image checked against the chain hashes around them, the image's root
checked against the log, then the frames after it checked in full and applied."""

from __future__ import annotations

import mmap
import os
import warnings
import zlib
from pathlib import Path
from typing import Any, BinaryIO

from valori_store.errors import CorruptFileError
from valori_store.format import events
from valori_store.format.frames import (
    BASE_CHAIN_AT,
    CHAIN_SIZE,
    CRC,
    FILE_HEADER_SIZE,
    FRAME_HEAD,
    FRAME_MAGIC,
    GENESIS,
    OVERHEAD,
    chain_next,
    check_file_header,
)
from valori_store.format.frames import scan as scan_frames
from valori_store.records import Checkpoint
from valori_store.spec import METRICS
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import page_store
from valori_store.storage.filelog import FileLog
from valori_store.storage.image_files import RecoveryWarning
from valori_store.storage.recovered import Recovered, cut_torn_tail, shape_of

__all__ = ["ImageDisagrees", "check_root", "fast_recover", "header_walk", "mmap_file"]


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
            except ImageDisagrees as exc:  # before anything was changed: try an older image
                warnings.warn(f"skipping unusable image: {exc}", RecoveryWarning, stacklevel=4)
        return None
    finally:
        del data


class ImageDisagrees(CorruptFileError):
    """An image whose state root is not the one the log records for its position (at the
    image's checkpoint, or at a checkpoint after it once the log's tail is applied)."""

    def __init__(self, message: str, seq: int) -> None:
        super().__init__(message)
        self.seq = seq


def check_root(table: RecordTable, expected: bytes, manifest: Any, seq: int) -> None:
    if table.state_digest() != expected:
        raise ImageDisagrees(f"image {manifest.seq}: the state it gives at event {seq} has root "
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
        check_root(table, bytes.fromhex(cps[-1].state_hash), manifest, manifest.seq)
    elif manifest.seq == base_seq and heads[0][1] == events.BASE:
        check_root(table, base.root, manifest, manifest.seq)
    scan = scan_frames(data[manifest.log_end :], what, start=0, prev_chain=manifest.chain,
                       first_seq=manifest.seq + 1, base=manifest.log_end)
    for frame in scan.frames:  # every byte after the image, checked in full
        if frame.kind == events.CREATE:
            raise CorruptFileError(f"{what}: a second create event at offset {frame.offset}")
        ev = events.decode(frame.kind, frame.payload, shape.dim, what, frame.offset)
        machine.apply(table, ev)
        if isinstance(ev, events.CheckpointMark):
            check_root(table, ev.digest, manifest, frame.seq)
            cps.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            notes.append((frame.seq, ev))
    starts = [h[2] for h in heads[: manifest.seq - base_seq + 1]] + [f.offset for f in scan.frames]
    scan.frames = []
    if scan.torn_bytes:
        cut_torn_tail(root, fh, what, scan)
    log = FileLog(fh, scan.good_end, scan.last_chain, scan.next_seq, durability, starts=starts, first_seq=base_seq)
    return Recovered(table, cps, notes, manifest.seq, log=log, dropped_bytes=scan.torn_bytes, base_seq=base_seq)


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
