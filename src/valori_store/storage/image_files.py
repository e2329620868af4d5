"""Checkpoint image files of a store directory: write, load, pick the one recovery uses.

An image (format in :mod:`valori_store.format.images`) is the state at one checkpoint plus
the log position and chain hash right after that checkpoint's event, so recovery and
restore need not replay the whole log.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from valori_store.errors import CorruptFileError
from valori_store.format import images
from valori_store.format.frames import Frame
from valori_store.records import Checkpoint
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog
from valori_store.storage.layout import image_files, image_path


class RecoveryWarning(UserWarning):
    """Recovery worked around a problem (a skipped image, a failed image write...)."""


def write_image(root: Path, seq: int, log: FileLog, checkpoints: list[Checkpoint], snap: bytes) -> None:
    """Write the image of checkpoint ``seq`` atomically (the log is synced first)."""
    log.sync()
    write_atomic(image_path(root, seq), images.encode(seq, log.end, log.chain, checkpoints, snap))


def load_image(root: Path, seq: int) -> images.Image | None:
    """The image of checkpoint ``seq`` if present and valid, else None."""
    path = image_path(root, seq)
    try:
        data = path.read_bytes()
        return None if images.version_of(data) == 2 else images.decode(data, str(path))
    except (OSError, CorruptFileError):
        return None


def usable_image(root: Path, frames: list[Frame]) -> images.Image | None:
    """The newest image that verifies and whose position and chain hash match the log.

    An image that fails its digest is skipped with a RecoveryWarning. An image that does
    not match the log (e.g. written before a torn tail was cut off) is skipped silently:
    it describes a state the log no longer leads to.
    """
    for path in reversed(image_files(root)):
        try:
            data = path.read_bytes()
            if images.version_of(data) == 2:
                continue  # a page manifest (spec 2): storage/page_store.py reads those
            img = images.decode(data, str(path))
        except CorruptFileError as exc:
            warnings.warn(f"skipping unusable checkpoint image: {exc}", RecoveryWarning, stacklevel=4)
            continue
        if img.seq < len(frames) and frames[img.seq].end == img.log_end and frames[img.seq].chain == img.chain:
            return img
    return None


def remove_stale_images(root: Path, log_end: int) -> None:
    """Delete images (of either version) of log positions that a torn-tail cut removed."""
    for path in image_files(root):
        try:
            data = path.read_bytes()
            end = (images.decode_manifest(data, str(path)) if images.version_of(data) == 2
                   else images.decode(data, str(path))).log_end
        except CorruptFileError:
            continue
        if end > log_end:
            path.unlink()
