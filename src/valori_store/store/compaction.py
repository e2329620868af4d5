"""Compaction: fold the history before a checkpoint into a base image (spec-2 directories).

``compact(before=c)`` replaces the log's events up to checkpoint ``c`` (seq ``S``) with one
*base* event numbered ``S`` that records the store's shape, the hash chain and state root
at ``S``, and the checkpoint and note events of the folded history (so ``history()`` and
sessions still list them). The state at ``S`` is kept as a version-2 image (its pages are
shared with the other images). Every event after ``S`` keeps its bytes, its seq and its
chain hash, so the chain stays verifiable from the base; checkpoints before ``S`` are listed
but cannot be restored, and receipts taken before ``S`` verify as state-unavailable.

Steps, each leaving a store that opens (the old one until step 4, the new one after):

1. ``state``: the state at ``S`` (from the newest image at or before it plus the log),
   checked against ``c``'s recorded root.
2. ``image``: its pages and the base manifest (``images/<S>``, positioned for the new log;
   the old log does not match it, so recovery of the old store skips it).
3. ``log``: the new log written beside the old (``.events.vlog.compact``) and fsynced: a
   version-2 file header, the base frame, then the old log's bytes after event ``S``.
4. ``replace``: renamed over ``events.vlog`` and the directory fsynced: the commit point.
5. ``manifests``: the images after ``S`` rewritten with their new log offsets (until then
   recovery skips them and replays from the base).
6. ``prune``: images before ``S`` and pages no image names are deleted.

The store's write lock is held throughout (readers of this process wait too).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from valori_store.errors import CorruptFileError, InputError
from valori_store.format import events, images
from valori_store.format.frames import (
    FILE_HEADER_COMPACTED,
    FILE_HEADER_SIZE,
    encode_base_frame,
)
from valori_store.storage import faults, layout, page_store
from valori_store.storage.atomic import fsync_dir, write_atomic
from valori_store.storage.filelog import FileLog
from valori_store.storage.lock import release_lock
from valori_store.store import checkpoints
from valori_store.store.live import Live

STEPS = ("state", "image", "log", "replace", "manifests", "prune")
#: Called with each step's name right after it completes (tests kill the process there).
crash_hook: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Compaction:
    """What :meth:`ValoriStore.compact` did; byte counts are the log file's."""

    base_seq: int
    previous_base_seq: int
    replaced_events: int
    kept_checkpoints_and_notes: int
    log_bytes_before: int
    log_bytes_after: int

    @property
    def changed(self) -> bool:
        return self.base_seq != self.previous_base_seq


def _step(name: str) -> None:
    if crash_hook is not None:
        crash_hook(name)


def _folded(live: Live, seq: int) -> list[tuple[int, int, bytes]]:
    """The checkpoint and note events up to ``seq`` (a current base's folded ones first)."""
    log = live.log
    out: list[tuple[int, int, bytes]] = []
    first = log.first_seq
    for frame in log.frames(first, seq):
        if frame.kind == events.BASE:
            ev = events.decode(frame.kind, frame.payload, live.table.dim, "event log", frame.offset)
            assert isinstance(ev, events.Base)
            out.extend(ev.folded)
        elif frame.kind in (events.CHECKPOINT, events.NOTE):
            out.append((frame.seq, frame.kind, bytes(frame.payload)))
    return out


def _copy_range(src: int, dst: int, offset: int, count: int, dst_offset: int) -> None:
    """Copy ``count`` bytes of fd ``src`` at ``offset`` to fd ``dst`` at ``dst_offset``."""
    done = 0
    while done < count:
        n = min(count - done, 1 << 30)
        try:
            copied = faults.copy_file_range(src, dst, n, offset + done, dst_offset + done, "the compacted log")
        except (AttributeError, OSError):
            chunk = os.pread(src, n, offset + done)
            if chunk:
                faults.pwrite_all(dst, [chunk], dst_offset + done, "the compacted log")
            copied = len(chunk)
        if copied <= 0:
            raise faults.storage_error(OSError(f"compaction could not copy the log ({count - done} bytes left)"),
                                       "writing the compacted log")
        done += copied


