"""``valori-store history PATH``: checkpoints, restores, sessions and turns in log order.

Read-only and without replay: the log's frames are checked (checksums, chain) and only
checkpoint, restore and note events are decoded (``--all`` lists every event).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from collections.abc import Iterator
from typing import Any

from valori_store.cli.common import OK, Ctx, short, table
from valori_store.errors import InputError
from valori_store.format import events
from valori_store.history.sessions import START, TURN
from valori_store.storage import layout
from valori_store.storage.recovery import LogView, read_log

HELP = "list checkpoints, restores, sessions and turns in log order"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("history", parents=parents, help=HELP, description=HELP + " (read-only).")
    p.add_argument("path", metavar="PATH", help="store directory")
    p.add_argument("--all", action="store_true", help="list every event (create, upserts, deletes too)")


def entries(log: LogView, every: bool = False) -> list[dict[str, Any]]:
    """History entries (JSON-ready), in log order."""
    out: list[dict[str, Any]] = []
    wanted = (events.CHECKPOINT, events.RESTORE, events.NOTE, events.BASE)
    for seq, ev in _events(log, every, wanted):
        e: dict[str, Any] = {"seq": seq}
        if isinstance(ev, events.Base):
            e.update(event="compacted", folded=len(ev.folded), state_hash=ev.root.hex())
        elif isinstance(ev, events.CheckpointMark):
            e.update(event="checkpoint", label=ev.label, state_hash=ev.digest.hex())
        elif isinstance(ev, events.Restore):
            e.update(event="restore", target_seq=ev.target_seq, state_hash=ev.digest.hex(),
                     deleted=len(ev.deletes), upserted=len(ev.upsert.ids))
        elif isinstance(ev, events.Note) and ev.topic == START:
            body = json.loads(ev.body)
            e.update(event="session", session=body.get("name"), parent=body.get("parent"),
                     from_turn=body.get("from_turn"))
        elif isinstance(ev, events.Note) and ev.topic == TURN:
            body = json.loads(ev.body)
            e.update(event="turn", session=body.get("session"), turn=body.get("number"),
                     checkpoint_seq=body.get("seq"), state_hash=body.get("state_hash"), label=body.get("label"),
                     receipts=len(body.get("receipts", [])), meta=body.get("meta", {}))
        elif isinstance(ev, events.Note):
            e.update(event="note", topic=ev.topic)
        elif isinstance(ev, events.Create):
            e.update(event="create", dim=ev.dim, metric=ev.metric)
        elif isinstance(ev, events.Upsert):
            e.update(event="upsert", records=len(ev.ids))
        elif isinstance(ev, events.Delete):
            e.update(event="delete", records=len(ev.ids))
        elif isinstance(ev, events.Write):
            e.update(event="write", deleted=len(ev.deletes), upserted=len(ev.upsert.ids))
        else:  # an event kind newer than this command: listed by name
            e.update(event=events.NAMES.get(ev.kind, f"kind-{ev.kind}"))
        out.append(e)
    return out


def _events(log: LogView, every: bool, wanted: tuple[int, ...]) -> Iterator[tuple[int, events.Event]]:
    """(seq, event) in log order; a compacted log's folded checkpoints and notes come first
    (at their original seqs, the checkpoint it was compacted at included), then its base."""
    for frame in log.frames:
        if not every and frame.kind not in wanted:
            continue
        ev = log.decode(frame)
        if isinstance(ev, events.Base):
            for seq, kind, payload in ev.folded:
                yield seq, events.decode(kind, payload, log.dim, str(log.path), frame.offset)
        yield frame.seq, ev


def _details(e: dict[str, Any]) -> str:
    kind = e["event"]
    if kind == "checkpoint":
        return (f"'{e['label']}' " if e["label"] is not None else "") + short(e["state_hash"])
    if kind == "restore":
        return f"to checkpoint {e['target_seq']} {short(e['state_hash'])} (-{e['deleted']} +{e['upserted']} records)"
    if kind == "session":
        return f"{e['session']}" + (f" forked from {e['parent']}:{e['from_turn']}" if e["parent"] else " started")
    if kind == "turn":
        return (f"{e['session']}:{e['turn']} checkpoint {e['checkpoint_seq']} {short(e['state_hash'])}, "
                f"{e['receipts']} receipts")
    if kind == "note":
        return e["topic"]
    if kind == "compacted":
        return (f"history up to here folded into a base image {short(e['state_hash'])} (its checkpoints and notes "
                f"are listed; their states are gone)")
    if kind == "create":
        return f"dim {e['dim']}, {e['metric']}"
    if kind == "write":
        return f"-{e['deleted']} +{e['upserted']} records"
    if "records" in e:
        return f"{e['records']} records"
    return ""


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    path = Path(args.path)
    if layout.classify(path) == layout.SNAPSHOT:
        raise InputError(f"{path} is a snapshot file: it holds a state, not a history; pass a store directory")
    log = read_log(path)
    items = entries(log, args.all)
    if log.torn_bytes:
        ctx.warn(f"{log.torn_bytes} bytes at the end of the log are a torn or in-progress record (not listed)")
    ctx.emit({"ok": True, "path": str(path), "events": log.events, "entries": items})
    if not items:
        ctx.line(f"{path}: no checkpoints, restores or sessions ({log.events} events)")
        return OK
    for line in table(["seq", "event", "details"], [[str(e["seq"]), e["event"], _details(e)] for e in items]):
        ctx.line(line)
    return OK
