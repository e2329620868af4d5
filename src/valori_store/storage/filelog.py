"""The event log file appended to in place (:class:`FileLog`), and the in-memory stores'
spilled log. The byte layout is :mod:`valori_store.format.frames`."""

from __future__ import annotations

import os
import tempfile
import threading
from typing import BinaryIO

from valori_store.format.frames import CRC, FILE_HEADER, FILE_HEADER_SIZE, GENESIS, OVERHEAD, Buffer, frame_parts


def spill_log() -> FileLog:
    """A non-durable log for in-memory stores, kept in an unlinked temporary file.

    The records live in memory; their history is spilled to a temp file (the OS page
    cache) so it does not double the process's resident memory. It vanishes on close.
    """
    fh = tempfile.TemporaryFile(prefix="valori-log-")
    fh.write(FILE_HEADER)
    return FileLog(fh, FILE_HEADER_SIZE, GENESIS, 0, "none", durable=False)


class FileLog:
    """A log file appended to in place; fsync policy given by ``durability``.

    ``fsync``: every append is fsynced before it returns. ``batch``: after 64 appends or
    64 MiB an fsync starts on a background thread (at most one at a time: the next one
    waits for it, and so raises its error if it failed); sync()/close() and every
    checkpoint fsync before returning. ``none``: written to the OS on every append, never
    fsynced.
    """

    BATCH_APPENDS = 64
    BATCH_BYTES = 64 << 20

    def __init__(
        self, fh: BinaryIO, end: int, chain: bytes, next_seq: int, durability: str, durable: bool = True
    ) -> None:
        self.durable = durable
        self.fh = fh
        self.end = end
        self.chain = chain
        self.next_seq = next_seq
        self.durability = durability
        self._unsynced_appends = 0
        self._unsynced_bytes = 0
        self._flusher: threading.Thread | None = None
        self._flush_error: OSError | None = None

    def append(self, kind: int, payload: Buffer | list[Buffer]) -> int:
        """Append one frame; ``payload`` may be given as parts (written without joining)."""
        parts = payload if isinstance(payload, list) else [payload]
        size = sum(len(p) for p in parts)
        head, chain = frame_parts(self.next_seq, kind, parts, self.chain)
        try:
            self.fh.seek(self.end)
            self.fh.write(head)
            for part in parts:
                self.fh.write(part)
            self.fh.write(chain + CRC.pack(OVERHEAD + size))
            self.fh.flush()
            if self.durability == "fsync":
                os.fsync(self.fh.fileno())
        except BaseException:
            # never leave a partial frame in the middle of the log
            try:
                self.fh.truncate(self.end)
                self.fh.flush()
            finally:
                raise
        self.end += OVERHEAD + size
        self.chain = chain
        self.next_seq += 1
        if self.durability == "batch":
            self._unsynced_appends += 1
            self._unsynced_bytes += OVERHEAD + size
            if self._unsynced_appends >= self.BATCH_APPENDS or self._unsynced_bytes >= self.BATCH_BYTES:
                self._sync_in_background()
        return self.next_seq - 1

    def read_all(self) -> bytes:
        """The log's bytes up to the last appended frame (``pread``: safe for concurrent readers)."""
        self.fh.flush()
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

    def sync(self) -> None:
        """Everything appended so far is on disk when this returns (durable logs)."""
        self._wait_for_flusher()
        self.fh.flush()
        if self.durable and self.durability != "none":
            os.fsync(self.fh.fileno())
        self._unsynced_appends = 0
        self._unsynced_bytes = 0

    def _sync_in_background(self) -> None:
        """Start an fsync of what is written so far without waiting for the disk."""
        self._wait_for_flusher()
        self.fh.flush()
        self._unsynced_appends = 0
        self._unsynced_bytes = 0
        if not self.durable:
            return
        fd = self.fh.fileno()

        def flush() -> None:
            try:
                os.fsync(fd)
            except OSError as exc:
                self._flush_error = exc

        self._flusher = threading.Thread(target=flush, name="valori-log-fsync", daemon=True)
        self._flusher.start()

    def _wait_for_flusher(self) -> None:
        """Wait for a background fsync; raise its error (once) if it failed."""
        flusher, self._flusher = self._flusher, None
        if flusher is not None:
            flusher.join()
        error, self._flush_error = self._flush_error, None
        if error is not None:
            raise OSError(error.errno, f"a background fsync of the log failed: {error.strerror}") from error

    def close(self) -> None:
        if not self.fh.closed:
            try:
                if self.durable:
                    self.sync()
            finally:
                self._flusher = None
                self.fh.close()
