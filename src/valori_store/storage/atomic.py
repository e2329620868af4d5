"""Atomic file writes: temp file, fsync, rename, directory fsync."""

from __future__ import annotations

import itertools
import os
import threading
from pathlib import Path

from valori_store.storage import page_cache
from valori_store.storage.prealloc import reserve

_COUNTER = itertools.count()


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_name(target: Path) -> Path:
    """A temp file beside ``target``, unique per process, thread and call (so concurrent
    writers of one path never share one)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}-{next(_COUNTER)}")


def write_atomic(path: str | os.PathLike[str], data: bytes | memoryview, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.
    ``sync_dir=False`` leaves the directory fsync to the caller (after a batch of files)."""
    target = Path(path)
    tmp = temp_name(target)
    try:
        with open(tmp, "wb") as fh:
            if len(data) >= 1 << 20:
                reserve(fh.fileno(), 0, len(data))
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
            page_cache.drop(fh.fileno(), 0, len(data))  # on disk now: its cached pages can go
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(target.parent)
