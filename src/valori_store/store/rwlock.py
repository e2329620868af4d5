"""A small readers-writer lock: searches share it, mutations hold it alone.

Phase-fair (Brandenburg & Anderson): the lock alternates between a *read phase* (every
reader that was waiting, together) and a *write phase* (one writer), so neither side
starves however hard the other loops:

* a reader enters at once only while no writer holds or waits for the lock; otherwise it
  waits for the next read phase, which starts as soon as the writer now holding the lock
  (or the first one queued) releases it — before any further queued writer;
* writers queue in FIFO order; the first one enters when the read phase in progress ends
  (readers arriving meanwhile wait behind it), the next ones after one read phase each.

So under a continuous write loop a reader waits for at most one write (plus the tail of a
read phase), and a writer for the read phase in progress plus one write and one read
phase per writer ahead of it. Ownership is handed over by the releasing thread, so a
thread that releases and immediately re-acquires cannot barge past the waiters.

Re-entrancy: a thread that holds the lock (for reading or writing) may take ``read()``
again without waiting (e.g. a search inside ``Store.view()`` while a writer is queued),
and a writer may take ``write()`` again. Taking ``write()`` while holding only ``read()``
would wait forever for itself; it raises RuntimeError instead.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager


class ReadWriteLock:
    """Phase-fair readers-writer lock (see the module docstring).

    Invariants (under ``_mutex``): ``_writer`` is set only while ``_readers == 0``;
    ``_read_waiting > 0`` only while a writer holds or is queued for the lock; a waiting
    reader is admitted by the release that bumps ``_read_phase``; a queued writer is
    admitted by the release that sets ``_writer`` to its thread id.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._read_ok = threading.Condition(self._mutex)
        self._write_ok = threading.Condition(self._mutex)
        self._readers = 0  # threads holding a read slot
        self._writer: int | None = None  # thread id of the writer holding (or handed) the lock
        self._write_depth = 0  # nested write() calls of that writer
        self._queue: deque[int] = deque()  # thread ids of waiting writers, FIFO
        self._read_waiting = 0  # readers waiting for the next read phase
        self._read_phase = 0  # bumped each time the waiting readers are admitted
        self._held: dict[int, int] = {}  # thread id -> read() depth (nested ones included)

    # ------------------------------------------------------------------ read side
    @contextmanager
    def read(self) -> Iterator[None]:
        """Shared access for the block (waits while a writer holds or waits for the lock)."""
        slot = self._acquire_read()
        try:
            yield
        finally:
            self._release_read(slot)

    def _acquire_read(self) -> bool:
        """Take a read slot; False when the thread already holds the lock (nothing taken)."""
        me = threading.get_ident()
        with self._mutex:
            depth = self._held.get(me, 0)
            if depth or self._writer == me:
                self._held[me] = depth + 1
                return False
            if self._writer is not None or self._queue:
                phase = self._read_phase
                self._read_waiting += 1
                try:
                    while self._read_phase == phase:
                        self._read_ok.wait()
                except BaseException:  # interrupted: leave the counts as if it never came
                    if self._read_phase == phase:
                        self._read_waiting -= 1
                    else:  # admitted meanwhile: give the slot back
                        self._readers -= 1
                        self._dispatch(readers_first=False)
                    raise
            else:
                self._readers += 1
            self._held[me] = 1
            return True

    def _release_read(self, slot: bool) -> None:
        me = threading.get_ident()
        with self._mutex:
            depth = self._held.pop(me) - 1
            if depth:
                self._held[me] = depth
            if slot:
                self._readers -= 1
                if self._readers == 0:
                    self._dispatch(readers_first=False)

    # ------------------------------------------------------------------ write side
    @contextmanager
    def write(self) -> Iterator[None]:
        """Exclusive access for the block (FIFO among writers; see the module docstring)."""
        self._acquire_write()
        try:
            yield
        finally:
            self._release_write()

    def _acquire_write(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._writer == me:
                self._write_depth += 1
                return
            if self._held.get(me):
                raise RuntimeError("write() inside read() on the same thread would deadlock; "
                                   "release the read lock first")
            if self._writer is None and self._readers == 0 and not self._queue:
                self._writer = me
                self._write_depth = 1
                return
            self._queue.append(me)
            try:
                while self._writer != me:
                    self._write_ok.wait()
            except BaseException:  # interrupted: leave the queue, or pass the lock on if handed it
                if self._writer == me:
                    self._writer = None
                    self._dispatch(readers_first=True)
                else:
                    self._queue.remove(me)
                    self._dispatch(readers_first=False)
                raise
            self._write_depth = 1

    def _release_write(self) -> None:
        with self._mutex:
            self._write_depth -= 1
            if self._write_depth:
                return
            self._writer = None
            self._dispatch(readers_first=True)

    # ------------------------------------------------------------------ hand-over
    def _dispatch(self, readers_first: bool) -> None:
        """Hand the free lock on (``_mutex`` held). After a write phase the waiting readers
        go first; after a read phase the first queued writer does."""
        if self._writer is not None:
            return
        if self._read_waiting and (readers_first or not self._queue):
            self._readers += self._read_waiting
            self._read_waiting = 0
            self._read_phase += 1
            self._read_ok.notify_all()
        elif self._readers == 0 and self._queue:
            self._writer = self._queue.popleft()
            self._write_ok.notify_all()
