"""The one-writer lock of a store directory (an exclusive ``flock`` on ``<dir>/LOCK``)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from valori_store.errors import LockedError
from valori_store.storage.layout import lock_path


def acquire_lock(root: Path) -> int:
    """Take the directory's exclusive lock (a file descriptor) or raise LockedError."""
    fd = os.open(lock_path(root), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise LockedError(
            f"{root} is open for writing by another ValoriStore (in this or another process); "
            f"close it first, or load a snapshot read-only with ValoriStore.load"
        ) from None
    return fd


def release_lock(fd: int) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
