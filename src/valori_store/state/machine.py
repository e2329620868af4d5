"""The state machine: applying events to a table, and replaying a log from empty."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from valori_store.errors import CorruptFileError
from valori_store.format import events
from valori_store.format.frames import FILE_HEADER_SIZE, GENESIS, Frame, ScanResult, check_file_header, iter_frames
from valori_store.records import Checkpoint
from valori_store.state.table import RecordTable


def apply(table: RecordTable, ev: events.Event) -> None:
    """Apply one event to the table (create, checkpoints and notes change nothing)."""
    if isinstance(ev, events.Upsert):
        table.upsert(ev.ids, ev.rows, ev.texts, ev.metas, ev.packed)
    elif isinstance(ev, events.Delete):
        table.delete(ev.ids)
    elif isinstance(ev, (events.Restore, events.Write)):
        table.delete(ev.deletes)
        table.upsert(ev.upsert.ids, ev.upsert.rows, ev.upsert.texts, ev.upsert.metas, ev.upsert.packed)
        table.upsert_plain(ev.plain.ids, ev.plain.texts, ev.plain.metas, ev.plain.packed)


@dataclass
class ReplayResult:
    """What a replay rebuilt and found."""

    table: RecordTable
    checkpoints: list[Checkpoint] = field(default_factory=list)
    notes: list[tuple[int, events.Note]] = field(default_factory=list)
    events: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    scan: ScanResult | None = None
    checked_digests: int = 0
    #: Seq of the base event of a compacted log (0 for a log that starts with create).
    base_seq: int = 0

    @property
    def metric(self) -> str:
        return self.table.metric.name


BaseLoader = Callable[[int, "events.Base"], RecordTable]
"""Gives the state a compacted log starts from: ``loader(seq, base event)`` (its base image)."""


def folded_history(ev: events.Base, what: str) -> tuple[list[Checkpoint], list[tuple[int, events.Note]]]:
    """The checkpoints and notes a base event keeps from the history it replaced."""
    cps: list[Checkpoint] = []
    notes: list[tuple[int, events.Note]] = []
    for seq, kind, payload in ev.folded:
        folded = events.decode(kind, payload, ev.dim, what, 0)
        if isinstance(folded, events.CheckpointMark):
            cps.append(Checkpoint(seq, folded.digest.hex(), folded.label))
        elif isinstance(folded, events.Note):
            notes.append((seq, folded))
    return cps, notes


def walk(
    data: bytes | memoryview, what: str, check_digests: bool = False, base: BaseLoader | None = None,
) -> Iterator[tuple[Frame, events.Event, ReplayResult]]:
    """Apply the log's events from empty (or, for a compacted log, from its base image, which
    ``base`` provides), yielding after each one.

    The yielded result is live: its table is the state right after that frame's event
    (do not keep it past the next step). When the walk ends, ``result.scan`` describes
    the log's end. Digest checks as in :func:`replay`.
    """
    check_file_header(data, what)
    result: ReplayResult | None = None
    dim = 0
    for item in iter_frames(data, what, start=FILE_HEADER_SIZE, prev_chain=GENESIS):
        if isinstance(item, ScanResult):
            if result is None:
                raise CorruptFileError(f"{what}: the log holds no create event")
            result.scan = item
            return
        frame: Frame = item
        if result is None:
            if frame.kind not in (events.CREATE, events.BASE):
                raise CorruptFileError(f"{what}: first event is not create (offset {frame.offset})")
        ev = events.decode(frame.kind, frame.payload, dim, what, frame.offset)
        if isinstance(ev, (events.Create, events.Base)):
            if result is not None:
                raise CorruptFileError(f"{what}: a second create or base event at offset {frame.offset}")
            dim = ev.dim
            if isinstance(ev, events.Base):
                if base is None:
                    raise CorruptFileError(f"{what}: the log was compacted at event {frame.seq}; replaying it needs "
                                           f"its base image (verify or open the store directory)")
                table = base(frame.seq, ev)
                if table.state_digest() != ev.root:
                    raise CorruptFileError(f"{what}: the base image does not hold the state the base event records")
                result = ReplayResult(table)
                result.checkpoints, result.notes = folded_history(ev, what)
                result.base_seq = result.events = frame.seq  # events counts the folded history too
            else:
                result = ReplayResult(RecordTable(ev.dim, ev.metric, ev.spec))
        else:
            assert result is not None
            apply(result.table, ev)
        assert result is not None
        name = events.NAMES[frame.kind]
        result.counts[name] = result.counts.get(name, 0) + 1
        result.events += 1
        if isinstance(ev, (events.CheckpointMark, events.Restore)) and check_digests:
            actual = result.table.state_digest()
            if actual != ev.digest:
                raise CorruptFileError(
                    f"{what}: state digest recorded by {name} event {frame.seq} (offset {frame.offset}) "
                    f"does not match the replayed state"
                )
            result.checked_digests += 1
        if isinstance(ev, events.CheckpointMark):
            result.checkpoints.append(Checkpoint(frame.seq, ev.digest.hex(), ev.label))
        elif isinstance(ev, events.Note):
            result.notes.append((frame.seq, ev))
        yield frame, ev, result


def replay(
    data: bytes | memoryview, what: str, upto_seq: int | None = None, check_digests: bool = False,
    base: BaseLoader | None = None,
) -> ReplayResult:
    """Rebuild the state by applying every event from empty.

    ``upto_seq`` stops after that event. With ``check_digests`` every checkpoint's and
    restore's recorded state digest is recomputed and compared (CorruptFileError if not).
    The first event must be ``create``.
    """
    result: ReplayResult | None = None
    steps = walk(data, what, check_digests, base)
    for frame, _, result in steps:
        if upto_seq is not None and frame.seq >= upto_seq:
            result.scan = ScanResult([], frame.end, 0, None, frame.chain, frame.seq + 1)
            return result
    if result is None:  # walk raised for an empty log; unreachable
        raise CorruptFileError(f"{what}: the log holds no create event")
    return result
