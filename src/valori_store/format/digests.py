"""The one digest construction used by every format: tagged SHA-256.

``tagged(tag)`` is SHA-256 whose input starts with ``tag`` and a zero byte, so digests of
different kinds (state, log chain, images) can never be confused. SHA-256 from hashlib
is used because it is hardware-accelerated on current x86-64 and ARM64 CPUs (about twice
BLAKE2b's speed here); its output is identical everywhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

STATE = b"valori-state-v1"
LOG = b"valori-log-v1"
IMAGE = b"valori-image-v1"
SNAPSHOT = b"valori-snapshot-v2"
IMAGE_V2 = b"valori-image-v2"
PAGE = b"valori-page-v2"
BASE = b"valori-base-v1"
SIZE = 32


def tagged(tag: bytes) -> Any:
    """A fresh SHA-256 hasher that has already absorbed ``tag || 0x00``."""
    h = hashlib.sha256()
    h.update(tag + b"\x00")
    return h
