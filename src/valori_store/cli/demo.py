"""The agent-session story of valori-store: ``python -m valori_store.cli.demo`` (``make demo``).

An assistant's memory lives in a durable store in a temporary directory: the bundled
corpus as its knowledge base, plus what the user says, written turn by turn through the
LangChain ``ValoriVectorStore`` and retrieved with its retriever, with the built-in
:class:`~valori_store.embedder.HashingEmbedder`. Every turn is a session turn: a
checkpoint of the memory plus a receipt for each retrieval. The demo then rewinds the
memory to an earlier turn and repeats that turn's question (bit-identical answer), closes
the store, reopens it in a **fresh process** that re-executes every recorded retrieval from
the log, and shows that an edited receipt is caught.

The output is the same on every run and machine except the store path and the timing
lines (which start with ``#``). The demo checks its own claims and exits non-zero with one
line on stderr if any does not hold. Options: ``--keep DIR`` builds in ``DIR/store`` and
keeps it; ``--quiet`` prints only the summary; ``--audit PATH`` is the fresh-process
audit (JSON on stdout), used by the demo itself.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import valori_store
from valori_store import ValoriStore, verify
from valori_store.corpus import load_corpus
from valori_store.embedder import HashingEmbedder
from valori_store.receipts import Receipt, verify_receipt

SESSION = "dinner-party"
TEXT_WIDTH = 44


@dataclass(frozen=True)
class TurnScript:
    """One user turn: what they say (stored in memory under ``memory_id``) and the question
    the assistant then asks its memory (with an optional metadata filter)."""

    says: str
    memory_id: str
    question: str
    filter: dict[str, Any] | None = None


TURNS: tuple[TurnScript, ...] = (
    TurnScript("I'm baking sourdough bread for a dinner party on Saturday.", "mem-plan",
               "how do I bake a good loaf of bread"),
    TurnScript("Everyone coming eats everything, no allergies.", "mem-guests",
               "what should I cook for my guests", {"kind": "memory"}),
    TurnScript("My oven only reaches 220 degrees.", "mem-oven",
               "what oven temperature and time for baking bread"),
    TurnScript("Correction: one guest is gluten free, so no wheat flour.", "mem-guests",
               "what should I cook for my guests", {"kind": "memory"}),
)
REWIND_TO = 2  # turn 4 repeats turn 2's question after a correction: rewinding brings turn 2's answer back


class DemoError(Exception):
    """One of the demo's own checks failed (a claim it prints would be false)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise DemoError(message)


def _shorten(text: str | None, width: int = TEXT_WIDTH) -> str:
    text = "" if text is None else " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _table(headers: list[str], rows: list[list[str]], right: frozenset[int] | set[int] = frozenset()) -> list[str]:
    """Aligned text table; columns in ``right`` are right-aligned, the last is never padded."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    out = []
    for row in [headers, *rows]:
        cells = []
        for i, cell in enumerate(row):
            if i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if i == len(row) - 1 else cell.ljust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return out


def _yes(flag: bool) -> str:
    return "yes" if flag else "NO"


class _Printer:
    """Writes lines to stdout (looked up at call time, so capture works); quiet drops them."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def __call__(self, line: str = "", *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        stream = sys.stdout
        try:
            stream.write(line + "\n")
        except UnicodeEncodeError:  # a terminal that cannot show some character
            enc = getattr(stream, "encoding", None) or "ascii"
            stream.write(line.encode(enc, "backslashreplace").decode(enc) + "\n")


# ------------------------------------------------------------------------------ the audit


def audit(path: Path) -> dict[str, Any]:
    """Reopen the store at ``path`` and re-execute every recorded retrieval (fresh process)."""
    report = verify(path)
    with ValoriStore.open(path) as store:
        out: dict[str, Any] = {
            "pid": os.getpid(), "state_hash": store.state_hash(), "records": len(store),
            "events": store.log_length, "verify_ok": report.ok, "verify_problems": report.problems, "turns": [],
        }
        for check in store.session(SESSION).verify():
            out["turns"].append({
                "number": check.turn.number, "state_hash": check.turn.state_hash,
                "receipts": len(check.receipts), "matched": sum(c.ok for c in check.receipts),
                "statuses": [c.status for c in check.receipts],
            })
    return out


