"""``valori-store migrate PATH [--out OUT]``: convert a valori-store 0.1 store or snapshot.

Stores and snapshots written by 0.1 (state spec 1) open directly, with their 0.1 state
hashes, and are never rewritten on their own. This command converts one to spec 2
(:func:`valori_store.migrate`): a directory's log is re-logged event for event (same seqs;
checkpoints and restores record spec-2 roots after their spec-1 digests are re-checked), a
snapshot re-encoded as format 3. Without ``--out`` the original is renamed
``PATH.v1-backup`` and the result takes its place (the original is kept until the new one
is complete and verified; delete the backup yourself). With ``--out`` the original is not
touched. Spec-2 input: nothing to do (exit 0).
"""

from __future__ import annotations

import argparse
from typing import Any

from valori_store.cli.common import OK, Ctx, short
from valori_store.history.migrate import migrate

HELP = "convert a valori-store 0.1 (spec 1) store or snapshot to spec 2, keeping the original as a backup"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("migrate", parents=parents, help=HELP, description=HELP + ".")
    p.add_argument("path", metavar="PATH", help="store directory or snapshot file written by valori-store 0.1")
    p.add_argument("--out", metavar="OUT", help="write the migrated store or snapshot here (original untouched)")


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    m = migrate(args.path, args.out)
    ctx.emit({"ok": True, "path": m.path, "kind": m.kind, "changed": m.changed, "out": m.out, "backup": m.backup,
              "events": m.events, "checkpoints": m.checkpoints, "records": m.records,
              "state_hash_v1": m.state_hash_v1, "state_hash": m.state_hash, "dropped_bytes": m.dropped_bytes})
    if not m.changed:
        ctx.line(f"{m.path}: already state spec 2; nothing to migrate")
        return OK
    if m.dropped_bytes:
        ctx.warn(f"{m.dropped_bytes} bytes at the end of the log were a torn record (an unacknowledged write) and "
                 f"were not migrated")
    ctx.line(f"migrated {m.kind} {m.path} to state spec 2: {m.records} records, {m.events} events, "
             f"{m.checkpoints} checkpoints")
    ctx.line(f"state hash {short(m.state_hash_v1)} (spec 1) -> {m.state_hash} (spec 2)")
    ctx.line(f"written to {m.out}" + (f"; the original is kept as {m.backup}" if m.backup else ""))
    return OK
