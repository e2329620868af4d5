"""The event log file appended to in place (:class:`FileLog`), and the in-memory stores'
spilled log. The byte layout is :mod:`valori_store.format.frames`."""

from __future__ import annotations

import bisect
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import BinaryIO

from valori_store.errors import CorruptFileError
from valori_store.format.events import CHECKPOINT
from valori_store.format.frames import (
    CHAIN_SIZE,
    CRC,
    FILE_HEADER,
    FILE_HEADER_SIZE,
    FRAME_HEAD,
    GENESIS,
    OVERHEAD,
    Buffer,
    Frame,
    ScanResult,
    frame_parts,
    iter_frames,
)
from valori_store.storage import faults, page_cache
from valori_store.storage.prealloc import reserve


def spill_log() -> FileLog:
    """A non-durable log for in-memory stores, kept in an unlinked temporary file.

    The records live in memory; their history is spilled to a temp file (the OS page
    cache) so it does not double the process's resident memory. It vanishes on close.
    """
    fh = tempfile.TemporaryFile(prefix="valori-log-")
    faults.pwrite_all(fh.fileno(), [FILE_HEADER], 0, "the spilled event log of an in-memory store")
    return FileLog(fh, FILE_HEADER_SIZE, GENESIS, 0, "none", durable=False, starts=[])


