"""Migrating stores and snapshots written by valori-store 0.1 (state spec 1) to spec 2.

valori-store reads 0.1 stores and snapshots directly, with their 0.1 state hashes, and
never rewrites them on its own. :func:`migrate` (``valori-store migrate``) converts one
explicitly:

* **A store directory**: every event of its log is replayed and re-logged one for one
  (the same seqs): records, deletes and notes keep their bytes; checkpoint and restore
  events record the state's spec-2 root instead of its spec-1 digest (each spec-1 digest
  is first re-checked against the replayed state); session-turn notes record the new
  root of their checkpoint. A last note (topic :data:`MIGRATION_TOPIC`) maps every
  checkpoint's seq to its spec-1 hash, so a ``Checkpoint`` recorded elsewhere before the
  migration (e.g. in LangGraph checkpoint metadata) still restores. Receipts recorded by
  0.1 keep ``spec_version`` 1 and verify against the spec-1 digest at their seq. The new
  store is built beside the original (``.<name>.migrating``), verified, then swapped in:
  the original is renamed ``<name>.v1-backup`` first, so it is kept until the migration
  has succeeded (delete it yourself afterwards). A rerun after a crash finishes or redoes
  the work.
* **A snapshot**: re-encoded as format 3 (spec 2); the original is kept as
  ``<name>.v1-backup``.

With ``out``, the result is written there instead and the original is left untouched.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from valori_store.errors import CorruptFileError, InputError
from valori_store.format import events, snapshot
from valori_store.format.canonical import canonical_json
from valori_store.history.sessions import TURN
from valori_store.history.verify import verify_directory
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import layout, page_store, recovery
from valori_store.storage.atomic import fsync_dir, write_atomic
from valori_store.storage.lock import acquire_lock, release_lock
from valori_store.store.checkpoints import MIGRATION_TOPIC

__all__ = ["BACKUP_SUFFIX", "MIGRATION_TOPIC", "Migration", "migrate"]

BACKUP_SUFFIX = ".v1-backup"


@dataclass(frozen=True)
class Migration:
    """What :func:`migrate` did. ``changed`` is False when the input already was spec 2."""

    path: str
    kind: str  # "directory" or "snapshot"
    changed: bool
    out: str
    backup: str | None
    events: int
    checkpoints: int
    records: int
    state_hash_v1: str | None
    state_hash: str
    dropped_bytes: int = 0


def _temp_for(path: Path) -> Path:
    return path.with_name(f".{path.name}.migrating")


def _backup_for(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def migrate(path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Migration:
    """Migrate the 0.1 store directory or snapshot at ``path`` to spec 2 (see the module
    docstring); a no-op for spec-2 input. ``out``: write the result there instead."""
    src = Path(path)
    target = None if out is None else Path(out)
    if target is not None and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise InputError(f"--out {target} already exists; migrate never overwrites")
    if target is None and not src.exists() and _backup_for(src).exists() and _temp_for(src).exists():
        _swap_in(src, _temp_for(src), None)  # a crash between the two renames: finish the swap
    kind = layout.classify(src)
    if kind == layout.DIRECTORY:
        return _directory(src, target)
    return _snapshot(src, target)


def _snapshot(src: Path, target: Path | None) -> Migration:
    content = snapshot.decode(src.read_bytes(), str(src))
    if content.spec >= 2:
        table = RecordTable.from_content(content)
        return Migration(str(src), layout.SNAPSHOT, False, str(src), None, 0, 0, table.n, None, table.state_hash())
    table = RecordTable.from_content(content)
    v1 = table.state_hash()
    content.spec = 2
    migrated = RecordTable.from_content(content)
    data = migrated.snapshot_bytes()
    if RecordTable.from_content(snapshot.decode(data, "migrated snapshot")).state_digest(1).hex() != v1:
        raise CorruptFileError(f"{src}: the migrated snapshot does not hold the same records")  # pragma: no cover
    if target is not None:
        write_atomic(target, data)
        return Migration(str(src), layout.SNAPSHOT, True, str(target), None, 0, 0, migrated.n, v1,
                         migrated.state_hash())
    backup = _backup_for(src)
    if backup.exists():
        raise InputError(f"{backup} already exists; move it away before migrating {src}")
    tmp = _temp_for(src)
    write_atomic(tmp, data)
    try:
        os.link(src, backup)  # the original stays reachable under the backup name throughout
    except OSError:
        shutil.copy2(src, backup)
    fsync_dir(src.parent)
    os.replace(tmp, src)
    fsync_dir(src.parent)
    return Migration(str(src), layout.SNAPSHOT, True, str(src), str(backup), 0, 0, migrated.n, v1,
                     migrated.state_hash())


def _directory(src: Path, target: Path | None) -> Migration:
    fd = acquire_lock(src)  # no writer may change the original meanwhile
    try:
        view = recovery.read_log(src)
        if view.spec >= 2:
            rec = recovery.recover_readonly(src)
            return Migration(str(src), layout.DIRECTORY, False, str(src), None, view.events, len(rec.checkpoints),
                             rec.table.n, None, rec.table.state_hash())
        if view.damaged_final:
            raise CorruptFileError(f"{view.path}: the final record is complete but fails its checks "
                                   f"({view.torn_reason}); run valori-store verify before migrating")
        build = target if target is not None else _temp_for(src)
        if target is None and build.exists():
            shutil.rmtree(build)  # an earlier, interrupted migration: redo it
        try:
            result = _rewrite(src, view, build)
        except BaseException:
            shutil.rmtree(build, ignore_errors=True)
            raise
        if target is not None:
            return result
        backup = _backup_for(src)
        if backup.exists():
            shutil.rmtree(build, ignore_errors=True)
            raise InputError(f"{backup} already exists; move it away before migrating {src}")
        _swap_in(src, build, backup)
        return Migration(result.path, result.kind, True, str(src), str(backup), result.events, result.checkpoints,
                         result.records, result.state_hash_v1, result.state_hash, result.dropped_bytes)
    finally:
        release_lock(fd)


def _swap_in(src: Path, build: Path, backup: Path | None) -> None:
    """Original → backup, then the new store → original name (each rename is atomic)."""
    if backup is not None:
        os.rename(src, backup)
        fsync_dir(src.parent)
    os.rename(build, src)
    fsync_dir(src.parent)


def _rewrite(src: Path, view: recovery.LogView, build: Path) -> Migration:
    """Build the spec-2 store at ``build`` from the spec-1 log ``view``."""
    what = str(view.path)
    rec = recovery.create(build, view.dim, view.metric, "batch")
    log = rec.log
    assert log is not None and rec.lock_fd is not None
    table = RecordTable(view.dim, view.metric, 2)
    v1_hashes: dict[str, str] = {}
    v2_of: dict[int, str] = {}
    try:
        for frame in view.frames[1:]:
            ev = events.decode(frame.kind, frame.payload, view.dim, what, frame.offset)
            machine.apply(table, ev)
            if isinstance(ev, (events.CheckpointMark, events.Restore)):
                if table.state_digest(1) != ev.digest:
                    raise CorruptFileError(f"{what}: the state digest recorded by event {frame.seq} does not match "
                                           f"the replayed state; run valori-store verify {src}")
                new_digest = table.state_digest()
                if isinstance(ev, events.CheckpointMark):
                    v1_hashes[str(frame.seq)] = ev.digest.hex()
                    v2_of[frame.seq] = new_digest.hex()
                    ev = events.CheckpointMark(ev.label, new_digest)
                else:
                    ev = events.Restore(ev.target_seq, new_digest, ev.deletes, ev.upsert, ev.plain)
                seq = log.append(ev.kind, events.encode_parts(ev))
            elif isinstance(ev, events.Note) and ev.topic == TURN:
                body = json.loads(ev.body)
                if isinstance(body, dict) and isinstance(body.get("seq"), int) and body["seq"] in v2_of:
                    body["state_hash"] = v2_of[body["seq"]]
                seq = log.append(events.NOTE, events.encode(events.Note(ev.topic, canonical_json(body))))
            else:
                seq = log.append(frame.kind, frame.payload)
            assert seq == frame.seq
        v1_head = table.state_digest(1).hex()
        note = {"from_spec": 1, "to_spec": 2, "events": view.events, "v1_state_hash": v1_head,
                "v1_checkpoints": v1_hashes}
        log.append(events.NOTE, events.encode(events.Note(MIGRATION_TOPIC, canonical_json(note))))
        log.sync()
        page_store.write_image(build, table, log.next_seq - 1, log.end, log.chain)
    finally:
        log.close()
        release_lock(rec.lock_fd)
    fsync_dir(build)
    report, _ = verify_directory(build)
    if not report.ok or report.state_hash != table.state_hash():
        raise CorruptFileError(f"the migrated store does not verify: {'; '.join(report.problems)}")  # pragma: no cover
    return Migration(str(src), layout.DIRECTORY, True, str(build), None, view.events + 1, len(v1_hashes), table.n,
                     v1_head, table.state_hash(), view.torn_bytes)