def _audit_in_fresh_process(path: Path) -> dict[str, Any]:
    env = dict(os.environ)
    src = str(Path(valori_store.__file__).resolve().parents[1])  # the directory holding the package
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    proc = subprocess.run([sys.executable, "-m", "valori_store.cli.demo", "--audit", str(path)],
                          capture_output=True, text=True, env=env, timeout=600)
    if proc.returncode != 0:
        raise DemoError(f"the fresh-process audit failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


# ------------------------------------------------------------------------------ the story


def run(root: Path, say: Callable[..., None], facts: dict[str, Any] | None = None) -> dict[str, float]:
    """Tell the story in ``root`` (the store goes in ``root/"store"``); returns timings.

    ``facts``, when given, receives what was shown as plain data (for ``--json``)."""
    facts = {} if facts is None else facts
    try:
        from langchain_core.documents import Document

        from valori_store.langchain import ValoriVectorStore
    except ImportError as exc:
        raise DemoError(f"the demo uses the LangChain adapter: pip install 'valori-store[langchain]' ({exc})") from None
    clock = time.perf_counter
    timings: dict[str, float] = {}
    start = t = clock()
    path = root / "store"
    embedder = HashingEmbedder()
    summary: list[list[str]] = []

    say("valori-store demo: an assistant's memory, recorded, rewound, reopened and audited")
    say(f"store directory: {path}")
    say()

    vs = ValoriVectorStore(embedder, path=path, dim=embedder.dim, durability="fsync")
    store = vs.store
    assert store is not None
    try:
        docs = load_corpus()
        vs.add_documents([Document(id=d.id, page_content=d.text, metadata={"kind": "knowledge", **d.metadata})
                          for d in docs])
        kb_hash = store.state_hash()
        timings["knowledge base"] = clock() - t
        say("1. Knowledge base")
        say(f"   {len(docs)} documents from the bundled corpus, embedded with {embedder!r},")
        say(f"   added through the LangChain ValoriVectorStore (durable, fsync, {store.metric}, dim {store.dim})")
        say(f"   state hash {kb_hash}")
        say()
        summary.append(["knowledge base", kb_hash[:16], "", ""])
        facts.update(store=str(path), knowledge_base={"documents": len(docs), "state_hash": kb_hash})

        # 2. The session ----------------------------------------------------------------
        t = clock()
        session = store.session(SESSION)
        rows: list[list[str]] = []
        for n, turn in enumerate(TURNS, 1):
            vs.add_documents([Document(id=turn.memory_id, page_content=turn.says,
                                       metadata={"kind": "memory", "turn": n})])
            kwargs: dict[str, Any] = {"k": 3}
            if turn.filter is not None:
                kwargs["filter"] = turn.filter
            retriever = vs.as_retriever(search_kwargs=kwargs)
            with session.turn(meta={"user": turn.says, "question": turn.question}) as receipts:
                found = retriever.invoke(turn.question)
            recorded = session.turn_at(n)
            _check(len(receipts) == 1 and receipts[0].ids == [d.id for d in found],
                   f"turn {n}: the receipt does not list the retrieved documents")
            rows.append([str(n), _shorten(turn.says), ", ".join(d.id for d in found),
                         recorded.state_hash[:16], receipts[0].digest[:12]])
        timings["session"] = clock() - t
        turns = session.turns()
        say(f"2. Session {SESSION!r}: each turn stores what the user says, then the assistant asks its memory")
        say("   (LangChain retriever, k=3); the turn records a checkpoint and a receipt of the retrieval")
        say()
        for line in _table(["turn", "user says", "retrieved (best first)", "state hash", "receipt"], rows, {0}):
            say("   " + line)
        say()
        for n, turn in enumerate(TURNS, 1):
            flt = "" if turn.filter is None else f"  filter {json.dumps(turn.filter)}"
            say(f"   turn {n} question: {turn.question!r}{flt}")
        say()
        summary += [[f"turn {t.number}", t.state_hash[:16], "", ""] for t in turns]
        facts["turns"] = [{"number": t.number, "user": t.meta["user"], "question": t.meta["question"],
                           "retrieved": t.receipts[0].ids, "state_hash": t.state_hash,
                           "receipt": t.receipts[0].to_dict()} for t in turns]

        # 3. Rewind -------------------------------------------------------------------
        t = clock()
        before = turns[REWIND_TO - 1]
        later = turns[len(TURNS) - 1]
        session.rewind(REWIND_TO)
        rewound = store.state_hash()
        q = TURNS[REWIND_TO - 1]
        hits, again = store.search_with_receipt(embedder.embed(q.question), k=3, filter=q.filter)
        timings["rewind"] = clock() - t
        identical = again.results == before.receipts[0].results and again.state_hash == before.state_hash
        _check(rewound == before.state_hash, "the rewound state hash differs from the turn's")
        _check(identical, f"turn {REWIND_TO}'s question after the rewind gives another answer")
        _check(later.receipts[0].results != before.receipts[0].results,
               "turn 4 should have answered differently from turn 2 (the correction)")
        say(f"3. Rewind to turn {REWIND_TO} and ask its question again")
        say(f"   turn {len(TURNS)} (after the correction) retrieved: {', '.join(later.receipts[0].ids)}")
        say(f"   rewound state hash {rewound}")
        say(f"   equals turn {REWIND_TO}'s: {_yes(rewound == before.state_hash)}")
        say(f"   answer now: {', '.join(again.ids)}; raw scores {', '.join(map(str, again.raws))}")
        say(f"   identical to turn {REWIND_TO}'s receipt (ids and exact scores): {_yes(identical)}")
        say()
        summary.append([f"rewind to {REWIND_TO}", rewound[:16], "", ""])
        facts["rewind"] = {"to_turn": REWIND_TO, "state_hash": rewound, "retrieved": again.ids,
                           "identical_to_turn": identical}
        final_hash, final_events = store.state_hash(), store.log_length
        saved_receipt = before.receipts[0].to_json()
    finally:
        vs.close()

    # 4. Fresh process audit ------------------------------------------------------------
    t = clock()
    report = _audit_in_fresh_process(path)
    timings["fresh-process audit"] = clock() - t
    _check(report["pid"] != os.getpid(), "the audit did not run in another process")
    _check(report["state_hash"] == final_hash and report["events"] == final_events,
           "the reopened store is not the store that was closed")
    _check(report["verify_ok"], "verify found problems: " + "; ".join(report["verify_problems"]))
    audit_rows = [[str(a["number"]), a["state_hash"][:16], str(a["receipts"]), str(a["matched"]),
                   _yes(a["matched"] == a["receipts"] and a["state_hash"] == turns[a["number"] - 1].state_hash)]
                  for a in report["turns"]]
    all_ok = all(r[-1] == "yes" for r in audit_rows) and len(audit_rows) == len(TURNS)
    say("4. Close, reopen in a fresh process, replay the log, re-execute every receipt")
    say(f"   a new Python process reopened the store: {report['records']} records, {report['events']} log "
        f"events, state hash {report['state_hash'][:16]}")
    say(f"   log verified (checksums, hash chain, state digests): {_yes(report['verify_ok'])}")
    say()
    for line in _table(["turn", "state hash", "receipts", "re-executed identical", "ok"], audit_rows, {0, 2, 3}):
        say("   " + line)
    say()
    _check(all_ok, "a recorded retrieval did not re-execute identically")
    summary += [[f"audit turn {a[0]}", a[1], f"{a[3]}/{a[2]}", a[4]] for a in audit_rows]
    facts["audit"] = {k: v for k, v in report.items() if k != "pid"}

    # 5. Tampering ----------------------------------------------------------------------
    edited = json.loads(saved_receipt)
    edited["results"][0], edited["results"][1] = edited["results"][1], edited["results"][0]
    tampered = verify_receipt(path, edited)
    forged = verify_receipt(path, Receipt(**{k: v for k, v in edited.items() if k != "digest"}).sealed())
    _check(tampered.status == "tampered" and forged.status == "mismatch", "an edited receipt was not caught")
    say("5. Tampering")
    say(f"   turn {REWIND_TO}'s receipt with its top two results swapped: {tampered.status}")
    say(f"   the same edit with a recomputed digest: {forged.status} ({forged.message})")
    say()
    summary += [["edited receipt", "", "", tampered.status], ["re-sealed forgery", "", "", forged.status]]
    facts["tampering"] = {"edited": tampered.status, "resealed_forgery": forged.status}

    say("Summary", always=True)
    for line in _table(["step", "state hash", "receipts ok", "verdict"], summary):
        say("   " + line, always=True)
    timings["total"] = clock() - start
    return timings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m valori_store.cli.demo",
        description="An assistant's memory on valori-store: a recorded session, a rewind, a fresh-process "
                    "audit of every retrieval, and a tampered receipt caught.",
    )
    p.add_argument("--keep", metavar="DIR", type=Path,
                   help="build the store in DIR/store and keep it (default: a temporary directory, removed)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary table")
    p.add_argument("--json", action="store_true", help="print one JSON object with every fact shown (no text)")
    p.add_argument("--audit", metavar="PATH", type=Path, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    if args.audit is not None:
        try:
            sys.stdout.write(json.dumps(audit(args.audit)) + "\n")
        except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
            sys.stderr.write(f"audit failed: {type(exc).__name__}: {exc}\n")
            return 1
        return 0
    say = _Printer(args.quiet or args.json)
    facts: dict[str, Any] = {}
    tmp: Path | None = None
    try:
        if args.keep is not None:
            root = args.keep
            if root.exists() and not root.is_dir():
                raise DemoError(f"--keep {root}: not a directory")
            if (root / "store").exists():
                raise DemoError(f"--keep {root}: {root / 'store'} already exists; remove it or pick another DIR")
            root.mkdir(parents=True, exist_ok=True)
        else:
            root = tmp = Path(tempfile.mkdtemp(prefix="valori-demo-"))
        timings = run(root, (lambda *_, **__: None) if args.json else say, facts)
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        what = str(exc) if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
        sys.stderr.write("valori-store demo failed: " + " ".join(what.split()) + "\n")
        if args.json:
            sys.stdout.write(json.dumps({"ok": False, "error": " ".join(what.split())}) + "\n")
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        sys.stdout.write(json.dumps({"ok": True, **facts, "seconds": timings}, sort_keys=True) + "\n")
        return 0
    if not args.quiet:
        say("# timings (s): " + ", ".join(f"{k} {v:.2f}" for k, v in timings.items()))
        if args.keep is not None:
            say(f"# store kept in {args.keep / 'store'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
