"""Where things are in a store directory, and what kind of path a user gave us.

Layout::

    <dir>/LOCK                exclusive flock held by the one writer
    <dir>/events.vlog         the append-only event log
    <dir>/.events.vlog.compact  a compaction's new log before it is renamed (removed on open)
    <dir>/images/<seq>.vimg   images (seq zero-padded to 12 digits): full images (spec 1) or
                              manifests of pages (spec 2)
    <dir>/pages/<digest>.vpg  pages of spec-2 images, named by their state-trie node digest

Every module that needs a name or a path asks this one.
"""

from __future__ import annotations

from pathlib import Path

from valori_store.errors import InputError, NotFoundError
from valori_store.format.frames import FILE_HEADER_SIZE, FILE_MAGIC

LOG_NAME = "events.vlog"
LOCK_NAME = "LOCK"
IMAGES = "images"
IMAGE_SUFFIX = ".vimg"
PAGES = "pages"
PAGE_SUFFIX = ".vpg"
DIRECTORY, SNAPSHOT = "directory", "snapshot"


def log_path(root: Path) -> Path:
    return root / LOG_NAME


def compact_temp_path(root: Path) -> Path:
    """Where compaction writes the new log before renaming it over the old one."""
    return root / f".{LOG_NAME}.compact"


def lock_path(root: Path) -> Path:
    return root / LOCK_NAME


def images_dir(root: Path) -> Path:
    return root / IMAGES


def image_path(root: Path, seq: int) -> Path:
    return root / IMAGES / f"{seq:012d}{IMAGE_SUFFIX}"


def pages_dir(root: Path) -> Path:
    return root / PAGES


def page_path(root: Path, digest: bytes) -> Path:
    return root / PAGES / f"{digest.hex()}{PAGE_SUFFIX}"


def image_files(root: Path) -> list[Path]:
    """Every image file of a directory, in seq order."""
    folder = images_dir(root)
    return sorted(folder.glob(f"*{IMAGE_SUFFIX}")) if folder.is_dir() else []


def exists(root: Path) -> bool:
    """True if ``root`` holds a store log (created atomically, so complete or absent)."""
    return log_path(root).is_file()


def is_log_file(path: Path) -> bool:
    """True if ``path`` is a file that starts like a store log (not a snapshot)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(FILE_HEADER_SIZE)
    except OSError:
        return False
    return head[:8] == FILE_MAGIC


def classify(path: str | Path) -> str:
    """:data:`DIRECTORY` or :data:`SNAPSHOT` for a usable path; NotFoundError / InputError
    (a store's log file given instead of its directory) otherwise."""
    p = Path(path)
    if p.is_dir():
        if not exists(p):
            raise NotFoundError(f"no valori store at {p} (a directory without {LOG_NAME})")
        return DIRECTORY
    if not p.exists():
        raise NotFoundError(f"no store directory or snapshot file at {p}")
    if is_log_file(p):
        raise InputError(f"{p} is a store's event log; pass its directory {p.parent}")
    return SNAPSHOT