class FileLog:
    """A log file appended to in place; fsync policy given by ``durability``.

    ``fsync``: every append is fsynced before it returns. ``batch``: after 64 appends or
    64 MiB an fsync starts on a background thread (at most one at a time: the next one
    waits for it); sync()/close() and every checkpoint append fsync before returning.
    ``none``: written to the OS on every append, never fsynced. Synced ranges' cached pages
    are given back to the OS (:mod:`.page_cache`); a spill log (``durable=False``) is
    fsynced in the background every 64 MiB for that alone.

    Writes are positional (``pwrite``, no user-space buffer) through :mod:`.faults`. An
    append that fails (its write or its fsync: EIO, ENOSPC, EFBIG...) raises StorageError
    (DiskFullError when out of space) and changes nothing: the log's end, chain and seq
    stay, and the rejected frame's bytes are truncated off the file (if that truncate fails
    too, they stay past the end, are overwritten by the next append, cut again on the next
    append or close, and otherwise are a torn tail recovery cuts off). A failed background
    fsync is raised once, by the next append, sync() or close(), before it changes anything.
    """

    BATCH_APPENDS = 64
    BATCH_BYTES = 64 << 20

    def __init__(
        self, fh: BinaryIO, end: int, chain: bytes, next_seq: int, durability: str, durable: bool = True,
        starts: list[int] | None = None, first_seq: int = 0,
    ) -> None:
        self.durable = durable
        #: Seq of the log's first frame (0, or the base event of a compacted log).
        self.first_seq = first_seq
        #: File offset of every frame, by seq - first_seq (built on first use when not given).
        self._starts = starts
        self.fh = fh
        name = getattr(fh, "name", None)
        #: How errors name this file.
        self.what = f"the event log {name}" if isinstance(name, str) else "the event log"
        self.end = end
        self.chain = chain
        self.next_seq = next_seq
        self.durability = durability
        self._unsynced_appends = 0
        self._unsynced_bytes = 0
        self._flusher: threading.Thread | None = None
        self._flush_error: OSError | None = None
        self._reserved = 0
        #: The log is on disk (and its cached pages dropped) up to here (see page_cache.py).
        self._dropped_to = end
        #: The log is known fsynced up to here (sync() skips an fsync with nothing new).
        self._synced_end = 0
        #: Bytes of a rejected frame may lie past ``end`` (its truncate failed too).
        self._garbage = False

    #: Least bytes reserved ahead of the log's end (see storage/prealloc.py).
    RESERVE_BYTES = 64 << 20

    def _reserve(self, size: int) -> None:
        """Keep disk blocks reserved beyond the end (durable logs; a hint only)."""
        need = self.end + size
        if self.durable and need > self._reserved:
            step = max(self.RESERVE_BYTES, self.end // 8, size)
            if reserve(self.fh.fileno(), self.end, step):
                self._reserved = self.end + step

    def append(self, kind: int, payload: Buffer | list[Buffer]) -> int:
        """Append one frame; ``payload`` may be given as parts (written without joining).
        Raises StorageError / DiskFullError having changed nothing (see the class docstring)."""
        must_sync = self.durable and (self.durability == "fsync" or (
            self.durability == "batch" and kind == CHECKPOINT))
        if self._flush_error is not None or (must_sync and self._flusher is not None):
            self._wait_for_flusher()  # a failed background fsync is reported before anything is written
        if self._garbage:
            self._cut_garbage()
        parts = payload if isinstance(payload, list) else [payload]
        size = sum(len(p) for p in parts)
        self._reserve(OVERHEAD + size)
        head, chain = frame_parts(self.next_seq, kind, parts, self.chain)
        new_end = self.end + OVERHEAD + size
        fd = self.fh.fileno()
        try:
            faults.pwrite_all(fd, [head, *parts, chain + CRC.pack(OVERHEAD + size)], self.end, self.what)
            if must_sync:
                faults.fsync(fd, self.what)
        except BaseException:
            # never leave a partial (or unacknowledged) frame in the log
            self._reserved = min(self._reserved, self.end)
            self._cut_garbage()
            raise
        if must_sync:
            self._synced_end = new_end
            self._drop_synced(new_end)
        if self._starts is not None:
            self._starts.append(self.end)
        self.end = new_end
        self.chain = chain
        self.next_seq += 1
        if (self.durability == "batch" and not must_sync) or not self.durable:
            # a spill log: flushed only to drop its cache
            self._unsynced_appends += 1
            self._unsynced_bytes += OVERHEAD + size
            if self._unsynced_appends >= self.BATCH_APPENDS or self._unsynced_bytes >= self.BATCH_BYTES:
                self._sync_in_background()
        elif must_sync:
            self._unsynced_appends = 0
            self._unsynced_bytes = 0
        return self.next_seq - 1

    def _cut_garbage(self) -> None:
        """Truncate the file to the log's end (bytes of a rejected frame); on failure, try
        again at the next append or close."""
        try:
            faults.ftruncate(self.fh.fileno(), self.end, self.what)
            self._garbage = False
        except (OSError, ValueError):
            self._garbage = True

    def read_all(self) -> bytes:
        """The log's bytes up to the last appended frame (``pread``: safe for concurrent readers)."""
        fd, size = self.fh.fileno(), self.end
        parts, pos = [], 0
        while pos < size:
            chunk = os.pread(fd, min(size - pos, 1 << 30), pos)
            if not chunk:
                break
            parts.append(chunk)
            pos += len(chunk)
        return b"".join(parts) if len(parts) != 1 else parts[0]

    def size(self) -> int:
        return self.end

    def pread(self, offset: int, length: int) -> bytes:
        """``length`` bytes at ``offset`` (safe for concurrent readers)."""
        fd, parts, pos = self.fh.fileno(), [], offset
        while pos < offset + length:
            chunk = os.pread(fd, min(offset + length - pos, 1 << 30), pos)
            if not chunk:
                break
            parts.append(chunk)
            pos += len(chunk)
        return b"".join(parts)

    @property
    def starts(self) -> list[int]:
        """File offset of each frame, by seq - first_seq (walked from the frame headers once, if needed)."""
        if self._starts is None:
            starts, pos = [], FILE_HEADER_SIZE
            while pos < self.end:
                starts.append(pos)
                head = self.pread(pos, FRAME_HEAD.size)
                pos += OVERHEAD + FRAME_HEAD.unpack(head)[3]
            self._starts = starts
        return self._starts

    #: Most bytes :meth:`frames` reads at once (a larger frame is read whole).
    WINDOW_BYTES = 64 << 20

    def frames(self, first: int, last: int | None = None) -> Iterator[Frame]:
        """Frames ``first..last`` (default: to the end), every one checked (CRC, seq and the
        hash chain, continued from the chain hash stored in frame ``first - 1``), read in
        windows of about WINDOW_BYTES (a frame's payload is valid while it is the current one
        or a later one of its window: copy what you keep)."""
        starts = self.starts
        last = self.next_seq - 1 if last is None else last
        if first > last:
            return
        if first < self.first_seq:
            raise CorruptFileError(f"event log: events before {self.first_seq} were compacted away")
        i, stop_at = first - self.first_seq, last + 1 - self.first_seq
        begin = starts[i]
        # at the first frame (create, or a compacted log's base, which carries its own chain) the chain starts
        prev = GENESIS if begin == FILE_HEADER_SIZE else self.pread(begin - CHAIN_SIZE - CRC.size, CHAIN_SIZE)
        seq = first
        while i < stop_at:
            begin = starts[i]
            k = max(i + 1, bisect.bisect_right(starts, begin + self.WINDOW_BYTES, i + 1, stop_at))
            stop = starts[k] if k < len(starts) else self.end
            for item in iter_frames(self.pread(begin, stop - begin), "event log", start=0, prev_chain=prev,
                                    first_seq=seq, base=begin):
                if isinstance(item, ScanResult):
                    if item.torn_bytes:
                        raise CorruptFileError(f"event log: frame {item.next_seq} is damaged ({item.torn_reason})")
                    break
                prev = item.chain
                yield item
            seq, i = seq + (k - i), k

    def _drop_synced(self, end: int) -> None:
        """The log is on disk up to ``end``: drop its cached pages before that."""
        start = self._dropped_to
        if end - start >= page_cache.DROP_FROM:
            page_cache.drop(self.fh.fileno(), start, end - start)
            self._dropped_to = end

    def sync(self) -> None:
        """Everything appended so far is on disk when this returns (durable logs); a failed
        (background) fsync raises StorageError."""
        self._wait_for_flusher()
        if self.durable and self.durability != "none" and self._synced_end < self.end:
            end = self.end
            faults.fsync(self.fh.fileno(), self.what)
            self._synced_end = end
            self._drop_synced(end)
        self._unsynced_appends = 0
        self._unsynced_bytes = 0

    def _sync_in_background(self) -> None:
        """Start an fsync of what is written so far without waiting for the disk (never
        raises: a failed earlier one stays pending, raised by the next append or sync)."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.join()
        if self._flush_error is not None:
            return
        self._unsynced_appends = 0
        self._unsynced_bytes = 0
        fd, end, durable, what = self.fh.fileno(), self.end, self.durable, self.what
        if not durable and end - self._dropped_to < self.BATCH_BYTES:
            return  # a spill log: written to disk only in big steps, to give its cached pages back

        def flush() -> None:
            try:
                faults.fsync(fd, what)
                self._synced_end = max(self._synced_end, end)
                self._drop_synced(end)
            except OSError as exc:
                if durable:  # the OS's own error (its message is rewritten when raised)
                    self._flush_error = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc

        try:
            thread = threading.Thread(target=flush, name="valori-log-fsync", daemon=True)
            thread.start()
        except RuntimeError:  # no thread to be had: sync() and close() fsync in the foreground
            return
        self._flusher = thread

    def _wait_for_flusher(self) -> None:
        """Wait for a background fsync; raise its error (once) if it failed."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.join()
        error, self._flush_error = self._flush_error, None
        if error is not None:
            raise faults.storage_error(error, "appends since the last sync may not be on disk",
                                       prefix="a background fsync of the log failed: ") from error

    def close(self) -> None:
        if not self.fh.closed:
            try:
                if self.durable:
                    self.sync()
                else:
                    self._wait_for_flusher()
            finally:
                self._flusher = None
                if self._reserved > self.end or self._garbage:  # give reserved blocks past the end back
                    try:
                        faults.ftruncate(self.fh.fileno(), self.end, self.what)
                    except OSError:
                        pass
                self.fh.close()
