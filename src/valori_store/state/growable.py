"""Growable, zero-filled row storage whose growth does not copy where the OS allows it.

Rows live in a private anonymous memory map: pages are zero until written and cost no
resident memory before that. Growing asks the kernel to extend the mapping
(``mmap.resize``, i.e. ``mremap`` on Linux), which moves page tables instead of bytes,
so ingest never re-copies the rows it already holds. Where that is impossible (small
arrays, a view of the old array still alive, no ``mremap`` on this platform) the rows in
use are copied into a new allocation, which is always correct, only slower.

Row contents never depend on which path was taken: both keep rows ``[0, used)`` and zero
the rest. Like numpy for its large arrays, the mapping asks for transparent huge pages
(``MADV_HUGEPAGE``) where available: scans touch fewer TLB entries.
"""

from __future__ import annotations

import mmap

import numpy as np

#: Below this many bytes an ordinary zeroed numpy array is used (a mapping per tiny store
#: would spend address-space entries for nothing; copying small arrays is cheap).
MAP_FROM_BYTES = 1 << 20

_PRIVATE = getattr(mmap, "MAP_PRIVATE", None)
_ANONYMOUS = getattr(mmap, "MAP_ANONYMOUS", None)


class GrowableRows:
    """A ``(capacity, *row_shape)`` array of ``dtype``; rows past what callers wrote are zero.

    Not thread-safe. :meth:`grow` may replace :attr:`array`; callers must re-read it and
    should not keep views across a grow (a kept view forces the copying path, never an error).
    """

    def __init__(self, row_shape: tuple[int, ...], dtype: np.dtype | type) -> None:
        self.row_shape = tuple(row_shape)
        self.dtype = np.dtype(dtype)
        self.row_bytes = self.dtype.itemsize * int(np.prod(self.row_shape, dtype=np.int64))
        self.array: np.ndarray = np.zeros((0, *self.row_shape), dtype=self.dtype)
        self._map: mmap.mmap | None = None

    @property
    def capacity(self) -> int:
        return int(self.array.shape[0])

    def grow(self, capacity: int, used: int) -> None:
        """Make room for ``capacity`` rows, keeping rows ``[0, used)``; never shrinks."""
        if capacity <= self.capacity:
            return
        nbytes = capacity * self.row_bytes
        if self._map is not None and self._extend_map(nbytes):
            _advise_huge(self._map)
            self.array = self._view(self._map, capacity)
            return
        old = self.array
        if nbytes >= MAP_FROM_BYTES and _PRIVATE is not None and self.row_bytes:
            try:
                mapping = mmap.mmap(-1, nbytes, flags=_PRIVATE | (_ANONYMOUS or 0))
            except (OSError, ValueError):  # pragma: no cover - mapping refused (limits)
                mapping = None
            else:
                _advise_huge(mapping)
        else:
            mapping = None
        grown = self._view(mapping, capacity) if mapping is not None else np.zeros(
            (capacity, *self.row_shape), dtype=self.dtype
        )
        grown[:used] = old[:used]
        self.array, self._map = grown, mapping

    def _extend_map(self, nbytes: int) -> bool:
        """Resize the current mapping in place (the kernel may move it); False if refused."""
        assert self._map is not None
        capacity = self.capacity
        self.array = np.zeros((0, *self.row_shape), dtype=self.dtype)  # drop our own export
        try:
            self._map.resize(nbytes)
        except (BufferError, OSError, SystemError, ValueError):
            self.array = self._view(self._map, capacity)  # unchanged: copy instead
            return False
        return True

    def _view(self, mapping: mmap.mmap, capacity: int) -> np.ndarray:
        flat = np.frombuffer(mapping, dtype=self.dtype, count=capacity * (self.row_bytes // self.dtype.itemsize))
        return flat.reshape((capacity, *self.row_shape))


def _advise_huge(mapping: mmap.mmap) -> None:
    """Ask for transparent huge pages on the whole mapping (a hint; failures are ignored)."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is not None:
        try:
            mapping.madvise(advice)
        except (OSError, ValueError):  # pragma: no cover - kernel without THP
            pass
