"""Typed metadata columns: one per metadata key a filter has used, derived from the table.

A column holds, for each row, the *kind* of the row's value under its key and the value
in a typed array, so filters over scalars are evaluated with array operations
(:mod:`valori_store.query.filter_plan`) instead of a Python call per record:

* ``MISSING`` (the key is absent), ``NULL``, ``BOOL`` (``ints`` holds 0/1);
* ``INT``: an int, or a float with an integral value, in the int64 range (``ints``; the
  two are the same number to the filter language, e.g. ``2`` and ``2.0``);
* ``FLOAT``: a float with a fractional part (``floats``; always ``|x| < 2**53``);
* ``STR``: a string (``codes``: its index in the column's dictionary ``strings``);
* ``OTHER``: anything else (lists, dicts, numbers outside int64): filters evaluate these
  rows with the record predicate, so every value keeps its exact semantics.

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

__all__ = ["BOOL", "FLOAT", "INT", "MISSING", "NULL", "OTHER", "STR", "KeyColumn", "MetaColumns"]

MISSING, NULL, BOOL, INT, FLOAT, STR, OTHER = range(7)

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_ABSENT: Any = object()


class KeyColumn:
    """The typed values of one metadata key over rows ``[0, size)`` (see the module docstring)."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.size = 0
        self.kinds = np.zeros(0, dtype=np.uint8)
        self.ints = np.zeros(0, dtype=np.int64)
        self.floats = np.zeros(0, dtype=np.float64)
        self.codes = np.zeros(0, dtype=np.int32)
        #: The dictionary of string values (entries are never removed; stale ones are harmless).
        self.strings: list[str] = []
        self.code_of: dict[str, int] = {}

    def _capacity(self, n: int) -> None:
        if n <= len(self.kinds):
            return
        cap = max(n, 2 * len(self.kinds), 1024)
        for name in ("kinds", "ints", "floats", "codes"):
            old = getattr(self, name)
            new = np.zeros(cap, dtype=old.dtype)
            new[: self.size] = old[: self.size]
            setattr(self, name, new)

    def set(self, row: int, value: Any) -> None:
        """Store ``value`` (``_ABSENT`` for a missing key) at ``row`` (< capacity)."""
        t = type(value)
        kind, i, f, c = OTHER, 0, 0.0, 0
        if value is _ABSENT:
            kind = MISSING
        elif value is None:
            kind = NULL
        elif t is bool:
            kind, i = BOOL, int(value)
        elif t is int:
            if _I64_MIN <= value <= _I64_MAX:
                kind, i = INT, value
        elif t is float:
            if value.is_integer():
                if -(2.0 ** 63) <= value < 2.0 ** 63:
                    kind, i = INT, int(value)
            elif value == value:  # not NaN (canonical metadata holds none)
                kind, f = FLOAT, value
        elif t is str:
            code = self.code_of.get(value)
            if code is None:
                code = self.code_of[value] = len(self.strings)
                self.strings.append(value)
            kind, c = STR, code
        self.kinds[row] = kind
        self.ints[row] = i
        self.floats[row] = f
        self.codes[row] = c

    def extend(self, values: Sequence[Any]) -> None:
        """Append the values of rows ``[size, size + len(values))`` (a column of one type
        is filled with array operations; mixed ones value by value)."""
        base, n = self.size, len(values)
        self._capacity(base + n)
        if not self._extend_uniform(base, values):
            for k, v in enumerate(values):
                self.set(base + k, v)
        self.size = base + n

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
        for arr in (self.kinds, self.ints, self.floats, self.codes):
            arr[dst] = arr[src]

    def view(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kinds, ints, floats, codes) of rows ``[0, n)``."""
        return self.kinds[:n], self.ints[:n], self.floats[:n], self.codes[:n]


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
            col.size = min(col.size, src)
        if src in self._dirty or stale:
            self._dirty.discard(src)
            self._dirty.add(dst)

    def truncated(self, n: int) -> None:
        """The table now has ``n`` rows."""
        for col in self.columns.values():
            col.size = min(col.size, n)
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
                start = min(c.size for c in lagging)
                decoded = [decode_metadata(metas[r]) for r in range(start, n)]
                for col in lagging:
                    key = col.key
                    col.extend([md.get(key, _ABSENT) for md in decoded[col.size - start :]])
            return out
