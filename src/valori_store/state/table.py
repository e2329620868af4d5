"""The in-memory record table: the live state of a store.

Columnar: one int32 matrix of stored Q16.16 rows plus parallel lists of ids, texts and
canonical metadata bytes. Row positions depend on history (deletes move the last row
into the hole) and are never exposed: everything ordered or hashed uses id order.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from valori_store.format.canonical import decode_metadata
from valori_store.state.growable import GrowableRows

#: Growth factor of the matrix capacity. Capacity that is not yet written is never
#: touched, so it costs address space, not resident memory; growth extends the memory map
#: without copying where the OS allows it (see growable.py), else doubling keeps the total
#: copying during ingest below 2x the data.
GROWTH = 2.0
MIN_CAPACITY = 64


class RecordTable:
    """Rows of one store. Not thread-safe: the store serialises mutations."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._rows = GrowableRows((dim,), np.int32)
        self._rowmax = GrowableRows((), np.int64)
        #: An upper bound of max(rowmax[:n]) (exact after inserts; deletes leave it high),
        #: so a search can prove the int64 bound for every row at once.
        self.rowmax_bound = 0
        self.n = 0
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.texts: list[str | None] = []
        self.metas: list[bytes] = []
        self._meta_dicts: list[dict[str, Any] | None] = []

    @property
    def matrix(self) -> np.ndarray:
        """Stored Q16.16 rows, ``(capacity, dim)`` int32; rows ``[0, n)`` are live, the rest zero.

        Re-read after any mutation (growth may replace the array); do not keep views.
        """
        return self._rows.array

    @property
    def rowmax(self) -> np.ndarray:
        """max |value| of each stored row (int64, parallel to ``matrix``): the overflow proof's input."""
        return self._rowmax.array

    def __len__(self) -> int:
        return self.n

    # ------------------------------------------------------------------ mutation
    def reserve(self, needed: int) -> None:
        """Make room for ``needed`` rows (capacity grows geometrically)."""
        cap = self._rows.capacity
        if needed <= cap:
            return
        new_cap = max(needed, int(cap * GROWTH) + 1, MIN_CAPACITY)
        self._rows.grow(new_cap, self.n)
        self._rowmax.grow(new_cap, self.n)

    def upsert(
        self, ids: Sequence[str], rows: np.ndarray, texts: Sequence[str | None], metas: Sequence[bytes]
    ) -> None:
        """Insert or overwrite records; inputs are already validated and canonical (ids unique)."""
        if len(ids) == 0:
            return
        row_of = self.row_of
        if row_of.keys().isdisjoint(ids):  # the common case: every id is new (C-speed checks)
            n, base = len(ids), self.n
            self.reserve(base + n)
            row_of.update(zip(ids, range(base, base + n)))
            self.ids.extend(ids)
            self.texts.extend(texts)
            self.metas.extend(metas)
            self._meta_dicts.extend([None] * n)
            self.n = base + n
            self.matrix[base : self.n] = rows
            self.rowmax[base : self.n] = _row_maxabs(rows)
            self._raise_bound(base, self.n)
            return
        positions = np.empty(len(ids), dtype=np.int64)
        fresh = [k for k, rid in enumerate(ids) if rid not in row_of]
        self.reserve(self.n + len(fresh))
        for k, rid in enumerate(ids):
            row = row_of.get(rid)
            if row is not None:
                self.texts[row] = texts[k]
                self.metas[row] = metas[k]
                self._meta_dicts[row] = None
                positions[k] = row
        base = self.n
        for offset, k in enumerate(fresh):
            row_of[ids[k]] = base + offset
            positions[k] = base + offset
        self.ids.extend(ids[k] for k in fresh)
        self.texts.extend(texts[k] for k in fresh)
        self.metas.extend(metas[k] for k in fresh)
        self._meta_dicts.extend([None] * len(fresh))
        self.n += len(fresh)
        rowmax = _row_maxabs(rows)
        if len(fresh) == len(ids):  # all new: one contiguous block
            self.matrix[base : self.n] = rows
            self.rowmax[base : self.n] = rowmax
        else:
            self.matrix[positions] = rows
            self.rowmax[positions] = rowmax
        self.rowmax_bound = max(self.rowmax_bound, int(rowmax.max()))

    def append_written(self, ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes]) -> None:
        """Append new records whose rows the caller already wrote in place.

        Rows ``[n, n + len(ids))`` of :attr:`matrix` and :attr:`rowmax` must hold them
        (reserved first); ``ids`` must be unique and absent. Equivalent to :meth:`upsert`.
        """
        n, base = len(ids), self.n
        if base + n > self._rows.capacity:
            raise ValueError("append_written past the reserved rows")  # a caller bug, not input
        self.row_of.update(zip(ids, range(base, base + n)))
        self.ids.extend(ids)
        self.texts.extend(texts)
        self.metas.extend(metas)
        self._meta_dicts.extend([None] * n)
        self.n = base + n
        self._raise_bound(base, self.n)

    def _raise_bound(self, start: int, stop: int) -> None:
        if stop > start:
            self.rowmax_bound = max(self.rowmax_bound, int(self.rowmax[start:stop].max()))

    def delete(self, ids: Sequence[str]) -> int:
        """Remove present ids (missing ones ignored); returns how many were removed."""
        removed = 0
        for rid in ids:
            row = self.row_of.pop(rid, None)
            if row is None:
                continue
            last = self.n - 1
            if row != last:
                moved = self.ids[last]
                self.matrix[row] = self.matrix[last]
                self.rowmax[row] = self.rowmax[last]
                self.ids[row] = moved
                self.texts[row] = self.texts[last]
                self.metas[row] = self.metas[last]
                self._meta_dicts[row] = self._meta_dicts[last]
                self.row_of[moved] = row
            self.ids.pop()
            self.texts.pop()
            self.metas.pop()
            self._meta_dicts.pop()
            self.matrix[last] = 0
            self.rowmax[last] = 0
            self.n -= 1
            removed += 1
        return removed

    # ------------------------------------------------------------------ reads
    def maxabs(self) -> int:
        """max |value| over the stored rows (0 when empty); exact, unlike ``rowmax_bound``."""
        return int(self.rowmax[: self.n].max()) if self.n else 0

    def metadata_dict(self, row: int) -> dict[str, Any]:
        """Parsed metadata of a row (cached; callers must not mutate it)."""
        cached = self._meta_dicts[row]
        if cached is None:
            cached = decode_metadata(self.metas[row])
            self._meta_dicts[row] = cached
        return cached

    def metadata_dicts(self) -> list[dict[str, Any]]:
        """Parsed metadata of every row, in row order (shared; do not mutate)."""
        return [self.metadata_dict(r) for r in range(self.n)]

    def id_order(self) -> list[int]:
        """Row indices sorted by id UTF-8 bytes: the canonical record order."""
        keyed = sorted((rid.encode("utf-8"), row) for row, rid in enumerate(self.ids))
        return [row for _, row in keyed]


def _row_maxabs(rows: np.ndarray) -> np.ndarray:
    """max |value| of each int32 row, as int64 (|-2**31| does not fit int32)."""
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    return np.maximum(rows.max(axis=1).astype(np.int64), -rows.min(axis=1).astype(np.int64))
