"""``valori-store diff``: records added, removed and changed between two states.

``diff PATH --from A --to B`` compares two points of one store's history (``head``, a
checkpoint seq, ``SESSION:TURN`` or a label; a missing side means ``head``);
``diff PATH_A PATH_B`` compares two stores or snapshots (``--from`` then selects the
point in PATH_A and ``--to`` the point in PATH_B). A record is *changed* when its stored
vector, text or metadata differs. Every list is sorted by id (UTF-8 bytes). Read-only.
"""

from __future__ import annotations

import argparse
from typing import Any

from valori_store.cli.common import FAILED, OK, Ctx, UsageError, short
from valori_store.cli.sources import Point, Source, open_source, resolve, state_of
from valori_store.errors import InputError
from valori_store.state.table import RecordTable

HELP = "show records added, removed and changed between two checkpoints or two stores"

Fingerprint = dict[str, tuple[bytes, "str | None", bytes]]


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("diff", parents=parents, help=HELP, description=HELP + ". Points: head, a checkpoint seq, "
                       "SESSION:TURN (e.g. alice:2) or a checkpoint label.")
    p.add_argument("paths", metavar="PATH", nargs="+", help="one store (with --from/--to) or two stores/snapshots")
    p.add_argument("--from", dest="from_", metavar="A", default=None, help="the older point (default: head)")
    p.add_argument("--to", metavar="B", default=None, help="the newer point (default: head)")
    p.add_argument("--exit-code", action="store_true", help="exit 1 when the states differ (like git diff)")


def fingerprint(table: RecordTable) -> Fingerprint:
    """id -> (stored vector bytes, b"" for a record without a vector; text; canonical metadata bytes)."""
    matrix = table.matrix
    return {table.ids[r]: (matrix[r].tobytes() if table.has_vector(r) else b"", table.texts[r], table.metas[r])
            for r in range(table.n)}


def compare(a: Fingerprint, b: Fingerprint) -> dict[str, Any]:
    """Ids added (in b only), removed (in a only) and changed, each sorted by UTF-8 bytes."""
    key = lambda s: s.encode("utf-8")  # noqa: E731
    added = sorted((i for i in b if i not in a), key=key)
    removed = sorted((i for i in a if i not in b), key=key)
    changed = []
    for rid in sorted((i for i in a if i in b), key=key):
        fields = [name for name, x, y in zip(("vector", "text", "metadata"), a[rid], b[rid]) if x != y]
        if fields:
            changed.append({"id": rid, "fields": fields})
    return {"added": added, "removed": removed, "changed": changed,
            "counts": {"added": len(added), "removed": len(removed), "changed": len(changed),
                       "unchanged": sum(1 for i in a if i in b) - len(changed)}}


def _side(src: Source, point: Point) -> dict[str, Any]:
    return {"path": str(src.path), "kind": src.kind, "point": point.spec, "what": point.what, "seq": point.seq,
            "state_hash": point.state_hash}


def _load(src: Source, point: Point, ctx: Ctx) -> Fingerprint:
    if point.head:
        with state_of(src, point) as table:
            return fingerprint(table)
    label = f"replay {src.path.name} to {point.spec}"
    with ctx.progress(point.seq + 1, label, unit=" events") as bar, \
            state_of(src, point, lambda fr: bar.update(fr.seq + 1)) as table:
        return fingerprint(table)


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    if len(args.paths) > 2:
        raise UsageError(f"diff takes one store (with --from/--to) or two stores, got {len(args.paths)} paths")
    if len(args.paths) == 1 and args.from_ is None and args.to is None:
        raise UsageError("diff PATH needs --from and/or --to (or give two paths: diff PATH_A PATH_B)")
    src_a = open_source(args.paths[0])
    src_b = src_a if len(args.paths) == 1 else open_source(args.paths[1])
    try:
        pa = resolve(src_a, args.from_ or "head")
        pb = resolve(src_b, args.to or "head")
        if (src_a.store.dim, src_a.store.metric) != (src_b.store.dim, src_b.store.metric):
            raise InputError(f"cannot diff a dim {src_a.store.dim} {src_a.store.metric} store with a dim "
                             f"{src_b.store.dim} {src_b.store.metric} store: their vectors are not comparable")
        result = compare(_load(src_a, pa, ctx), _load(src_b, pb, ctx))
    finally:
        src_a.close()
        if src_b is not src_a:
            src_b.close()
    same = not (result["added"] or result["removed"] or result["changed"])
    ctx.emit({"ok": True, "identical": same, "from": _side(src_a, pa), "to": _side(src_b, pb), **result})
    ctx.line(f"from {src_a.path} @ {pa.what}  {short(pa.state_hash)}")
    ctx.line(f"to   {src_b.path} @ {pb.what}  {short(pb.state_hash)}")
    for rid in result["added"]:
        ctx.line(f"+ {rid}")
    for rid in result["removed"]:
        ctx.line(f"- {rid}")
    for c in result["changed"]:
        ctx.line(f"~ {c['id']} ({', '.join(c['fields'])})")
    n = result["counts"]
    ctx.line(f"{n['added']} added, {n['removed']} removed, {n['changed']} changed, {n['unchanged']} unchanged")
    return FAILED if (args.exit_code and not same) else OK
