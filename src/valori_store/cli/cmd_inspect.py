"""``valori-store inspect PATH``: what a store or snapshot holds, read-only.

A directory is read without its lock and without repairs
(:func:`valori_store.storage.recovery.recover_readonly`): every log frame's checksum and
chain link is checked (the whole log is read), then the state is rebuilt from the newest
usable image plus the events after it; without an image, every event of the
log is applied from empty. Either way no checkpoint/restore state digest is re-checked (``verify`` does
that). ``state_from`` says which way was taken; a checkpoint after an ingest
(``ingest --checkpoint LABEL``) keeps later inspects cheap.
A snapshot file is read from its 64-byte header and trailing digest only (``verify``
checks the digest).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valori_store.cli.common import OK, Ctx, short
from valori_store.cli.sources import open_source
from valori_store.errors import CorruptFileError
from valori_store.format import snapshot
from valori_store.storage import layout

HELP = "show dim, metric, count, state hash, log, checkpoints and sessions (read-only)"
DESCRIPTION = (HELP + ". Never modifies the store and works while another process holds it open. Reads and "
               "checks every log frame, then builds the state from the newest image plus the log tail; "
               "without one it applies the whole log (state digests are not re-checked: verify does that). "
               "'ingest --checkpoint LABEL' or store.checkpoint() keeps it cheap. A snapshot file: header only.")


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("inspect", parents=parents, help=HELP, description=DESCRIPTION)
    p.add_argument("path", metavar="PATH", help="store directory or snapshot file")


def _snapshot_header(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(snapshot.HEADER_SIZE)
        header = snapshot.read_header(head, str(path))
        if size < snapshot.HEADER_SIZE + snapshot.DIGEST_SIZE:
            raise CorruptFileError(f"{path}: {size} bytes is too short for a valori snapshot")
        tree = header["format"] == snapshot.FORMAT_TREE  # the state root sits before the file digest
        fh.seek(size - (2 if tree else 1) * snapshot.DIGEST_SIZE)
        digest = fh.read(snapshot.DIGEST_SIZE)
    return {"dim": header["dim"], "metric": header["metric"], "count": header["count"], "state_hash": digest.hex(),
            "bytes": size, "spec_version": snapshot.FORMAT_SPEC[int(header["format"])]}


def state_from(image_seq: int | None, events: int) -> str:
    """How the head state was built: from which image, and how many events were applied."""
    if image_seq is None:
        return f"no image: all {events} log events applied from empty (digests not re-checked)"
    return f"image of event {image_seq}, then {events - 1 - image_seq} later events applied"


def inspect_path(path: Path) -> dict[str, Any]:
    """The inspect result (JSON-ready) for a directory or a snapshot file."""
    if layout.classify(path) == layout.SNAPSHOT:
        info = _snapshot_header(path)
        return {"ok": True, "path": str(path), "kind": "snapshot", "dim": info["dim"], "metric": info["metric"],
                "count": info["count"], "state_hash": info["state_hash"], "digest_checked": False,
                "spec_version": info["spec_version"], "bytes": info["bytes"], "log": None, "checkpoints": [],
                "sessions": [], "state_from": "snapshot header", "warnings": []}
    src = open_source(path)
    try:
        rec = src.recovered
        assert rec is not None
        log = src.log
        images = layout.image_files(path)
        sessions = [{"name": s.name, "turns": s.turns, "parent": s.parent, "from_turn": s.from_turn,
                     "start_seq": s.start_seq} for s in src.store.sessions()]
        return {
            "ok": True, "path": str(path), "kind": "directory", "dim": src.store.dim, "metric": src.store.metric,
            "count": len(src.store), "state_hash": src.store.state_hash(),
            "spec_version": log.spec,
            "log": {"events": log.events, "bytes": log.good_end, "file_bytes": len(log.data),
                    "torn_bytes": log.torn_bytes, "torn_reason": log.torn_reason, "event_counts": log.counts()},
            "images": len(images),
            "state_from": state_from(rec.image_seq, log.events),
            "checkpoints": [{"seq": c.seq, "label": c.label, "state_hash": c.state_hash} for c in rec.checkpoints],
            "sessions": sessions, "warnings": list(rec.warnings),
        }
    finally:
        src.close()


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    result = inspect_path(Path(args.path))
    for w in result["warnings"]:
        ctx.warn(w)
    ctx.emit(result)
    ctx.line(f"{result['path']} ({result['kind']})")
    ctx.line(f"  dim {result['dim']}, metric {result['metric']}, records {result['count']}")
    ctx.line(f"  state hash  {result['state_hash']}")
    if result["kind"] == "snapshot":
        ctx.line(f"  size        {result['bytes']} bytes (digest not checked; valori-store verify checks it)")
        return OK
    log = result["log"]
    counts = ", ".join(f"{k} {v}" for k, v in sorted(log["event_counts"].items()))
    ctx.line(f"  log         {log['events']} events, {log['bytes']} bytes ({counts})")
    if log["torn_bytes"]:
        ctx.line(f"  torn tail   {log['torn_bytes']} bytes: {log['torn_reason']} (ignored; cut when the store is "
                 f"next opened for writing)")
    ctx.line(f"  state from  {result['state_from']}")
    if result["state_from"].startswith("no image"):
        ctx.line("              (an image makes this cheap: valori-store ingest --checkpoint LABEL writes one, "
                 "or store.write_image())")
    cps = result["checkpoints"]
    ctx.line(f"  checkpoints {len(cps)}" + ("" if not cps else f" (latest: seq {cps[-1]['seq']}"
                                             + (f" '{cps[-1]['label']}'" if cps[-1]["label"] else "")
                                             + f", {short(cps[-1]['state_hash'])})"))
    sessions = result["sessions"]
    ctx.line(f"  sessions    {len(sessions)}" + ("" if not sessions else ": " + ", ".join(
        f"{s['name']} ({s['turns']} turns" + (f", forked from {s['parent']}:{s['from_turn']}" if s["parent"] else "")
        + ")" for s in sessions)))
    return OK
