"""``valori-store compact PATH --before POINT``: fold the history before a checkpoint.

Opens the store for writing (it takes the directory lock, so no other writer may have it
open) and calls :meth:`ValoriStore.compact`: the events up to POINT (a checkpoint seq, a
checkpoint label, or ``SESSION:TURN`` for that turn's checkpoint) are replaced by one base
event plus the base image of that state. Later events, and the hash chain through them,
are unchanged. Earlier checkpoints and notes stay listed by ``history``; their states can
no longer be restored or replayed, and receipts taken there verify as state-unavailable.
A crash at any point leaves the old or the new store (``valori-store verify`` checks it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valori_store import ValoriStore
from valori_store.cli.common import OK, Ctx, is_number
from valori_store.errors import InputError, NotFoundError
from valori_store.history.sessions import Session
from valori_store.storage import layout

HELP = "fold the history before a checkpoint into a base image (later history unchanged)"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compact", parents=parents, help=HELP, description=HELP + ". States before POINT can no "
                       "longer be restored; their checkpoints and notes stay listed.")
    p.add_argument("path", metavar="PATH", help="store directory (opened for writing)")
    p.add_argument("--before", required=True, metavar="POINT",
                   help="checkpoint seq, checkpoint label, or SESSION:TURN (that turn's checkpoint)")


def _target(store: ValoriStore, text: str) -> int | str:
    """The checkpoint POINT names: a seq, a session turn's checkpoint seq, or a label."""
    text = text.strip()
    if is_number(text):
        return int(text)
    name, sep, number = text.rpartition(":")
    if sep and is_number(number) and name in {s.name for s in store.sessions()}:
        return Session(store, name).turn_at(int(number)).seq
    if any(c.label == text for c in store.history()):
        return text
    raise NotFoundError(f"{text!r} is not a checkpoint seq, SESSION:TURN or checkpoint label of {store.path}")


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    path = Path(args.path)
    if layout.classify(path) == layout.SNAPSHOT:
        raise InputError(f"{path} is a snapshot file (no history to compact); pass a store directory")
    store = ValoriStore.open(path)
    try:
        result = store.compact(_target(store, args.before))
        state_hash, n_events = store.state_hash(), store.log_length
    finally:
        store.close()
    ctx.emit({"ok": True, "path": str(path), "base_seq": result.base_seq, "previous_base_seq": result.previous_base_seq,
              "changed": result.changed, "replaced_events": result.replaced_events,
              "kept_checkpoints_and_notes": result.kept_checkpoints_and_notes,
              "log_bytes_before": result.log_bytes_before, "log_bytes_after": result.log_bytes_after,
              "events": n_events, "state_hash": state_hash})
    if not result.changed:
        ctx.line(f"{path}: the log already starts at event {result.base_seq}; nothing to compact")
        return OK
    ctx.line(f"{path}: compacted at event {result.base_seq}: {result.replaced_events} events replaced by a base event and image "
             f"({result.kept_checkpoints_and_notes} checkpoints and notes kept in it)")
    ctx.line(f"log {result.log_bytes_before} -> {result.log_bytes_after} bytes; head state {state_hash}")
    return OK
