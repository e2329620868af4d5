"""Give freed scratch memory back to the operating system after large batches.

A large upsert leaves freed temporaries in the heap: its own (a converted copy of the
input, the packed records, and off the in-place append path the stored rows) and, most
often, the caller's (the arrays the batch was built from). glibc keeps such freed memory
in the process heap, so resident memory would stay high after the batch. On glibc systems
``malloc_trim(0)`` returns it; elsewhere this module does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from collections.abc import Callable

#: Batches whose event payload is at least this many bytes trigger a trim.
TRIM_AFTER_BYTES = 4 << 20


def _load_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS...)
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load_trim()


def release_scratch(payload_bytes: int) -> None:
    """Return freed heap memory to the OS if the batch just handled was large."""
    if _TRIM is not None and payload_bytes >= TRIM_AFTER_BYTES:
        _TRIM(0)
