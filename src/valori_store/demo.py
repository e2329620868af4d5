"""A guided tour of valori-store: ``python -m valori_store.demo`` (``make demo``).

It builds a durable store from the bundled corpus (embedded with
:class:`~valori_store.embedder.HashingEmbedder`), searches it (with filters, and showing
an exact tie ordered by id), checkpoints it, changes it, restores the checkpoint, then
closes, reopens and verifies it from disk, printing the state hash at every step.

The output is the same on every run and machine except the store path and the timing
lines (which start with ``#``). The demo checks its own claims (restored hash equals the
checkpoint's, the tie rows really tie, ...) and exits non-zero with one line on stderr if
any does not hold.

Options: ``--keep DIR`` builds in ``DIR/store`` and keeps it (instead of a temporary
directory that is removed); ``--quiet`` prints only the final summary table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from .corpus import load_corpus
from .embedder import HashingEmbedder
from .records import Hit
from .store import ValoriStore
from .verify import verify

DIM = 384
CHECKPOINT_LABEL = "after-ingest"
TEXT_WIDTH = 56

#: (query text, filter or None, k). The last one shows a tie between exact duplicates.
QUERIES: tuple[tuple[str, Mapping[str, Any] | None, int], ...] = (
    ("how do I bake bread", {"topic": "cooking"}, 3),
    ("interest rates and inflation", {"year": {"$gte": 2020}}, 3),
    ("how much salt in pasta water", None, 3),
)
TIE_IDS = ("doc-016", "doc-024")  # same text and metadata in the corpus

DELETE_IDS = ("doc-024", "doc-060")  # one copy of each duplicated document
NEW_DOC = (
    "doc-061",
    "Kneading bread dough develops gluten, so the bread can rise and bake into an airy loaf.",
    {"topic": "cooking", "year": 2024, "difficulty": "easy", "tags": ["bread", "dough"]},
)


class DemoError(Exception):
    """One of the demo's own checks failed (a claim it prints would be false)."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise DemoError(message)


def _shorten(text: str | None, width: int = TEXT_WIDTH) -> str:
    text = "" if text is None else " ".join(text.split())
    return text if len(text) <= width else text[: width - 3].rstrip() + "..."


def _table(headers: list[str], rows: list[list[str]], right: set[int]) -> list[str]:
    """Aligned text table; columns in ``right`` are right-aligned, the last is never padded."""
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    out = []
    for row in [headers, *rows]:
        cells = []
        for i, cell in enumerate(row):
            last = i == len(row) - 1
            if i in right:
                cells.append(cell.rjust(widths[i]))
            else:
                cells.append(cell if last else cell.ljust(widths[i]))
        out.append("  ".join(cells).rstrip())
    return out


def _hit_rows(hits: list[Hit]) -> list[str]:
    rows = [[str(n), h.id, f"{h.score:.6f}", str(h.raw), _shorten(h.text)] for n, h in enumerate(hits, 1)]
    return _table(["rank", "id", "score", "raw", "text"], rows, right={0, 2, 3})


def _filter_text(flt: Mapping[str, Any] | None) -> str:
    return "none" if flt is None else json.dumps(flt, ensure_ascii=False)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"


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
        except UnicodeEncodeError:  # a terminal that cannot show e.g. "crème brûlée"
            enc = getattr(stream, "encoding", None) or "ascii"
            stream.write(line.encode(enc, "backslashreplace").decode(enc) + "\n")


