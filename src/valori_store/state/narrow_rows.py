"""The int8 copy of a table's rows that the narrow scan reads (docs/spec.md, "The narrow scan").

A cache derived from the int32 matrix, never state: not hashed, stored or logged. It is
allocated the first time a search uses it, then kept current like the metadata columns:
rows appended to the table are narrowed on the next use, rows the table overwrites are
marked dirty and narrowed again, a delete's row move is mirrored. Row ``r`` holds the
narrow form of ``matrix[r]`` once :meth:`NarrowRows.refresh` returns.

Memory: ``dim + 9`` bytes per row (the int8 row, its shift, its squared norm).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import numpy as np

from valori_store.kernels.narrow import narrow_into
from valori_store.state.growable import GrowableRows

__all__ = ["NarrowRows"]


class NarrowRows:
    """Narrow rows of one table (see the module docstring). Thread-safe like MetaColumns:
    refreshes run under the store's read lock and a mutex; table hooks under its write lock."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.active = False
        self.size = 0
        self._y = GrowableRows((dim,), np.int8)
        self._shifts = GrowableRows((), np.uint8)
        self._x2 = GrowableRows((), np.int64)
        self._dirty: set[int] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ table hooks
    def overwritten(self, rows: Iterable[int]) -> None:
        if self.active:
            self._dirty.update(int(r) for r in rows)

    def moved(self, src: int, dst: int) -> None:
        if not self.active:
            return
        if src < self.size:
            self._y.array[dst] = self._y.array[src]
            self._shifts.array[dst] = self._shifts.array[src]
            self._x2.array[dst] = self._x2.array[src]
        elif dst < self.size:
            self._dirty.add(dst)
        if src in self._dirty:
            self._dirty.discard(src)
            self._dirty.add(dst)
        self.size = min(self.size, src)

    def truncated(self, n: int) -> None:
        if not self.active:
            return
        self.size = min(self.size, n)
        if self._dirty:
            self._dirty = {r for r in self._dirty if r < n}

    # ------------------------------------------------------------ reads
    def refresh(self, matrix: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(int8 rows, shifts, squared norms) current for rows ``[0, n)`` of ``matrix``."""
        with self._lock:
            self.active = True
            if n > self._y.capacity:
                cap = max(n, self._y.capacity * 3 // 2 + 1, 1024)
                for g in (self._y, self._shifts, self._x2):
                    g.grow(cap, self.size)
            y, shifts, x2 = self._y.array, self._shifts.array, self._x2.array
            if self._dirty:
                for r in sorted(r for r in self._dirty if r < min(n, self.size)):
                    narrow_into(matrix, r, r + 1, y, shifts, x2)
                self._dirty.clear()
            if self.size < n:
                narrow_into(matrix, self.size, n, y, shifts, x2)
                self.size = n
            return y[:n], shifts[:n], x2[:n]
