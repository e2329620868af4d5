"""``valori-store verify PATH [--receipts FILE]``: replay, chain, hashes and receipts.

A directory's log is replayed from empty with every frame checksum, chain link and
recorded checkpoint/restore digest checked, and every checkpoint image compared with the
log (the checks of :func:`valori_store.verify`, with a progress bar). Then every receipt
recorded by the store's sessions, plus those in ``--receipts`` files, is re-executed at
its recorded state (:func:`valori_store.receipts.verify_receipts`: one more log walk).
A snapshot file is checked by its digest; receipts are verified against its state.

Exit codes: 0 everything verified; 1 a receipt or image does not match; 4 the log or
snapshot is corrupt — including a complete final log frame that fails its checksum or
hash chain (the core report lists it as a problem; opening the store for writing would
cut it off, losing that write). A final frame that is merely short (a write cut off by a
crash) is a warning, not a failure. The report is printed either way.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from valori_store.cli import receipts_file
from valori_store.cli.common import CORRUPT, FAILED, OK, Ctx
from valori_store.format.frames import DAMAGED_FINAL
from valori_store.history.sessions import TURN
from valori_store.history.verify import VerifyReport, verify, verify_directory
from valori_store.receipts import verify_receipts
from valori_store.state.machine import ReplayResult
from valori_store.storage import layout

HELP = "replay the log and check every checksum, hash and receipt (sessions' receipts included)"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("verify", parents=parents, help=HELP, description=HELP + ". Exit 0: all verified, "
                       "1: a receipt or image does not match, 4: the log or snapshot is corrupt (a complete final "
                       "log frame that fails its checks included; a short final frame is only a warning).")
    p.add_argument("path", metavar="PATH", help="store directory or snapshot file")
    p.add_argument("--receipts", metavar="FILE", action="append", default=[],
                   help="also verify the receipts in FILE (a receipt, a JSON list, JSON lines, or search --json "
                        "--receipt output); repeatable")
    p.add_argument("--no-sessions", action="store_true", help="do not re-execute the sessions' recorded receipts")


def _replay_directory(root: Path, ctx: Ctx) -> tuple[VerifyReport, ReplayResult | None]:
    """The checks of :func:`valori_store.verify` on a directory, with a progress bar."""
    size = layout.log_path(root).stat().st_size
    with ctx.progress(size, "verify", unit="B") as bar:
        out = verify_directory(root, on_event=lambda f: bar.update(f.end))
        bar.update(size)
    return out


def _session_receipts(result: ReplayResult) -> list[tuple[dict[str, Any], Any]]:
    """(origin, receipt dict) of every receipt recorded in a session turn, in log order."""
    out = []
    for seq, note in result.notes:
        if note.topic != TURN:
            continue
        body = json.loads(note.body)
        for i, r in enumerate(body.get("receipts", []), 1):
            out.append(({"source": "session", "session": body.get("session"), "turn": body.get("number"),
                         "index": i, "note_seq": seq}, r))
    return out


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    path = Path(args.path)
    kind = layout.classify(path)
    candidates: list[tuple[dict[str, Any], Any]] = []
    for f in args.receipts:  # parse first: a bad file is a usage error before any work
        for i, r in enumerate(receipts_file.load(f), 1):
            candidates.append(({"source": "file", "file": f, "index": i}, r))
    damaged_final: str | None = None
    if kind == layout.DIRECTORY:
        report, result = _replay_directory(path, ctx)
        corrupt = result is None
        scan = None if result is None else result.scan
        if scan is not None and scan.torn_bytes and (scan.torn_reason or "").startswith(DAMAGED_FINAL):
            corrupt = True  # the state before it is sound (receipts are still checked below)
            damaged_final = next((p for p in report.problems if DAMAGED_FINAL in p), scan.torn_reason)
        if result is not None and not args.no_sessions:
            candidates = _session_receipts(result) + candidates
    else:
        report = verify(path)
        corrupt = not report.ok
    checks = []
    if candidates and (not corrupt or damaged_final is not None):
        results = verify_receipts(path, [r for _, r in candidates])
        checks = [{**origin, **check.to_dict()} for (origin, _), check in zip(candidates, results)]
    failed = [c for c in checks if not c["ok"]]
    sessions: dict[str, dict[str, Any]] = {}
    for c in checks:
        if c["source"] == "session":
            s = sessions.setdefault(c["session"], {"name": c["session"], "turns": set(), "receipts": 0, "failed": 0})
            s["turns"].add(c["turn"])
            s["receipts"] += 1
            s["failed"] += 0 if c["ok"] else 1
    session_rows = [{**s, "turns": len(s["turns"]), "ok": s["failed"] == 0} for s in sessions.values()]
    ok = report.ok and not failed
    ctx.emit({"ok": ok, "path": str(path), "kind": kind, "report": asdict(report),
              "receipts": {"checked": len(checks), "matched": len(checks) - len(failed), "failed": len(failed),
                           "items": checks},
              "sessions": session_rows})
    ctx.line(str(report))
    if checks:
        ctx.line(f"  receipts re-executed: {len(checks)}, matching: {len(checks) - len(failed)}")
        for s in session_rows:
            ctx.line(f"    session {s['name']}: {s['turns']} turns, {s['receipts']} receipts, "
                     f"{'all match' if s['ok'] else str(s['failed']) + ' FAILED'}")
        for c in failed:
            where = (f"session {c['session']} turn {c['turn']} receipt {c['index']}" if c["source"] == "session"
                     else f"{c['file']} receipt {c['index']}")
            ctx.line(f"  {c['status']}: {where}: {c['message']}")
    if damaged_final is not None:
        return ctx.fail(CORRUPT, f"{path} is corrupt: {damaged_final}")
    if corrupt:
        return ctx.fail(CORRUPT, f"{path} is corrupt: {report.problems[0]}")
    if not ok:
        first = report.problems[0] if report.problems else f"{failed[0]['status']}: {failed[0]['message']}"
        return ctx.fail(FAILED, f"verification failed ({len(report.problems)} store problems, "
                        f"{len(failed)} of {len(checks)} receipts not matching): {first}")
    return OK
