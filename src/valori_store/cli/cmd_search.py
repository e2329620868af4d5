"""``valori-store search PATH TEXT``: embed a query with the built-in embedder and search.

Read-only (directories are not locked). ``--filter`` takes the filter language as JSON
(docs/filters.md); ``--mmr`` uses the store's deterministic MMR; ``--receipt`` adds the
retrieval receipt (verifiable later with ``valori-store verify PATH --receipts FILE``).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from valori_store.cli import embedding
from valori_store.cli.common import OK, Ctx, snippet, table
from valori_store.cli.sources import open_source
from valori_store.errors import InputError

HELP = "search a store with a text query (built-in HashingEmbedder), optionally with its receipt"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("search", parents=parents, help=HELP, description=HELP + ".")
    p.add_argument("path", metavar="PATH", help="store directory or snapshot file")
    p.add_argument("text", metavar="TEXT", help="the query text")
    p.add_argument("-k", type=int, default=4, help="number of hits (default 4)")
    p.add_argument("--filter", metavar="JSON", help='metadata filter as JSON, e.g. \'{"topic": "cooking"}\'')
    p.add_argument("--mmr", action="store_true", help="maximal marginal relevance (diverse hits)")
    p.add_argument("--fetch-k", type=int, default=20, help="MMR candidates (default 20)")
    p.add_argument("--lambda", dest="lambda_mult", type=float, default=0.5,
                   help="MMR relevance weight in [0, 1] (default 0.5)")
    p.add_argument("--receipt", action="store_true",
                   help="include the retrieval receipt (in full with --json; its digest otherwise)")
    p.add_argument("--save-receipt", metavar="FILE", default=None,
                   help="append the receipt to FILE as one JSON line (verify it with verify --receipts FILE)")


def parse_filter(text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputError(f"--filter is not valid JSON ({exc}); e.g. --filter '{{\"topic\": \"cooking\"}}'") from None
    if not isinstance(value, dict):
        raise InputError(f"--filter must be a JSON object, got {type(value).__name__}")
    return value


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    flt = parse_filter(args.filter)
    if args.k < 0:
        raise InputError(f"-k must be >= 0, got {args.k}")
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
    ctx.emit(result)
    if not rows:
        ctx.line("no hits")
    else:
        for line in table(["rank", "id", "score", "text"],
                          [[str(r["rank"]), r["id"], f"{r['score']:.6f}", snippet(r["text"])] for r in rows]):
            ctx.line(line)
    if args.save_receipt is not None:
        with open(args.save_receipt, "a", encoding="utf-8") as fh:
            fh.write(receipt.to_json() + "\n")
    if args.receipt:
        ctx.line(f"receipt {receipt.digest} (event {receipt.seq}, state {receipt.state_hash[:16]}...; "
                 f"--json shows it in full)")
    return OK
