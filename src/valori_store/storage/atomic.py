"""Atomic file writes: temp file, fsync, rename, directory fsync (every OS call through
:mod:`.faults`, so a failure raises StorageError / DiskFullError)."""

from __future__ import annotations

import itertools
import os
import re
import threading
from pathlib import Path

from valori_store.storage import faults, page_cache
from valori_store.storage.prealloc import reserve

_COUNTER = itertools.count()
#: Names :func:`temp_name` gives: ``.<target name>.tmp-<pid>-<thread>-<n>``.
TEMP_NAME = re.compile(r"^\..+\.tmp-\d+-\d+-\d+$")


def fsync_dir(path: Path) -> None:
    """fsync a directory so a rename inside it is durable."""
    faults.fsync_dir(path)


def temp_name(target: Path) -> Path:
    """A temp file beside ``target``, unique per process, thread and call (so concurrent
    writers of one path never share one)."""
    return target.with_name(f".{target.name}.tmp-{os.getpid()}-{threading.get_ident()}-{next(_COUNTER)}")


def is_temp_name(name: str, suffix: str = "") -> bool:
    """True if ``name`` is a temp file :func:`temp_name` made (for a target ending in ``suffix``)."""
    return bool(TEMP_NAME.match(name)) and name[1:].split(".tmp-")[0].endswith(suffix)


def remove_temp_files(folder: Path, suffix: str = "") -> int:
    """Delete the temp files of interrupted atomic writes in ``folder`` (targets ending in
    ``suffix``); returns how many. Only for a folder whose writer holds its lock (no write
    of it can be in progress)."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if is_temp_name(name, suffix):
            try:
                os.unlink(folder / name)
                removed += 1
            except OSError:
                pass
    return removed


def write_atomic(path: str | os.PathLike[str], data: bytes | memoryview, sync_dir: bool = True) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.
    ``sync_dir=False`` leaves the directory fsync to the caller (after a batch of files).

    A failed write, fsync or rename raises StorageError (DiskFullError when out of space)
    and leaves ``path`` as it was (the temp file is removed). A failed directory fsync
    (after the rename) raises too: ``path`` then holds the new data, which may not survive
    a crash. Opening the temp file can raise the usual OSError (FileNotFoundError for a
    missing folder, PermissionError...).
    """
    target = Path(path)
    tmp = temp_name(target)
    what = str(tmp)
    try:
        with open(tmp, "wb", buffering=0) as fh:
            if len(data) >= 1 << 20:
                reserve(fh.fileno(), 0, len(data))
            faults.write_all(fh, data, what)
            faults.fsync(fh.fileno(), what)
            page_cache.drop(fh.fileno(), 0, len(data))  # on disk now: its cached pages can go
        faults.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync_dir:
        fsync_dir(target.parent)
