"""Typed metadata columns: one per metadata key a filter has used, derived from the table.

A column holds, for each row, the *kind* of the row's value under its key and the value
in a typed array, so filters over scalars are evaluated with array operations
(:mod:`valori_store.query.filter_plan`) instead of a Python call per record:

* ``MISSING`` (the key is absent), ``NULL``, ``BOOL`` (``ints`` holds 0/1);
* ``INT``: an int, or a float with an integral value, in the int64 range (``ints``; the
  two are the same number to the filter language, e.g. ``2`` and ``2.0``);
* ``FLOAT``: a float with a fractional part (``floats``; always ``|x| < 2**53``);
* ``STR``: a string (``codes``: its index in the column's dictionary ``strings``);
* ``LIST``: a list whose elements are all of the scalar kinds above; its elements are
  stored typed in the column's element arrays (``el_*``), the row keeping their start and
  count (``list_start``, ``list_len``);
* ``OTHER``: anything else (dicts, nested lists, numbers outside int64): filters evaluate
  these rows with the record predicate, so every value keeps its exact semantics.

Columns are a cache, never state: they are not hashed, stored or logged. They are built
for a key the first time a filter uses it, then kept current incrementally: appended rows
are decoded on the next use (ingest pays nothing), overwritten rows are marked dirty by
the table and re-decoded on the next use, and a delete's row move is mirrored. Row ``r``
of a column always describes ``table.metas[r]`` once :meth:`MetaColumns.refresh` returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from valori_store.format.canonical import decode_metadata

__all__ = ["BOOL", "FLOAT", "INT", "LIST", "MISSING", "NULL", "OTHER", "STR", "KeyColumn", "MetaColumns"]

MISSING, NULL, BOOL, INT, FLOAT, STR, OTHER, LIST = range(8)

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_ABSENT: Any = object()
#: Rows whose metadata is decoded at once when columns catch up with the table.
DECODE_CHUNK = 65_536


_ROW_ARRAYS = ("kinds", "ints", "floats", "codes", "list_start", "list_len")
_EL_ARRAYS = ("el_kinds", "el_ints", "el_floats", "el_codes")


class KeyColumn:
    """The typed values of one metadata key over rows ``[0, size)`` (see the module docstring)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.size = 0
        self.kinds = np.zeros(0, dtype=np.uint8)
        self.ints = np.zeros(0, dtype=np.int64)
        self.floats = np.zeros(0, dtype=np.float64)
        self.codes = np.zeros(0, dtype=np.int32)
        self.list_start = np.zeros(0, dtype=np.int64)
        self.list_len = np.zeros(0, dtype=np.int64)
        #: Elements of LIST rows (append-only; overwritten lists leave garbage, see compact()).
        self.n_el = 0
        self.garbage = 0
        self.el_kinds = np.zeros(0, dtype=np.uint8)
        self.el_ints = np.zeros(0, dtype=np.int64)
        self.el_floats = np.zeros(0, dtype=np.float64)
        self.el_codes = np.zeros(0, dtype=np.int32)
        #: The dictionary of string values (entries are never removed; stale ones are harmless).
        self.strings: list[str] = []
        self.code_of: dict[str, int] = {}

    def _capacity(self, n: int) -> None:
        self._grow(_ROW_ARRAYS, n, self.size)

    def _el_capacity(self, n: int) -> None:
        self._grow(_EL_ARRAYS, n, self.n_el)

    def _grow(self, names: tuple[str, ...], n: int, used: int) -> None:
        """Make the arrays ``names`` hold at least ``n`` entries, keeping the first ``used``."""
        current = len(getattr(self, names[0]))
        if n <= current:
            return
        cap = max(n, 2 * current, 1024)
        for name in names:
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[:used] = old[:used]
            setattr(self, name, new)

    def _scalar(self, value: Any) -> tuple[int, int, float, int]:
        """(kind, int, float, code) of a value; kind OTHER for a non-scalar or huge one."""
        t = type(value)
        if value is _ABSENT:
            return MISSING, 0, 0.0, 0
        if value is None:
            return NULL, 0, 0.0, 0
        if t is bool:
            return BOOL, int(value), 0.0, 0
        if t is int:
            return (INT, value, 0.0, 0) if _I64_MIN <= value <= _I64_MAX else (OTHER, 0, 0.0, 0)
        if t is float:
            if value.is_integer():
                return (INT, int(value), 0.0, 0) if -(2.0 ** 63) <= value < 2.0 ** 63 else (OTHER, 0, 0.0, 0)
            return (FLOAT, 0, value, 0) if value == value else (OTHER, 0, 0.0, 0)  # NaN: never in metadata
        if t is str:
            code = self.code_of.get(value)
            if code is None:
                code = self.code_of[value] = len(self.strings)
                self.strings.append(value)
            return STR, 0, 0.0, code
        return OTHER, 0, 0.0, 0

    def set(self, row: int, value: Any) -> None:
        """Store ``value`` (``_ABSENT`` for a missing key) at ``row`` (< capacity)."""
        if row < self.size and self.kinds[row] == LIST:
            self.garbage += int(self.list_len[row])
        if type(value) is list:
            items = [self._scalar(v) for v in value]
            if all(item[0] not in (OTHER, MISSING) for item in items):
                start = self.n_el
                self._el_capacity(start + len(items))
                for k, (kind, i, f, c) in enumerate(items):
                    at = start + k
                    self.el_kinds[at], self.el_ints[at], self.el_floats[at], self.el_codes[at] = kind, i, f, c
                self.n_el = start + len(items)
                self.kinds[row], self.ints[row], self.floats[row], self.codes[row] = LIST, 0, 0.0, 0
                self.list_start[row], self.list_len[row] = start, len(items)
                return
            kind, i, f, c = OTHER, 0, 0.0, 0
        else:
            kind, i, f, c = self._scalar(value)
        self.kinds[row], self.ints[row], self.floats[row], self.codes[row] = kind, i, f, c
        self.list_start[row], self.list_len[row] = 0, 0

    def truncate(self, n: int) -> None:
        """Keep rows ``[0, n)``; the elements of lists in dropped rows become garbage."""
        if n < self.size:
            dropped = self.kinds[n : self.size] == LIST
            if dropped.any():
                self.garbage += int(self.list_len[n : self.size][dropped].sum())
            self.size = n

    def compact(self) -> None:
        """Drop the elements of overwritten and deleted lists once they are most of them."""
        if self.garbage <= self.n_el // 2 + 4096:
            return
        rows = np.flatnonzero(self.kinds[: self.size] == LIST)
        old = {name: getattr(self, name)[: self.n_el].copy() for name in _EL_ARRAYS}
        pos = 0
        for r in rows.tolist():
            start, count = int(self.list_start[r]), int(self.list_len[r])
            for name in _EL_ARRAYS:
                getattr(self, name)[pos : pos + count] = old[name][start : start + count]
            self.list_start[r] = pos
            pos += count
        self.n_el = pos
        self.garbage = 0

    def extend(self, values: Sequence[Any]) -> None:
        """Append the values of rows ``[size, size + len(values))`` (a column of one type
        is filled with array operations; mixed ones value by value)."""
        base, n = self.size, len(values)
        self._capacity(base + n)
        if not self._extend_uniform(base, values):
            self._extend_mixed(base, values)
        self.size = base + n

    def _extend_mixed(self, base: int, values: Sequence[Any]) -> None:
        """Fill rows from ``base`` value by value, writing the arrays once at the end (the
        fields are gathered in flat lists of numbers: no tuple per value for the GC to scan)."""
        rk: list[int] = []
        ri: list[int] = []
        rf: list[float] = []
        rc: list[int] = []
        starts: list[int] = []
        lens: list[int] = []
        ek: list[int] = []
        ei: list[int] = []
        ef: list[float] = []
        ec: list[int] = []
        scalar = self._scalar
        at = self.n_el
        for v in values:
            if type(v) is list:
                items = [scalar(e) for e in v]
                if all(item[0] not in (OTHER, MISSING) for item in items):
                    rk.append(LIST)
                    ri.append(0)
                    rf.append(0.0)
                    rc.append(0)
                    starts.append(at + len(ek))
                    lens.append(len(items))
                    for kind, i, f, c in items:
                        ek.append(kind)
                        ei.append(i)
                        ef.append(f)
                        ec.append(c)
                    continue
                kind, i, f, c = OTHER, 0, 0.0, 0
            else:
                kind, i, f, c = scalar(v)
            rk.append(kind)
            ri.append(i)
            rf.append(f)
            rc.append(c)
            starts.append(0)
            lens.append(0)
        stop = base + len(values)
        self.kinds[base:stop] = rk
        self.ints[base:stop] = ri
        self.floats[base:stop] = rf
        self.codes[base:stop] = rc
        self.list_start[base:stop] = starts
        self.list_len[base:stop] = lens
        if ek:
            end = at + len(ek)
            self._el_capacity(end)
            self.el_kinds[at:end] = ek
            self.el_ints[at:end] = ei
            self.el_floats[at:end] = ef
            self.el_codes[at:end] = ec
            self.n_el = end

    def _extend_uniform(self, base: int, values: Sequence[Any]) -> bool:
        """Fill rows from ``base`` when every value has the same simple type; False if not."""
        n = len(values)
        types = set(map(type, values))
        if len(types) != 1:
            return False
        t = types.pop()
        stop = base + n
        if t is int:
            try:
                self.ints[base:stop] = np.fromiter(values, dtype=np.int64, count=n)
            except OverflowError:
                return False
            self.kinds[base:stop] = INT
        elif t is bool:
            self.ints[base:stop] = np.fromiter(values, dtype=np.int64, count=n)
            self.kinds[base:stop] = BOOL
        elif t is str:
            code_of = self.code_of
            for v in dict.fromkeys(values):  # new strings in first-appearance order
                if v not in code_of:
                    code_of[v] = len(self.strings)
                    self.strings.append(v)
            self.codes[base:stop] = np.fromiter(map(code_of.__getitem__, values), dtype=np.int32, count=n)
            self.kinds[base:stop] = STR
        elif values[0] is _ABSENT:  # every value missing (object() values are only _ABSENT)
            self.kinds[base:stop] = MISSING
        else:
            return False
        return True

    def move(self, src: int, dst: int) -> None:
        if self.kinds[dst] == LIST:
            self.garbage += int(self.list_len[dst])
        for name in _ROW_ARRAYS:
            arr = getattr(self, name)
            arr[dst] = arr[src]

    def view(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kinds, ints, floats, codes) of rows ``[0, n)``."""
        return self.kinds[:n], self.ints[:n], self.floats[:n], self.codes[:n]

    def elements(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kinds, ints, floats, codes) of every stored list element (live or garbage)."""
        n = self.n_el
        return self.el_kinds[:n], self.el_ints[:n], self.el_floats[:n], self.el_codes[:n]