def compact(live: Live, before: Any) -> Compaction:
    """Fold the history up to checkpoint ``before`` (a Checkpoint, label or seq) into a base."""
    with live.lock.write():
        live.check_writable()
        if not live.durable or live.root is None:
            raise InputError("compact() applies to store directories: an in-memory store keeps no history on disk")
        if live.table.spec < 2:
            raise InputError("this store was written by valori-store 0.1 (state spec 1); run valori-store migrate "
                             "on it before compacting")
        cp = checkpoints.resolve(live, before)
        root, old = live.root, live.log
        if cp.seq == old.first_seq:
            return Compaction(cp.seq, cp.seq, 0, 0, old.end, old.end)
        old.sync()
        table = checkpoints.state_at(live, cp.seq, bytes.fromhex(cp.state_hash))
        if table.state_hash() != cp.state_hash:
            raise CorruptFileError(f"the log does not lead to checkpoint {cp.seq}'s recorded state; run "
                                   f"valori_store.verify on {root}")
        _step("state")
        at = next(old.frames(cp.seq, cp.seq))
        folded = _folded(live, cp.seq)
        base = events.Base(table.dim, table.metric.name, table.spec, at.chain, table.state_digest(), folded)
        frame = encode_base_frame(cp.seq, events.encode(base), at.chain)
        base_end = FILE_HEADER_SIZE + len(frame)
        shift = at.end - base_end  # every later frame moves by this many bytes
        page_store.write_image(root, table, cp.seq, base_end, at.chain)
        del table
        _step("image")
        tmp = layout.compact_temp_path(root)
        new_end = _write_log(tmp, frame, old, at.end)
        _step("log")
        starts = [FILE_HEADER_SIZE] + [s - shift for s in old.starts[cp.seq + 1 - old.first_seq :]]
        try:
            fh = open(tmp, "r+b")  # noqa: SIM115 - the live log's file, closed with the store
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        try:
            faults.replace(tmp, layout.log_path(root))
            fsync_dir(root)
        except BaseException:
            # the rename may or may not have happened: the old log object must not take writes
            # that could land in an unlinked file; the store closes (reopening finds either log)
            fh.close()
            try:
                old.close()
            finally:
                if live.lock_fd is not None:
                    release_lock(live.lock_fd)
                    live.lock_fd = None
                live.closed = True
            raise
        _step("replace")
        live.log = FileLog(fh, new_end, old.chain, old.next_seq, old.durability, starts=starts, first_seq=cp.seq)
        old.close()
        live.image_end = max(live.image_end - shift, base_end)
        _shift_manifests(root, cp.seq, shift, old.end)
        _step("manifests")
        page_store.prune(root, cp.seq)
        _step("prune")
        previous = old.first_seq
        return Compaction(cp.seq, previous, cp.seq - previous + 1, len(folded), old.end, new_end)


def _write_log(tmp: Any, frame: bytes, old: FileLog, tail_at: int) -> int:
    """Write the compacted log to ``tmp`` (fsynced); returns its length."""
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        head = FILE_HEADER_COMPACTED + frame
        faults.pwrite_all(fd, [head], 0, str(tmp))
        _copy_range(old.fh.fileno(), fd, tail_at, old.end - tail_at, len(head))
        faults.fsync(fd, str(tmp))
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    return len(head) + old.end - tail_at


def _shift_manifests(root: Any, base_seq: int, shift: int, old_end: int) -> None:
    """Rewrite the images after the base with their offsets in the new log."""
    for m in page_store.manifests(root):
        if m.seq > base_seq and m.log_end <= old_end:
            write_atomic(layout.image_path(root, m.seq), images.encode_manifest(replace(m, log_end=m.log_end - shift)))