def run(root: Path, say: Callable[..., None]) -> dict[str, float]:
    """Run the tour in directory ``root`` (the store goes in ``root/"store"``); returns timings."""
    timings: dict[str, float] = {}
    clock = time.perf_counter
    start = clock()
    path = root / "store"
    summary: list[tuple[str, str]] = []

    say("valori-store demo: a durable, deterministic vector memory")
    say(f"store directory: {path}")
    say()

    # 1. Build ------------------------------------------------------------------------
    t = clock()
    docs = load_corpus()
    embedder = HashingEmbedder(dim=DIM)
    vectors = embedder.embed_many([d.text for d in docs])
    store = ValoriStore.open(path, dim=DIM, metric="cosine", durability="fsync")
    try:
        store.upsert(vectors, ids=[d.id for d in docs], texts=[d.text for d in docs],
                     metadatas=[d.metadata for d in docs])
        built = store.state_hash()
        timings["build"] = clock() - t
        _check(len(store) == len(docs), f"the store holds {len(store)} records, expected {len(docs)}")
        say("1. Build")
        say(f"   {len(docs)} documents from the bundled corpus, embedded with {embedder!r}")
        say(f"   store: dim={store.dim}, metric={store.metric}, durability={store.durability}, "
            f"{len(store)} records, {store.log_length} log events")
        say(f"   state hash: {built}")
        say()
        summary.append(("built", built))

        # 2. Search -------------------------------------------------------------------
        t = clock()
        results = [(q, flt, store.search(embedder.embed(q), k=k, filter=flt)) for q, flt, k in QUERIES]
        timings["search"] = clock() - t
        say("2. Search (exact integer scores: raw = dot product of Q16.16 vectors, score = raw / 2**32;")
        say("   order: raw descending, then id ascending)")
        for n, (q, flt, hits) in enumerate(results, 1):
            say()
            say(f"   query {n}: {q!r}   filter: {_filter_text(flt)}")
            for line in _hit_rows(hits):
                say("   " + line)
        tie_hits = [h for h in results[-1][2] if h.id in TIE_IDS]
        _check(
            [h.id for h in tie_hits] == list(TIE_IDS) and tie_hits[0].raw == tie_hits[1].raw
            and [h.id for h in results[-1][2]][:2] == list(TIE_IDS),
            f"expected {TIE_IDS[0]} and {TIE_IDS[1]} to tie at the top of query {len(results)}",
        )
        say()
        say(f"   tie: {TIE_IDS[0]} and {TIE_IDS[1]} hold the same text, so their raw scores are equal "
            f"({tie_hits[0].raw}); the tie is broken by id")
        say()

        # 3. Checkpoint ---------------------------------------------------------------
        t = clock()
        cp = store.checkpoint(CHECKPOINT_LABEL)
        timings["checkpoint"] = clock() - t
        _check(cp.state_hash == built, "the checkpoint hash differs from the state hash just printed")
        say("3. Checkpoint")
        say(f"   checkpoint {cp.label!r}: seq {cp.seq}, state hash {cp.state_hash}")
        say()
        summary.append(("checkpoint", cp.state_hash))

        # 4. Change -------------------------------------------------------------------
        t = clock()
        removed = store.delete(list(DELETE_IDS))
        new_id, new_text, new_meta = NEW_DOC
        store.upsert(embedder.embed_many([new_text]), ids=[new_id], texts=[new_text], metadatas=[new_meta])
        changed = store.state_hash()
        q, flt, k = QUERIES[0]
        after_change = store.search(embedder.embed(q), k=1, filter=flt)
        timings["change"] = clock() - t
        _check(removed == len(DELETE_IDS), f"deleted {removed} records, expected {len(DELETE_IDS)}")
        _check(changed != cp.state_hash, "the state hash did not change after deletes and an upsert")
        _check(after_change[0].id == new_id, f"expected {new_id} to rank first for query 1 after the change")
        say("4. Change")
        say(f"   deleted {', '.join(DELETE_IDS)} (one copy of each duplicate); "
            f"upserted {new_id}: {_shorten(new_text, 40)!r}")
        say(f"   {len(store)} records; state hash {changed}")
        say(f"   differs from checkpoint: {_yes(changed != cp.state_hash)}")
        say(f"   query 1 now ranks first: {after_change[0].id} (score {after_change[0].score:.6f})")
        say()
        summary.append(("changed", changed))

        # 5. Restore ------------------------------------------------------------------
        t = clock()
        restored_cp = store.restore(CHECKPOINT_LABEL)
        restored = store.state_hash()
        again = store.search(embedder.embed(q), k=k, filter=flt)
        timings["restore"] = clock() - t
        same = again == results[0][2]
        _check(restored == cp.state_hash, "the restored state hash differs from the checkpoint's")
        _check(new_id not in store and all(i in store for i in DELETE_IDS), "restore did not undo the change")
        say("5. Restore")
        say(f"   restored checkpoint {restored_cp.label!r} (seq {restored_cp.seq}): {len(store)} records")
        say(f"   state hash {restored}")
        say(f"   equals checkpoint: {_yes(restored == cp.state_hash)}")
        say(f"   query 1 again gives the same hits, scores and order as in step 2: {_yes(same)}")
        say()
        _check(same, "query 1 after the restore differs from query 1 in step 2")
        summary.append(("restored", restored))
        events_before_close = store.log_length
    finally:
        store.close()

    # 6. Reopen and verify --------------------------------------------------------------
    t = clock()
    with ValoriStore.open(path) as reopened:
        reopened_hash = reopened.state_hash()
        n_reopened = len(reopened)
        n_events = reopened.log_length
    report = verify(path)
    timings["reopen+verify"] = clock() - t
    _check(reopened_hash == cp.state_hash, "the reopened state hash differs from the checkpoint's")
    _check(report.ok, "verify found problems: " + "; ".join(report.problems))
    _check(report.state_hash == reopened_hash, "verify replayed a different state than the reopened store")
    _check(report.events == n_events == events_before_close,
           f"verify replayed {report.events} events, the log holds {n_events}")
    say("6. Close, reopen from disk and verify")
    say(f"   reopened with ValoriStore.open(path): {n_reopened} records, {n_events} log events")
    say(f"   state hash {reopened_hash}")
    say(f"   equals checkpoint: {_yes(reopened_hash == cp.state_hash)} (the restore was the last event)")
    say(f"   verify: {str(report).splitlines()[0]}")
    counts = ", ".join(f"{k} {v}" for k, v in sorted(report.event_counts.items()))
    say(f"   events replayed: {report.events} ({counts})")
    say()
    summary.append(("reopened", reopened_hash))

    # 7. Summary ----------------------------------------------------------------------
    rows = [[step, h[:16], _yes(h == cp.state_hash)] for step, h in summary]
    say("Summary", always=True)
    for line in _table(["step", "state hash (first 16 hex)", "equals checkpoint?"], rows, right=set()):
        say("   " + line, always=True)
    timings["total"] = clock() - start
    return timings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m valori_store.demo",
        description="Build, search, checkpoint, change, restore, reopen and verify a durable valori store.",
    )
    p.add_argument("--keep", metavar="DIR", type=Path,
                   help="build the store in DIR/store and keep it (default: a temporary directory, removed)")
    p.add_argument("--quiet", action="store_true", help="print only the final summary table")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed by argparse
        return exc.code if isinstance(exc.code, int) else 2
    say = _Printer(args.quiet)
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
        timings = run(root, say)
    except Exception as exc:  # noqa: BLE001 - one clear line, non-zero exit
        what = str(exc) if isinstance(exc, DemoError) else f"{type(exc).__name__}: {exc}"
        sys.stderr.write("valori-store demo failed: " + " ".join(what.split()) + "\n")
        return 1
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if not args.quiet:
        say("# timings (s): " + ", ".join(f"{k} {v:.3f}" for k, v in timings.items()))
        if args.keep is not None:
            say(f"# store kept in {args.keep / 'store'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
