"""Building a store's live state: new in memory, a directory (created or recovered, for
writing or read-only), or a snapshot's content."""

from __future__ import annotations

import os
from pathlib import Path

from valori_store import spec
from valori_store.errors import InputError, NotFoundError
from valori_store.format import events, snapshot
from valori_store.state.table import RecordTable
from valori_store.storage import layout, page_store, recovery
from valori_store.storage.filelog import FileLog, spill_log
from valori_store.store.live import Live

DURABILITY = ("fsync", "batch", "none")


def in_memory(dim: int, metric: str, spec_version: int = spec.SPEC_VERSION) -> Live:
    """An empty in-memory store (its log spilled to an unlinked temporary file); a spec-1
    store only to hold a spec-1 snapshot."""
    dim = spec.check_dim(dim)
    metric = spec.check_metric(metric)
    log = spill_log()
    log.append(events.CREATE, events.encode(events.Create(dim, metric, spec_version)))
    return Live(RecordTable(dim, metric, spec_version), log, [], [])


def directory(path: str | os.PathLike[str], dim: int | None, metric: str | None, durability: str) -> tuple[Live, int]:
    """Open (recover) or create a durable store directory: (live state, bytes of a torn tail cut off)."""
    if durability not in DURABILITY:
        raise InputError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise InputError(f"{root} is a file; ValoriStore.open takes a directory (use ValoriStore.load for snapshots)")
    if layout.exists(root):
        rec = recovery.recover(root, durability, None if dim is None else spec.check_dim(dim),
                               None if metric is None else spec.check_metric(metric))
    else:
        if dim is None:
            raise NotFoundError(f"no valori store at {root}; pass dim= (and metric=) to create one")
        rec = recovery.create(root, spec.check_dim(dim), spec.check_metric(metric or "cosine"), durability)
    assert rec.log is not None
    page_store.remove_stale_temp_files(root)  # left by killed image writes (we hold the lock)
    live = Live(rec.table, rec.log, rec.checkpoints, rec.notes, root, rec.lock_fd)
    image = next(iter(reversed(page_store.manifests(root))), None) if rec.table.spec >= 2 else None
    live.image_end = image.log_end if image is not None and image.log_end <= rec.log.end else 0
    return live, rec.dropped_bytes


def directory_readonly(root: Path, rec: recovery.Recovered | None = None) -> Live:
    """A read-only live state over a directory's head (no lock, nothing written); its log is
    the directory's own log file opened for reading, up to the last valid frame."""
    rec = rec if rec is not None else recovery.recover_readonly(root)
    assert rec.view is not None
    view = rec.view
    log = FileLog(open(view.path, "rb"), view.good_end, view.chain, view.events, "none", durable=False,
                  starts=[f.offset for f in view.frames], first_seq=view.base_seq)
    return Live(rec.table, log, rec.checkpoints, rec.notes, root, read_only=True)


def from_snapshot(data: bytes | bytearray | memoryview) -> Live:
    """An in-memory store holding a snapshot's content (digest and lengths verified); its
    log records the content as one event, in id order."""
    content = snapshot.decode(data)
    live = in_memory(content.dim, content.metric, content.spec)
    if content.count:
        if content.plain is None:
            ev: events.Event = events.Upsert(content.ids, content.rows, content.texts, content.metas)
        else:
            flags = content.plain.tolist()
            has = [i for i, f in enumerate(flags) if not f]
            no = [i for i, f in enumerate(flags) if f]
            ev = events.Write([], events.Upsert([content.ids[i] for i in has], content.rows[has],
                                                [content.texts[i] for i in has], [content.metas[i] for i in has]),
                              events.Plain([content.ids[i] for i in no], [content.texts[i] for i in no],
                                           [content.metas[i] for i in no]))
        live.log.append(ev.kind, events.encode_parts(ev))
        live.table = RecordTable.from_content(content)
    return live
