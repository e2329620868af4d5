"""``valori-store replay PATH --to POINT --out OUT``: rebuild a past state as a new store.

The log is replayed from empty up to POINT (a checkpoint seq, ``SESSION:TURN``, a label,
or ``head``) with every frame and recorded digest checked, and the result must equal the
point's recorded state hash. Then:

- ``OUT`` ending in ``.vsnap`` receives the canonical snapshot of that state;
- any other ``OUT`` (absent, or an empty directory) becomes a NEW durable store whose log
  is the source log's exact prefix up to POINT (for ``SESSION:TURN`` up to and including
  the turn's note, so the turn and its receipts come along) plus the image of POINT (and,
  from a compacted source, its base image). Its history, sessions and receipts are the
  source's up to that point. A POINT before a compaction is no longer available.

The output is reopened (``ValoriStore.open`` / ``ValoriStore.load``) and its state hash
compared with the point's; exit 1 if they differ. The source is never modified.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from valori_store import ValoriStore
from valori_store.cli.common import FAILED, OK, Ctx
from valori_store.cli.sources import open_source, resolve
from valori_store.errors import InputError
from valori_store.format import events, images
from valori_store.format.frames import Frame
from valori_store.state.table import RecordTable
from valori_store.storage import layout, page_store
from valori_store.storage.atomic import fsync_dir, write_atomic
from valori_store.storage.state_at import base_loader, compacted_before, replay_result

HELP = "replay the log up to a checkpoint into a new store directory (or a .vsnap snapshot)"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", parents=parents, help=HELP, description=HELP + "; checks the result's state "
                       "hash against the checkpoint's.")
    p.add_argument("path", metavar="PATH", help="source store directory (not modified)")
    p.add_argument("--to", required=True, metavar="POINT",
                   help="checkpoint seq, SESSION:TURN (e.g. alice:2), checkpoint label, or head")
    p.add_argument("--out", required=True, metavar="OUT",
                   help="new store directory (must not exist, or be empty), or a snapshot file ending in .vsnap")


def _check_out(out: Path) -> str:
    if out.suffix == ".vsnap":
        if out.is_dir():
            raise InputError(f"--out {out} is a directory; a .vsnap output is a snapshot file")
        if out.exists():
            raise InputError(f"--out {out} already exists; replay never overwrites (remove it or pick another)")
        if not out.parent.is_dir():
            raise InputError(f"--out {out}: directory {out.parent} does not exist")
        return layout.SNAPSHOT
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(f"--out {out} already exists and is not an empty directory; replay writes a NEW store")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: directory {out.parent} does not exist")
    return layout.DIRECTORY


def _write_directory(out: Path, prefix: memoryview, image: bytes | None, image_seq: int,
                     paged: Sequence[tuple[RecordTable, Frame]] = ()) -> None:
    """Create the new store directory atomically (built under a temp name, then renamed);
    ``paged`` are (state, frame) pairs written as version-2 images after that frame."""
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    try:
        layout.images_dir(tmp).mkdir(parents=True)
        write_atomic(layout.log_path(tmp), prefix)
        if image is not None:
            write_atomic(layout.image_path(tmp, image_seq), image)
        for state, frame in paged:
            page_store.write_image(tmp, state, frame.seq, frame.end, frame.chain)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    fsync_dir(out.parent)


def run(args: argparse.Namespace, ctx: Ctx) -> int:
    out = Path(args.out)
    out_kind = _check_out(out)
    src = open_source(args.path)
    try:
        if src.kind != layout.DIRECTORY:
            raise InputError(f"{src.path} is a snapshot file (no log to replay); replay takes a store directory")
        point = resolve(src, args.to)
        log = src.log
    finally:
        src.close()
    if point.seq < log.base_seq:
        raise compacted_before(point.seq, log.base_seq)
    between = [log.frame(s) for s in range(point.seq + 1, point.cut + 1)]
    cut = point.cut if all(f.kind == events.NOTE for f in between) else point.seq
    end = log.frame(cut).end
    with ctx.progress(cut + 1, f"replay to {point.spec}", unit=" events") as bar:
        result = replay_result(memoryview(log.data)[:end], str(log.path), cut, check_digests=True,
                               on_event=lambda frame: bar.update(frame.seq + 1), root=src.path)
    table = result.table
    replayed = table.state_hash()
    if replayed != point.state_hash:
        return ctx.fail(FAILED, f"replaying {src.path} to {point.what} gives state {replayed}, not the recorded "
                        f"{point.state_hash}; run valori-store verify {src.path}")
    snap = table.snapshot_bytes()
    if out_kind == layout.SNAPSHOT:
        write_atomic(out, snap)
        reopened = ValoriStore.load(out)
    else:
        at = log.frame(point.seq)
        if table.spec >= 2:  # a paged image of POINT (and a compacted source's base image, which its log needs)
            base = None
            if log.base_seq:
                first = log.frame(log.base_seq)
                base_ev = log.decode(first)
                assert isinstance(base_ev, events.Base)
                loader = base_loader(src.path)
                assert loader is not None
                base = (loader(log.base_seq, base_ev), first)
            _write_directory(out, memoryview(log.data)[:end], None, point.seq,
                             paged=[(table, at)] + ([base] if base is not None else []))
        else:
            image = None
            if at.kind == events.CHECKPOINT:
                cps = [c for c in result.checkpoints if c.seq <= point.seq]
                image = images.encode(point.seq, at.end, at.chain, cps, snap)
            _write_directory(out, memoryview(log.data)[:end], image, point.seq)
        reopened = ValoriStore.open(out)
    try:
        final, records, n_events = reopened.state_hash(), len(reopened), reopened.log_length
    finally:
        reopened.close()
    match = final == point.state_hash
    ctx.emit({"ok": match, "path": str(src.path), "to": {"point": point.spec, "what": point.what, "seq": point.seq},
              "out": str(out), "out_kind": out_kind, "events_replayed": cut + 1, "records": records,
              "state_hash": final, "expected_state_hash": point.state_hash, "match": match,
              "out_events": n_events if out_kind == layout.DIRECTORY else None})
    ctx.line(f"replayed {src.path} to {point.what}: {cut + 1} events, {records} records")
    ctx.line(f"wrote {out_kind} {out}")
    ctx.line(f"state hash {final}")
    ctx.line(f"equals the recorded state hash of {point.what}: {'yes' if match else 'NO'}")
    if not match:
        return ctx.fail(FAILED, f"{out} reopened with state {final}, expected {point.state_hash}")
    return OK
