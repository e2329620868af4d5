"""Checkpoints, restore, and the state at a past event.

A checkpoint is a logged event recording the state digest; a durable store also writes
its image (:mod:`valori_store.storage.image_files`), so restoring it needs no replay. A
restore is itself an event: the diff from the current state to the checkpoint's, so replay
never needs an older state and history is never erased.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import events
from valori_store.records import Checkpoint
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.state.validate import check_name_text
from valori_store.storage import page_store
from valori_store.storage.image_files import RecoveryWarning, write_image
from valori_store.storage.state_at import compacted_before
from valori_store.storage.state_at import state_at as log_state_at
from valori_store.store import undo
from valori_store.store.live import Live, StateView
from valori_store.store.writes import commit


def checkpoint(live: Live, label: str | None) -> Checkpoint:
    """Record the current state as a checkpoint event (and, durable, its image)."""
    if label is not None:
        check_name_text(label, "a checkpoint label")
    with live.lock.write():
        live.check_open()
        digest = live.table.state_digest()
        seq = commit(live, events.CheckpointMark(label, digest))
        cp = Checkpoint(seq, digest.hex(), label)
        live.checkpoints.append(cp)
        if live.durable and live.table.spec >= 2:
            live.log.sync()  # a checkpoint is on disk when it returns, in every durability mode
        elif live.durable:  # spec 1 (0.1 stores): an image per checkpoint, as 0.1 wrote them
            assert live.root is not None
            try:
                write_image(live.root, seq, live.log, list(live.checkpoints), live.table.snapshot_bytes())
            except OSError as exc:  # the checkpoint is in the log; only the fast path is lost
                warnings.warn(
                    f"checkpoint {seq} is logged but its image could not be written ({exc}); "
                    f"restoring it will replay the log instead", RecoveryWarning, stacklevel=3,
                )
        return cp


#: Topic of the note a migrated log ends with (history/migrate.py): its body's
#: ``v1_checkpoints`` maps each checkpoint's seq to its spec-1 (0.1) state hash.
MIGRATION_TOPIC = "valori.migration"


def v1_aliases(notes: list[tuple[int, events.Note]]) -> dict[int, str]:
    """seq → spec-1 state hash of every checkpoint of a store migrated from 0.1."""
    out: dict[int, str] = {}
    for _, note in notes:
        if note.topic == MIGRATION_TOPIC:
            try:
                body = json.loads(note.body)
                out.update({int(k): str(v) for k, v in body.get("v1_checkpoints", {}).items()})
            except (ValueError, AttributeError, TypeError):
                continue  # not a migration note this version wrote: no aliases from it
    return out


def resolve(live: Live, target: Any) -> Checkpoint:
    """The checkpoint ``target`` names: a Checkpoint, a label (the latest with it) or a seq;
    NotFoundError for one before a compaction (its state is gone)."""
    cp = _named(live.checkpoints, target, live.notes)
    if cp.seq < live.log.first_seq:
        raise compacted_before(cp.seq, live.log.first_seq)
    return cp


def _named(cps: list[Checkpoint], target: Any, notes: list[tuple[int, events.Note]]) -> Checkpoint:
    if isinstance(target, Checkpoint):
        found = [c for c in cps if c.seq == target.seq]
        if found and found[0].state_hash != target.state_hash and v1_aliases(notes).get(target.seq) == target.state_hash:
            return found[0]  # recorded before the store was migrated from 0.1: its spec-1 hash
        if not found or found[0].state_hash != target.state_hash:
            raise NotFoundError(f"checkpoint {target.seq} ({target.state_hash[:12]}...) is not in this store's history")
        return found[0]
    if isinstance(target, str):
        found = [c for c in cps if c.label == target]
        if not found:
            raise NotFoundError(f"no checkpoint labelled {target!r}; history() lists them")
        return found[-1]
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        found = [c for c in cps if c.seq == int(target)]
        if not found:
            raise NotFoundError(f"no checkpoint at seq {target}; history() lists them")
        return found[0]
    raise InputError(f"restore takes a Checkpoint, a label (str) or a seq (int), got {type(target).__name__}")


def state_at(live: Live, seq: int, digest: bytes | None = None) -> RecordTable:
    """The state right after event ``seq`` (caller holds a lock). Spec 2: the newest image at
    or before ``seq`` plus the events after it (from empty without one); spec 1: the
    checkpoint image of ``seq`` when it holds exactly ``digest``, else a replay of the log."""
    if seq < live.log.first_seq:
        raise compacted_before(seq, live.log.first_seq)
    if live.table.spec >= 2:
        base = None
        if live.root is not None:
            for manifest in reversed(page_store.manifests(live.root)):
                if manifest.seq <= seq:
                    try:
                        base = page_store.load_image(live.root, manifest, live.table.metric.name)
                        first = manifest.seq + 1
                        break
                    except CorruptFileError:
                        continue
        if base is None and live.log.first_seq:
            raise CorruptFileError(f"{live.root}: the base image of the compacted log is missing or damaged")
        if base is None:
            base, first = RecordTable(live.table.dim, live.table.metric, live.table.spec), 1
        dim = live.table.dim
        for frame in live.log.frames(first, seq):
            machine.apply(base, events.decode(frame.kind, frame.payload, dim, "event log", frame.offset))
        return base
    return log_state_at(live.log.read_all(), "event log", seq, root=live.root, digest=digest)


def restore(live: Live, target: Any) -> Checkpoint:
    """Rewind the live state to a checkpoint's exact state (logged as a restore event).

    Spec 2: in proportion to the change (:mod:`.undo`); the event is applied, the state root
    checked against the checkpoint's, then logged (undone and replaced by the full path on
    a mismatch). Spec 1: the checkpoint's image or a replay, then the diff.
    """
    with live.lock.write():
        live.check_open()
        cp = resolve(live, target)
        if live.table.spec >= 2 and _restore_incrementally(live, cp):
            return cp
        past = state_at(live, cp.seq, bytes.fromhex(cp.state_hash))
        if past.state_hash() != cp.state_hash:
            raise CorruptFileError(
                f"replaying the log to checkpoint {cp.seq} does not reproduce its recorded state hash; "
                f"run valori_store.verify on the store"
            )
        commit(live, diff(live.table, past, cp))
        if live.table.state_hash() != cp.state_hash:  # pragma: no cover - internal invariant
            raise CorruptFileError("restore did not reproduce the checkpoint state")
        return cp


def _restore_incrementally(live: Live, cp: Checkpoint) -> bool:
    """Apply and log the incremental restore event; False (nothing changed) when its result
    would not be the checkpoint's state."""
    live.check_writable()
    ev, inverse = undo.restore_event(live, cp)
    table = live.table
    table.reserve(table.n + len(ev.upsert.ids) + len(ev.plain.ids))
    machine.apply(table, ev)
    if table.state_hash() != cp.state_hash:
        machine.apply(table, inverse)
        return False
    try:
        live.log.append(ev.kind, events.encode_parts(ev))
    except BaseException:
        machine.apply(table, inverse)
        raise
    return True


