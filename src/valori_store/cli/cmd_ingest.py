"""``valori-store ingest PATH FILES...``: chunk text/markdown files into a durable store.

Each file is chunked deterministically (:mod:`valori_store.cli.chunking`); chunk ``i`` of
``docs/a.md`` (path relative to ``--base``, default the current directory) gets the id
``docs/a.md#00003`` and metadata ``{"source": "docs/a.md", "chunk": 3, "offset": <char
offset>}``. Chunks are embedded with the built-in HashingEmbedder (settings recorded once
in the store's log, see :mod:`valori_store.cli.embedding`) and upserted in batches.
Embedding spaces are never mixed: a store holding records but no embedder record is
refused (exit 2, nothing written) unless ``--adopt-embedder`` is given, and so is a store
whose recorded embedder differs from the requested one.

Idempotent: a chunk whose id already holds the same text and metadata is skipped, so
re-ingesting unchanged files writes nothing and leaves the state hash as it was. Chunks
of a re-ingested file beyond its new chunk count are deleted. Needs the store's write
lock (exit 5 if another process holds it).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from valori_store import ValoriStore, spec
from valori_store.cli import chunking, embedding
from valori_store.cli.common import OK, Ctx
from valori_store.errors import InputError
from valori_store.storage import layout

HELP = "chunk text and markdown files, embed them with the built-in embedder and upsert them"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ingest", parents=parents, help=HELP, description=HELP + " (idempotent). Directories are "
                       "walked recursively for .txt/.text/.md/.markdown files.")
    p.add_argument("path", metavar="PATH", help="store directory (created if absent)")
    p.add_argument("files", metavar="FILES", nargs="+", help="files and/or directories")
    p.add_argument("--chunk-size", type=int, default=1000, help="max characters per chunk (default 1000)")
    p.add_argument("--overlap", type=int, default=100, help="characters shared by consecutive chunks (default 100)")
    p.add_argument("--base", metavar="DIR", default=".",
                   help="ids are file paths relative to DIR (default: the current directory)")
    p.add_argument("--dim", type=int, default=None,
                   help=f"dimension when creating the store (default {embedding.DEFAULT_DIM})")
    p.add_argument("--metric", choices=spec.METRICS, default=None, help="metric when creating the store "
                   "(default cosine)")
    p.add_argument("--batch-size", type=int, default=256, help="chunks per upsert event (default 256)")
    p.add_argument("--checkpoint", metavar="LABEL", default=None, help="record a checkpoint with LABEL afterwards "
                   "(later inspects then start from its image instead of applying the whole log)")
    p.add_argument("--adopt-embedder", action="store_true",
                   help="ingest into a store that holds records but no embedder record (not built by ingest), "
                        "declaring its vectors built-in HashingEmbedder vectors of its dim; refused otherwise")


Chunk = tuple[str, str, dict[str, Any]]  # id, text, metadata


def collect(files: list[str], base: Path, size: int, overlap: int, exclude: Path) -> tuple[int, list[Chunk], list[str]]:
    """(number of files, chunks in id order, relative paths)."""
    sources = chunking.discover(files, base, exclude)
    chunks: list[Chunk] = []
    for f in sources:
        for i, (offset, text) in enumerate(chunking.chunk_text(chunking.read_text(f), size, overlap)):
            chunks.append((f"{f.rel}#{i:05d}", text, {"source": f.rel, "chunk": i, "offset": offset}))
    return len(sources), chunks, [f.rel for f in sources]


def _open(path: Path, dim: int | None, metric: str | None) -> tuple[ValoriStore, bool]:
    if path.is_dir() and layout.exists(path):
        return ValoriStore.open(path, dim=dim, metric=metric, durability="batch"), False
    if path.exists() and not path.is_dir():
        raise InputError(f"{path} is a file; ingest writes to a store directory")
    return ValoriStore.open(path, dim=embedding.DEFAULT_DIM if dim is None else dim, metric=metric or "cosine",
                            durability="batch"), True


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    if args.dim is not None:  # --dim 0 is an error, not "the default"
        try:
            spec.check_dim(args.dim)
        except InputError as exc:
            raise InputError(f"--dim: {exc}") from None
    chunking.check_sizes(args.chunk_size, args.overlap)
    if args.batch_size < 1:
        raise InputError(f"--batch-size must be >= 1, got {args.batch_size}")
    base = Path(args.base)
    if not base.is_dir():
        raise InputError(f"--base {base} is not a directory")
    path = Path(args.path)
    n_files, chunks, rels = collect(args.files, base, args.chunk_size, args.overlap, path)
    store, created = _open(path, args.dim, args.metric)
    try:
        emb, note = embedding.for_ingest(store.dim, store.notes(topic=embedding.TOPIC), len(store),
                                         args.adopt_embedder)
        if note is not None:
            store.annotate(embedding.TOPIC, note)
        existing = {r.id: r for r in store.get([c[0] for c in chunks])}
        todo = [c for c in chunks if not (c[0] in existing and existing[c[0]].text == c[1]
                                          and existing[c[0]].metadata == c[2])]
        updated = sum(1 for c in todo if c[0] in existing)
        new_ids = {c[0] for c in chunks}
        prefixes = tuple(f"{rel}#" for rel in rels)
        stale = [i for i in store.ids() if i.startswith(prefixes) and i not in new_ids] if prefixes else []
        with ctx.progress(len(todo), "ingest", unit=" chunks") as bar:
            for lo in range(0, len(todo), args.batch_size):
                batch = todo[lo: lo + args.batch_size]
                store.upsert(emb.embed_many([c[1] for c in batch]), ids=[c[0] for c in batch],
                             texts=[c[1] for c in batch], metadatas=[c[2] for c in batch])
                bar.advance(len(batch))
        removed = store.delete(stale) if stale else 0
        cp = store.checkpoint(args.checkpoint) if args.checkpoint is not None else None
        if cp is not None:
            store.write_image()  # so the next open and restores start from here
        state, count, dim, metric = store.state_hash(), len(store), store.dim, store.metric
    finally:
        store.close()
    result = {"ok": True, "path": str(path), "created": created, "dim": dim, "metric": metric, "files": n_files,
              "chunks": len(chunks), "added": len(todo) - updated, "updated": updated,
              "unchanged": len(chunks) - len(todo), "removed": removed, "count": count, "state_hash": state,
              "checkpoint": None if cp is None else {"seq": cp.seq, "label": cp.label, "state_hash": cp.state_hash}}
    ctx.emit(result)
    ctx.line(f"{'created' if created else 'updated'} {path} (dim {dim}, {metric})")
    ctx.line(f"{n_files} files, {len(chunks)} chunks: {result['added']} added, {updated} updated, "
             f"{result['unchanged']} unchanged, {removed} stale removed")
    ctx.line(f"{count} records, state hash {state}")
    if cp is not None:
        ctx.line(f"checkpoint {cp.seq} '{cp.label}'")
    return OK
