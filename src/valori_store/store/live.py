"""What an open store holds: its table, log, checkpoints, notes and locks (one value).

The facade (:mod:`.facade`) keeps one :class:`Live`; the write path (:mod:`.writes`) and
checkpoints (:mod:`.checkpoints`) work on it. Mutations hold ``lock.write()``, reads
``lock.read()``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from valori_store.errors import ClosedError, InputError, ReadOnlyError
from valori_store.format import events
from valori_store.records import Checkpoint
from valori_store.state.table import RecordTable
from valori_store.storage.filelog import FileLog
from valori_store.store.rwlock import ReadWriteLock


@dataclass
class Live:
    """The live state of one open store."""

    table: RecordTable
    log: FileLog
    checkpoints: list[Checkpoint]
    notes: list[tuple[int, events.Note]]
    root: Path | None = None
    lock_fd: int | None = None
    read_only: bool = False
    lock: ReadWriteLock = field(default_factory=ReadWriteLock)
    closed: bool = False
    #: Log offset of the newest image (spec-2 durable stores; 0 when none).
    image_end: int = 0

    @property
    def seq(self) -> int:
        """Number of the last event applied."""
        return self.log.next_seq - 1

    @property
    def durable(self) -> bool:
        """True for a store directory (images are written next to the log)."""
        return self.root is not None and self.log.durable

    def check_open(self) -> None:
        if self.closed:
            raise ClosedError("this store is closed; open it again")

    def check_writable(self) -> None:
        self.check_open()
        if self.read_only:
            raise ReadOnlyError("this store was opened read-only; open it with ValoriStore.open to change it")


@dataclass(frozen=True)
class StateView:
    """A consistent view of a store's state: ``table`` after event ``seq`` (do not mutate).

    From ``Store.view()`` it is valid inside the ``with`` block only (the read lock is
    held), and :meth:`read_log` gives the log up to ``seq``; from ``Store.state_at()`` it
    is a copy that stays valid (and has no log).
    """

    table: RecordTable
    seq: int
    log: FileLog | None = None

    @property
    def state_hash(self) -> str:
        return self.table.state_hash()

    def read_log(self) -> bytes:
        """The event log's bytes up to ``seq`` (views from ``Store.view`` only)."""
        if self.log is None:
            raise InputError("this view has no log (it is a copy from state_at)")
        return self.log.read_all()