class MetaColumns:
    """The columns of one table; the table reports overwrites, moves and truncation.

    Thread-safe: :meth:`refresh` may run from concurrent searches (under the store's read
    lock); table mutations happen under its write lock, never beside a refresh.
    """

    def __init__(self) -> None:
        self.columns: dict[str, KeyColumn] = {}
        self._dirty: set[int] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ table hooks
    def overwritten(self, rows: Iterable[int]) -> None:
        """Rows whose metadata the table replaced (re-decoded on the next refresh)."""
        if self.columns:
            self._dirty.update(rows)

    def moved(self, src: int, dst: int) -> None:
        """The table moved row ``src`` to ``dst`` (a delete filling its hole), then dropped ``src``."""
        stale = False
        for col in self.columns.values():
            if src < col.size:
                col.move(src, dst)
            elif dst < col.size:
                stale = True  # src was never decoded for this column: decode dst afresh
            col.size = min(col.size, src)  # src's elements now belong to dst: not garbage
        if src in self._dirty or stale:
            self._dirty.discard(src)
            self._dirty.add(dst)

    def truncated(self, n: int) -> None:
        """The table now has ``n`` rows."""
        for col in self.columns.values():
            col.truncate(n)
        if self._dirty:
            self._dirty = {r for r in self._dirty if r < n}

    def reset(self) -> None:
        """Forget every column (the table's rows were replaced wholesale)."""
        with self._lock:
            self.columns.clear()
            self._dirty.clear()

    # ------------------------------------------------------------ reads
    def refresh(self, keys: Sequence[str], metas: Sequence[bytes], n: int) -> dict[str, KeyColumn]:
        """The columns of ``keys``, current for rows ``[0, n)`` of ``metas``."""
        with self._lock:
            out = {}
            for key in keys:
                if key not in self.columns:
                    self.columns[key] = KeyColumn(key)
                out[key] = self.columns[key]
            if self._dirty:
                dirty = sorted(r for r in self._dirty if r < n)
                self._dirty.clear()
                every = list(self.columns.values())
                for r in dirty:
                    md = decode_metadata(metas[r])
                    for col in every:
                        if r < col.size:
                            col.set(r, md.get(col.key, _ABSENT))
            lagging = [c for c in out.values() if c.size < n]
            if lagging:
                # in chunks, so few decoded dicts are alive at once (the GC rescans live ones)
                for a in range(min(c.size for c in lagging), n, DECODE_CHUNK):
                    b = min(n, a + DECODE_CHUNK)
                    decoded = [decode_metadata(metas[r]) for r in range(a, b)]
                    for col in lagging:
                        if col.size < b:
                            key = col.key
                            col.extend([md.get(key, _ABSENT) for md in decoded[col.size - a :]])
            for col in out.values():
                col.compact()
            return out
