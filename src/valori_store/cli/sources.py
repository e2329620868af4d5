"""Opening a PATH read-only and resolving a point in its history (``--from``/``--to``).

A point is written as ``head`` (the current state), a checkpoint sequence number
(``12``), ``SESSION:TURN`` (``alice:2``: the state that turn left behind; ``SESSION`` is
an existing session name and may itself contain ``:``), or a checkpoint label (the latest
checkpoint with it), tried in that order. Snapshots have no history: only ``head``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from valori_store.cli.common import is_number
from valori_store import ReadOnlyStore, open_readonly
from valori_store.errors import CorruptFileError, NotFoundError
from valori_store.format.frames import Frame
from valori_store.history.sessions import Session
from valori_store.state.table import RecordTable
from valori_store.storage import layout, recovery
from valori_store.storage.state_at import state_at


@dataclass
class Source:
    """A read-only store over a directory or snapshot; ``recovered`` is None for snapshots."""

    path: Path
    kind: str  # layout.DIRECTORY or layout.SNAPSHOT
    store: ReadOnlyStore
    recovered: recovery.Recovered | None

    @property
    def log(self) -> recovery.LogView:
        """The directory's log as read from disk (directories only)."""
        assert self.recovered is not None and self.recovered.view is not None
        return self.recovered.view

    def close(self) -> None:
        self.store.close()


def open_source(path: str | Path) -> Source:
    """Open ``path`` read-only (no lock, no repair); NotFoundError / InputError if unusable."""
    p = Path(path)
    kind = layout.classify(p)
    if kind == layout.DIRECTORY:
        rec = recovery.recover_readonly(p)
        return Source(p, kind, ReadOnlyStore.open_readonly(p, recovered=rec), rec)
    return Source(p, kind, open_readonly(p), None)


@dataclass(frozen=True)
class Point:
    """A resolved point: the state after event ``seq``; ``cut`` is the last event a replay
    to this point keeps (the turn's note for ``SESSION:TURN``, else ``seq``)."""

    spec: str
    seq: int
    cut: int
    state_hash: str
    label: str | None
    what: str  # human description, e.g. "checkpoint 7 'v1'" or "alice turn 2"
    head: bool = False


def _describe_checkpoints(src: Source) -> str:
    cps = src.store.history()
    if not cps:
        return "it has no checkpoints"
    shown = ", ".join(f"{c.seq}" + (f" ({c.label})" if c.label else "") for c in cps[-8:])
    return f"its checkpoints are at {'..., ' if len(cps) > 8 else ''}{shown}"


def resolve(src: Source, spec: str) -> Point:
    """Resolve ``spec`` (see the module docstring); NotFoundError when nothing matches."""
    store = src.store
    text = spec.strip()
    if text == "head":
        seq = store.log_length - 1
        return Point(spec, seq, seq, store.state_hash(), None, f"head (event {seq})", head=True)
    if src.kind == layout.SNAPSHOT:
        raise NotFoundError(f"{src.path} is a snapshot (no history): only 'head' can be used, not {spec!r}")
    cps = store.history()
    if is_number(text):
        found = [c for c in cps if c.seq == int(text)]
        if not found:
            raise NotFoundError(f"no checkpoint at seq {text} in {src.path}; {_describe_checkpoints(src)}")
        c = found[0]
        return Point(spec, c.seq, c.seq, c.state_hash, c.label, f"checkpoint {c.seq}" + (
            f" ({c.label})" if c.label else ""))
    name, sep, number = text.rpartition(":")
    if sep and is_number(number):
        names = [s.name for s in store.sessions()]
        if name in names:
            turn = Session(store, name).turn_at(int(number))
            return Point(spec, turn.seq, turn.note_seq, turn.state_hash, turn.label, f"{name} turn {number}")
    labelled = [c for c in cps if c.label == text]
    if labelled:
        c = labelled[-1]
        return Point(spec, c.seq, c.seq, c.state_hash, c.label, f"checkpoint {c.seq} ({c.label})")
    raise NotFoundError(
        f"{spec!r} is not 'head', a checkpoint seq, SESSION:TURN or a checkpoint label of {src.path}; "
        f"{_describe_checkpoints(src)} (valori-store history lists them)")


@contextmanager
def state_of(src: Source, point: Point, on_event: Callable[[Frame], None] | None = None) -> Iterator[RecordTable]:
    """The record table at ``point`` for the block (do not mutate it), checked against the
    point's recorded state hash. Head is the open store's own state (under its read lock);
    a past point comes from its checkpoint image or a checked replay of the log."""
    if point.head:
        with src.store.view() as view:
            yield view.table
        return
    log = src.log
    recorded = [c for c in src.store.history() if c.seq == point.seq]
    digest = bytes.fromhex(recorded[0].state_hash) if recorded else None
    table = state_at(log.data, str(log.path), point.seq, root=src.path, digest=digest, check_digests=True,
                     on_event=on_event)
    actual = table.state_hash()
    if actual != point.state_hash:
        raise CorruptFileError(
            f"{src.path}: replaying the log to event {point.seq} gives state {actual[:16]}..., "
            f"but {point.what} recorded {point.state_hash[:16]}...; run valori-store verify")
    yield table
