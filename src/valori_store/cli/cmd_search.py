"""``valori-store search PATH TEXT``: embed a query with the built-in embedder and search.

Read-only (directories are not locked). ``--filter`` takes the filter language as JSON
(docs/filters.md); ``--mmr`` uses the store's deterministic MMR; ``--receipt`` adds the
retrieval receipt (verifiable later with ``valori-store verify PATH --receipts FILE``).
"""

from __future__ import annotations

import argparse
import errno
import json
import os
from pathlib import Path
from typing import Any

from valori_store.cli import embedding
from valori_store.cli.common import OK, Ctx, UsageError, count, snippet, table
from valori_store.cli.sources import open_source
from valori_store.errors import InputError

HELP = "search a store with a text query (built-in HashingEmbedder), optionally with its receipt"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("search", parents=parents, help=HELP, description=HELP + ".")
    p.add_argument("path", metavar="PATH", help="store directory or snapshot file")
    p.add_argument("text", metavar="TEXT", help="the query text")
    p.add_argument("-k", type=count, default=4, help="number of hits (default 4)")
    p.add_argument("--filter", metavar="JSON", help='metadata filter as JSON, e.g. \'{"topic": "cooking"}\'')
    p.add_argument("--mmr", action="store_true", help="maximal marginal relevance (diverse hits)")
    p.add_argument("--fetch-k", type=count, default=20, help="MMR candidates (default 20)")
    p.add_argument("--lambda", dest="lambda_mult", type=float, default=0.5,
                   help="MMR relevance weight in [0, 1] (default 0.5)")
    p.add_argument("--receipt", action="store_true",
                   help="include the retrieval receipt (in full with --json; its digest otherwise)")
    p.add_argument("--save-receipt", metavar="FILE", default=None,
                   help="append the receipt to FILE as one JSON line (verify it with verify --receipts FILE)")


#: Deepest JSON nesting ``--filter`` accepts (the filter language allows 64 levels of
#: operators, two JSON levels each; deeper input is refused before it is parsed).
MAX_FILTER_NESTING = 200


def _nesting(text: str) -> int:
    """The deepest bracket nesting of JSON text (brackets inside strings not counted)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    if _nesting(text) > MAX_FILTER_NESTING:
        raise InputError(f"--filter is nested more than {MAX_FILTER_NESTING} levels deep; flatten the filter")
    try:
        value = json.loads(text)
    except RecursionError:  # pragma: no cover - the nesting check comes first
        raise InputError("--filter is nested too deeply; flatten the filter") from None
    except ValueError as exc:
        raise InputError(f"--filter is not valid JSON ({exc}); e.g. --filter '{{\"topic\": \"cooking\"}}'") from None
    if not isinstance(value, dict):
        raise InputError(f"--filter must be a JSON object, got {type(value).__name__}")
    return value


def check_receipt_target(name: str | None) -> None:
    """Refuse a ``--save-receipt`` target that cannot be appended to, before searching."""
    if name is None:
        return
    target = Path(name)
    if target.is_dir():
        raise UsageError(f"--save-receipt {target} is a directory; pass a file to append the receipt to")
    if not target.parent.is_dir():
        raise UsageError(f"--save-receipt {target}: directory {target.parent} does not exist")


def save_receipt(name: str, line: str) -> None:
    """Append ``line`` to ``name``. Opened non-blocking, so a FIFO nobody reads is an
    error instead of a hang; the write itself blocks as usual."""
    try:
        fd = os.open(name, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise UsageError(f"--save-receipt {name} is a FIFO that nobody reads; nothing was saved") from None
        raise
    os.set_blocking(fd, True)
    with open(fd, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    flt = parse_filter(args.filter)
    if args.k < 0:
        raise InputError(f"-k must be >= 0, got {args.k}")
    check_receipt_target(args.save_receipt)
    src = open_source(args.path)
    try:
        store = src.store
        emb = embedding.for_store(store.dim, store.notes(topic=embedding.TOPIC))
        query = emb.embed(args.text)
        if args.mmr:
            hits, receipt = store.mmr_search_with_receipt(query, k=args.k, fetch_k=args.fetch_k,
                                                          lambda_mult=args.lambda_mult, filter=flt)
        else:
            hits, receipt = store.search_with_receipt(query, k=args.k, filter=flt)
    finally:
        src.close()
    rows = [{"rank": i, "id": h.id, "score": h.score, "raw": str(h.raw), "text": h.text, "metadata": h.metadata}
            for i, h in enumerate(hits, 1)]
    result: dict[str, Any] = {"ok": True, "path": str(src.path), "query": args.text, "k": args.k, "filter": flt,
                              "mode": "mmr" if args.mmr else "search", "state_hash": receipt.state_hash,
                              "hits": rows}
    if args.receipt:
        result["receipt"] = receipt.to_dict()
    if args.save_receipt is not None:  # before any output: a failed save never reports "ok"
        save_receipt(args.save_receipt, receipt.to_json())
    ctx.emit(result)
    if not rows:
        ctx.line("no hits")
    else:
        for line in table(["rank", "id", "score", "text"],
                          [[str(r["rank"]), r["id"], f"{r['score']:.6f}", snippet(r["text"])] for r in rows]):
            ctx.line(line)
    if args.receipt:
        ctx.line(f"receipt {receipt.digest} (event {receipt.seq}, state {receipt.state_hash[:16]}...; "
                 f"--json shows it in full)")
    return OK