def diff(current: RecordTable, past: RecordTable, cp: Checkpoint) -> events.Restore:
    """The restore event turning ``current`` into ``past``: deletions, then the records
    that differ (with and without vectors), in id order."""
    key = lambda s: s.encode("utf-8")  # noqa: E731
    deletes = sorted((i for i in current.row_of if i not in past.row_of), key=key)
    changed: list[int] = []
    for rid in sorted(past.row_of, key=key):
        pr = past.row_of[rid]
        cr = current.row_of.get(rid)
        if (
            cr is None
            or current.texts[cr] != past.texts[pr]
            or current.metas[cr] != past.metas[pr]
            or current.has_vector(cr) != past.has_vector(pr)
            or not np.array_equal(current.matrix[cr], past.matrix[pr])
        ):
            changed.append(pr)
    with_vec = [r for r in changed if past.has_vector(r)]
    plain = [r for r in changed if not past.has_vector(r)]
    up = events.Upsert(
        [past.ids[r] for r in with_vec],
        past.matrix[with_vec] if with_vec else np.zeros((0, past.dim), dtype=np.int32),
        [past.texts[r] for r in with_vec],
        [past.metas[r] for r in with_vec],
    )
    return events.Restore(cp.seq, bytes.fromhex(cp.state_hash), deletes, up,
                          events.Plain([past.ids[r] for r in plain], [past.texts[r] for r in plain],
                                       [past.metas[r] for r in plain]))


def view_at(live: Live, seq: int) -> StateView:
    """A copy of the state right after event ``seq`` (NotFoundError beyond the log)."""
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise InputError(f"seq must be an int >= 0, got {seq!r}")
    with live.lock.read():
        live.check_open()
        if seq >= live.log.next_seq:
            raise NotFoundError(f"no event {seq}: the log holds events 0..{live.seq}")
        if seq == live.seq:
            return StateView(RecordTable.from_content(live.table.content()), seq)
        digest = next((bytes.fromhex(c.state_hash) for c in live.checkpoints if c.seq == seq), None)
        return StateView(state_at(live, seq, digest), seq)
