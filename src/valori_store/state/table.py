"""The in-memory record table: the live state of a store.

Columnar: one int32 matrix of stored Q16.16 rows plus parallel lists of ids, texts and
canonical metadata bytes. Row positions depend on history (deletes move the last row
into the hole) and are never exposed: everything ordered or hashed uses id order.

A record without a vector (a *plain* record) has a zero row and its flag set in
:attr:`RecordTable.plain_flags`; searches never rank it. The table owns its metric and its
state digest: under spec 2 the root of its state tree (:mod:`.merkle`, kept up to date row
by row), under spec 1 (stores made by valori-store 0.1) the SHA-256 of its snapshot bytes,
computed on demand and cached until the next change.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from valori_store.errors import CorruptFileError
from valori_store.format import records_block, snapshot
from valori_store.format.canonical import decode_metadata
from valori_store.format.records_block import PackedRecords
from valori_store.kernels.convert import rows_maxabs
from valori_store.spec import SPEC_VERSION, Metric, get_metric
from valori_store.state.growable import GrowableRows
from valori_store.state.merkle import StateTree
from valori_store.state.meta_columns import MetaColumns
from valori_store.state.narrow_rows import NarrowRows

#: Growth factor of the matrix capacity. Capacity that is not yet written is never
#: touched, so it costs address space, not resident memory; growth extends the memory map
#: without copying where the OS allows it (see growable.py), else doubling keeps the total
#: copying during ingest below 2x the data.
GROWTH = 2.0
MIN_CAPACITY = 64


class RecordTable:
    """Rows of one store. Not thread-safe: the store serialises mutations."""

    def __init__(self, dim: int, metric: Metric | str, spec: int = SPEC_VERSION) -> None:
        self.dim = dim
        self.metric = metric if isinstance(metric, Metric) else get_metric(metric)
        #: State spec version: 2 keeps a state tree; 1 hashes the snapshot (0.1 stores).
        self.spec = spec
        self.tree = StateTree(self.metric.code, dim) if spec >= 2 else None
        self._rows = GrowableRows((dim,), np.int32)
        self._rowmax = GrowableRows((), np.int64)
        self._plain = GrowableRows((), np.uint8)
        #: Number of records without a vector.
        self.n_plain = 0
        #: An upper bound of max(rowmax[:n]) (exact after inserts; deletes leave it high),
        #: so a search can prove the int64 bound for every row at once.
        self.rowmax_bound = 0
        self.n = 0
        self.ids: list[str] = []
        self.row_of: dict[str, int] = {}
        self.texts: list[str | None] = []
        self.metas: list[bytes] = []
        self._meta_dicts: list[dict[str, Any] | None] = []
        #: Typed metadata columns for filters (a cache derived from ``metas``).
        self.meta_columns = MetaColumns()
        #: The int8 copy of the rows for the narrow scan (a cache derived from ``matrix``).
        self.narrow = NarrowRows(dim)
        self._digest: bytes | None = None
        #: Rows in id order (cached; None after any insert or delete).
        self._order: np.ndarray | None = None

    @classmethod
    def from_content(cls, content: snapshot.Content) -> RecordTable:
        """A table holding a decoded snapshot's records (a format-3 root is checked)."""
        table = cls(content.dim, content.metric, content.spec)
        if content.plain is None:
            table.upsert(content.ids, content.rows, content.texts, content.metas)
        else:
            table._from_mixed(content)
        if content.root is not None and table.state_digest() != content.root:
            raise CorruptFileError("snapshot: its recorded state root does not match its records")
        return table

    def _from_mixed(self, content: snapshot.Content) -> None:
        assert content.plain is not None
        table = self
        has = content.plain == 0
        pick = np.flatnonzero(has).tolist()
        table.upsert([content.ids[i] for i in pick], content.rows[has], [content.texts[i] for i in pick],
                     [content.metas[i] for i in pick])
        rest = np.flatnonzero(~has).tolist()
        table.upsert_plain([content.ids[i] for i in rest], [content.texts[i] for i in rest],
                           [content.metas[i] for i in rest])

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

    @property
    def plain_flags(self) -> np.ndarray:
        """uint8 per row, 1 for a record without a vector (parallel to ``matrix``)."""
        return self._plain.array

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
        self._plain.grow(new_cap, self.n)
        if self.tree is not None:
            self.tree.grow(new_cap, self.n)

    def upsert(
        self, ids: Sequence[str], rows: np.ndarray, texts: Sequence[str | None], metas: Sequence[bytes],
        packed: PackedRecords | None = None,
    ) -> None:
        """Insert or overwrite records; inputs are already validated and canonical (ids unique).
        ``packed``: the same records already packed (the event payload's), if at hand."""
        if len(ids) == 0:
            return
        self._digest = None
        row_of = self.row_of
        if row_of.keys().isdisjoint(ids):  # the common case: every id is new (C-speed checks)
            n, base = len(ids), self.n
            self.reserve(base + n)
            row_of.update(zip(ids, range(base, base + n)))
            self._order = None
            self.ids.extend(ids)
            self.texts.extend(texts)
            self.metas.extend(metas)
            self._meta_dicts.extend([None] * n)
            self.n = base + n
            self.matrix[base : self.n] = rows
            self.rowmax[base : self.n] = _row_maxabs(rows)
            self._raise_bound(base, self.n)
            self._tree_write(np.arange(base, self.n), ids, texts, metas, packed, rows, False)
            return
        positions = self._place(ids, texts, metas)
        rowmax = _row_maxabs(rows)
        self.matrix[positions] = rows
        self.narrow.overwritten(positions)
        self.rowmax[positions] = rowmax
        self._set_plain(positions, 0)
        self.rowmax_bound = max(self.rowmax_bound, int(rowmax.max()))
        self._tree_write(positions, ids, texts, metas, packed, rows, False)

    def upsert_plain(self, ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes],
                     packed: PackedRecords | None = None) -> None:
        """Insert or overwrite records without a vector (validated, canonical, ids unique)."""
        if len(ids) == 0:
            return
        self._digest = None
        positions = self._place(ids, texts, metas)
        self.matrix[positions] = 0
        self.narrow.overwritten(positions)
        self.rowmax[positions] = 0
        self._set_plain(positions, 1)
        self._tree_write(positions, ids, texts, metas, packed, None, True)

    def _tree_write(self, positions: np.ndarray, ids: Sequence[str], texts: Sequence[str | None],
                    metas: Sequence[bytes], packed: PackedRecords | None, rows: np.ndarray | None,
                    plain: bool) -> None:
        """Keys and leaves of the rows just written (an overwrite keeps its id, so its key
        and subtree: writing marks it dirty)."""
        if self.tree is None:
            return
        if packed is None:
            packed = records_block.pack(ids, texts, metas)
        self.tree.write(positions, packed, rows if rows is not None else np.zeros((0, self.dim), np.int32), plain)

    def _place(self, ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes]) -> np.ndarray:
        """Rows for ``ids`` (existing rows get the new text and metadata; new ids are appended)."""
        row_of = self.row_of
        positions = np.empty(len(ids), dtype=np.int64)
        fresh = [k for k, rid in enumerate(ids) if rid not in row_of]
        self.reserve(self.n + len(fresh))
        overwritten = []
        for k, rid in enumerate(ids):
            row = row_of.get(rid)
            if row is not None:
                self.texts[row] = texts[k]
                self.metas[row] = metas[k]
                self._meta_dicts[row] = None
                positions[k] = row
                overwritten.append(row)
        self.meta_columns.overwritten(overwritten)
        base = self.n
        for offset, k in enumerate(fresh):
            row_of[ids[k]] = base + offset
            positions[k] = base + offset
        if fresh:
            self._order = None
        self.ids.extend(ids[k] for k in fresh)
        self.texts.extend(texts[k] for k in fresh)
        self.metas.extend(metas[k] for k in fresh)
        self._meta_dicts.extend([None] * len(fresh))
        self.n += len(fresh)
        return positions

    def _set_plain(self, positions: np.ndarray, flag: int) -> None:
        """Set the no-vector flag of ``positions`` and keep :attr:`n_plain` exact."""
        flags = self.plain_flags
        before = int(flags[positions].sum()) if self.n_plain or flag else 0
        if flag or before:
            flags[positions] = flag
            self.n_plain += int(flags[positions].sum()) - before

    def load_rows(self, ids: list[str], rows: np.ndarray | None, texts: list[str | None], metas: list[bytes],
                  plain: np.ndarray, keys: np.ndarray, leaves: np.ndarray, rowmax: np.ndarray | None = None) -> None:
        """Append records with their no-vector flags and (already checked) keys and leaves:
        bulk loading of image pages. The caller guarantees the ids are new and unique (their
        keys, derived from them, are strictly ascending and outside every loaded page's key
        range). ``rows`` None: the caller already wrote them into the reserved rows
        ``[n, n + len(ids))`` of :attr:`matrix`. Rows of plain records must be zero.
        ``rowmax``: each row's max |value| if the caller computed it."""
        n, base = len(ids), self.n
        if n == 0:
            return
        self.reserve(base + n)
        self._extend_columns(ids, texts, metas)
        if rows is not None:
            self.matrix[base : self.n] = rows
        self.rowmax[base : self.n] = rows_maxabs(self.matrix[base : self.n]) if rowmax is None else rowmax
        self.plain_flags[base : self.n] = plain
        self.n_plain += int(np.count_nonzero(plain))
        self._raise_bound(base, self.n)
        if self.tree is not None:
            self.tree.set_rows(base, keys, leaves)

    def _extend_columns(self, ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes]) -> None:
        """Append new records' ids, texts and metadata after row ``n`` (their rows are the
        caller's) and advance ``n``."""
        base = self.n
        self._digest = None
        self.row_of.update(zip(ids, range(base, base + len(ids))))
        self._order = None
        self.ids.extend(ids)
        self.texts.extend(texts)
        self.metas.extend(metas)
        self._meta_dicts.extend([None] * len(ids))
        self.n = base + len(ids)

    def append_written(self, ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes],
                       packed: PackedRecords | None = None,
                       digests: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Append new records whose rows the caller already wrote in place.

        Rows ``[n, n + len(ids))`` of :attr:`matrix` and :attr:`rowmax` must hold them
        (reserved first); ``ids`` must be unique and absent. Equivalent to :meth:`upsert`.
        ``digests``: their (keys, leaves), if the caller computed them (:meth:`written_digests`).
        """
        n, base = len(ids), self.n
        if base + n > self._rows.capacity:
            raise ValueError("append_written past the reserved rows")  # a caller bug, not input
        self._extend_columns(ids, texts, metas)
        self._raise_bound(base, self.n)
        if self.tree is not None and digests is not None:
            assert packed is not None
            self.tree.write(np.arange(base, self.n), packed, self.matrix[base:self.n], False, digests)
        else:
            self._tree_write(np.arange(base, self.n), ids, texts, metas, packed, self.matrix[base:self.n], False)

    def written_digests(self, packed: PackedRecords, count: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The (keys, leaves) :meth:`append_written` would compute for the ``count`` rows
        written past the end (None without a tree). Changes nothing."""
        if self.tree is None:
            return None
        return self.tree.digests(packed, self.matrix[self.n : self.n + count], False)

    def _raise_bound(self, start: int, stop: int) -> None:
        if stop > start:
            self.rowmax_bound = max(self.rowmax_bound, int(self.rowmax[start:stop].max()))

    def delete(self, ids: Sequence[str]) -> int:
        """Remove present ids (missing ones ignored); returns how many were removed."""
        removed = 0
        flags = self.plain_flags
        for rid in ids:
            row = self.row_of.pop(rid, None)
            if row is None:
                continue
            self._digest = None
            self._order = None
            last = self.n - 1
            self.n_plain -= int(flags[row])
            tree = self.tree
            if tree is not None:
                tree.mark(tree.keys[row : row + 1])
                if row != last:
                    tree.move(last, row)
                tree.clear(last)
            if row != last:
                moved = self.ids[last]
                self.matrix[row] = self.matrix[last]
                self.rowmax[row] = self.rowmax[last]
                flags[row] = flags[last]
                self.ids[row] = moved
                self.texts[row] = self.texts[last]
                self.metas[row] = self.metas[last]
                self._meta_dicts[row] = self._meta_dicts[last]
                self.row_of[moved] = row
                self.meta_columns.moved(last, row)
                self.narrow.moved(last, row)
            self.ids.pop()
            self.texts.pop()
            self.metas.pop()
            self._meta_dicts.pop()
            self.matrix[last] = 0
            self.rowmax[last] = 0
            flags[last] = 0
            self.n -= 1
            self.meta_columns.truncated(self.n)
            self.narrow.truncated(self.n)
            removed += 1
        return removed

    # ------------------------------------------------------------------ reads
    def maxabs(self) -> int:
        """max |value| over the stored rows (0 when empty); exact, unlike ``rowmax_bound``."""
        return int(self.rowmax[: self.n].max()) if self.n else 0

    def has_vector(self, row: int) -> bool:
        return not self.plain_flags[row]

    def vector_rows(self) -> np.ndarray | None:
        """Bool mask of the rows that have a vector, or None when every row has one."""
        if not self.n_plain:
            return None
        return self.plain_flags[: self.n] == 0

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
        return self.id_order_array().tolist()

    def id_order_array(self) -> np.ndarray:
        """:meth:`id_order` as an int64 array (cached until the next insert or delete; do not
        mutate)."""
        order = self._order
        if order is None or len(order) != self.n:
            keyed = sorted((rid.encode("utf-8"), row) for row, rid in enumerate(self.ids))
            order = np.fromiter((row for _, row in keyed), dtype=np.int64, count=len(keyed))
            self._order = order
        return order

    # ------------------------------------------------------------------ canonical form
    def content(self) -> snapshot.Content:
        """The records as snapshot content, in id order (copies)."""
        order = self.id_order()
        rows = self.matrix[order] if order else np.zeros((0, self.dim), dtype=np.int32)
        plain = self.plain_flags[order] if self.n_plain else None
        return snapshot.Content(self.dim, self.metric.name, [self.ids[r] for r in order], rows,
                                [self.texts[r] for r in order], [self.metas[r] for r in order], plain, self.spec)

    def snapshot_bytes(self, spec: int | None = None) -> bytes:
        """Canonical snapshot bytes of this state under its spec (or ``spec``): format 3
        under spec 2, format 1 (or 2 with records without vectors) under spec 1."""
        content = self.content()
        content.spec = self.spec if spec is None else spec
        return snapshot.encode(content, self.state_digest(2) if content.spec >= 2 else None)

    def state_digest(self, spec: int | None = None) -> bytes:
        """The 32-byte state digest under this table's spec (or ``spec``): the tree root
        (spec 2) or the SHA-256 of the spec-1 snapshot bytes, cached until a change.

        Readers holding a shared lock may fill the caches concurrently: they compute the
        same values, and no writer runs while they hold the lock.
        """
        spec = self.spec if spec is None else spec
        if spec >= 2:
            if self.tree is not None:
                return self.tree.root(self.n)
            return RecordTable.from_content(self._as_spec(2)).state_digest()
        digest = self._digest
        if digest is None:
            digest = snapshot.state_digest(self.content())
            if spec == self.spec:
                self._digest = digest
        return digest

    def _as_spec(self, spec: int) -> snapshot.Content:
        content = self.content()
        content.spec = spec
        return content

    def state_hash(self) -> str:
        return self.state_digest().hex()


def content_digest(content: snapshot.Content) -> bytes:
    """The state digest of decoded content under its own spec version."""
    if content.spec == 1:
        return snapshot.state_digest(content)
    return RecordTable.from_content(content).state_digest()


def _row_maxabs(rows: np.ndarray) -> np.ndarray:
    """max |value| of each int32 row, as int64 (|-2**31| does not fit int32)."""
    if not len(rows):
        return np.zeros(0, dtype=np.int64)
    return np.maximum(rows.max(axis=1).astype(np.int64), -rows.min(axis=1).astype(np.int64))
