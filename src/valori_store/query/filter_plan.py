"""Columnar evaluation of a normalised filter: one bool array operation per condition.

:func:`evaluate` computes the row mask of a filter (without ``$ids``) from the typed
metadata columns of :mod:`valori_store.state.meta_columns`, with exactly the semantics of
the record predicate (:mod:`.filter_eval`, docs/filters.md): strict, type-aware equality,
exact int/float comparison, the missing-key rule, ``$empty``'s missing-is-empty. Scalars
and lists of scalars are evaluated on the columns (list operators on the typed elements);
rows whose value under a key the filter reads is anything else (a dict, a nested list, an
int beyond int64), and list values when an equality-type operator has a list or dict
operand, are evaluated by the predicate itself. So the result is the predicate's on every
row; a differential property test holds the two to that.

Exact number comparison without floats touching ints: a comparison of an int64 column
with an operand ``o`` becomes a comparison with an integer threshold (``v > o`` iff
``v > floor(o)`` for integer ``v``; ``v >= o`` iff ``v >= ceil(o)``), clamped to the int64
range; fractional values (always ``|x| < 2**53``) compare with float operands directly and
with int operands clamped to ``±2**53``, which float64 holds exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from valori_store.query.filter_eval import Predicate
from valori_store.query.filter_language import LOGICAL_OPERATORS
from valori_store.state.meta_columns import BOOL, FLOAT, INT, LIST, MISSING, NULL, OTHER, STR, KeyColumn
from valori_store.state.table import RecordTable

__all__ = ["evaluate", "field_keys"]

_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1
_F_LIMIT = 2 ** 53


def field_keys(spec: dict[str, Any], out: set[str] | None = None) -> set[str]:
    """The metadata keys a normalised filter reads."""
    out = set() if out is None else out
    for key, value in spec.items():
        if key in ("$and", "$or"):
            for sub in value:
                field_keys(sub, out)
        elif key == "$not":
            field_keys(value, out)
        else:
            out.add(key)
    return out


def evaluate(spec: dict[str, Any], predicate: Predicate, table: RecordTable) -> np.ndarray:
    """Bool mask over ``table``'s rows of a normalised filter (no ``$ids``) and its predicate."""
    n = table.n
    keys = sorted(field_keys(spec))
    cols = table.meta_columns.refresh(keys, table.metas, n)
    views = {k: _Values(c, n) for k, c in cols.items()}
    mask = _eval(spec, views, n)
    unsure = np.zeros(n, dtype=np.bool_)
    lists_unsure = _compares_composites(spec)
    for v in views.values():
        unsure |= v.kinds == OTHER
        if lists_unsure:
            unsure |= v.is_list
    if unsure.any():
        for r in np.flatnonzero(unsure).tolist():
            mask[r] = predicate(table.metadata_dict(r))
    return mask


def _compares_composites(spec: dict[str, Any]) -> bool:
    """True when an equality-type operator has a list or dict operand (list values are then
    left to the predicate: the columns compare scalars only)."""
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if any(_compares_composites(sub) for sub in value):
                return True
        elif key == "$not":
            if _compares_composites(value):
                return True
        else:
            for op, x in value.items():
                xs = x if op in ("$in", "$nin") else [x] if op in ("$eq", "$ne") else []
                if any(isinstance(e, (list, dict)) for e in xs):
                    return True
    return False


class _Typed:
    """Typed values (rows of a column, or its list elements) with the column's dictionary."""

    def __init__(self, col: KeyColumn, kinds: np.ndarray, ints: np.ndarray, floats: np.ndarray,
                 codes: np.ndarray) -> None:
        self.col, self.kinds, self.ints, self.floats, self.codes = col, kinds, ints, floats, codes


class _Values(_Typed):
    """One column's arrays over rows ``[0, n)``, with per-dictionary and per-list helpers."""

    def __init__(self, col: KeyColumn, n: int) -> None:
        super().__init__(col, *col.view(n))
        self.present = self.kinds != MISSING
        self.is_list = self.kinds == LIST
        self.has_lists = bool(self.is_list.any())
        if self.has_lists:  # (start, length) of each list; 0 elsewhere (stale there otherwise)
            self.list_len = np.where(self.is_list, col.list_len[:n], 0)
            self.list_start = np.where(self.is_list, col.list_start[:n], 0)
            self.elements = _Typed(col, *col.elements())

    def strings_where(self, test: Callable[[str], bool]) -> np.ndarray:
        """Rows holding a string ``s`` with ``test(s)``."""
        hit = np.fromiter(map(test, self.col.strings), dtype=np.bool_, count=len(self.col.strings))
        if not hit.any():
            return np.zeros(len(self.kinds), dtype=np.bool_)
        return np.take(hit, self.codes) & (self.kinds == STR)

    def lists_where(self, element_hit: np.ndarray) -> np.ndarray:
        """LIST rows with at least one element where ``element_hit`` is True."""
        if not self.has_lists:
            return np.zeros(len(self.kinds), dtype=np.bool_)
        counts = np.zeros(len(element_hit) + 1, dtype=np.int64)
        np.cumsum(element_hit, out=counts[1:])
        return (counts[self.list_start + self.list_len] > counts[self.list_start]) & self.is_list


def _eval(spec: dict[str, Any], views: dict[str, _Values], n: int) -> np.ndarray:
    out: np.ndarray | None = None
    for key, value in spec.items():
        if key == "$and":
            part = _eval({}, views, n) if not value else _all(_eval(sub, views, n) for sub in value)
        elif key == "$or":
            part = _eval(value[0], views, n)
            for sub in value[1:]:
                part |= _eval(sub, views, n)
        elif key == "$not":
            part = ~_eval(value, views, n)
        else:
            assert key not in LOGICAL_OPERATORS
            part = _field(views[key], value)
        out = part if out is None else np.logical_and(out, part, out=out)
    return np.ones(n, dtype=np.bool_) if out is None else out


def _all(parts: Any) -> np.ndarray:
    out = None
    for part in parts:
        out = part if out is None else np.logical_and(out, part, out=out)
    assert out is not None
    return out


def _field(v: _Values, ops: dict[str, Any]) -> np.ndarray:
    """Mirror of filter_eval._build_field on columns."""
    if ops == {"$exists": False}:
        return ~v.present
    if ops == {"$exists": True}:
        return v.present.copy()
    if ops.get("$empty") is True:
        rest = {op: x for op, x in ops.items() if op != "$empty"}
        on_present = _empty(v)
        for op in sorted(rest):
            on_present &= _op(v, op, rest[op])
        missing_value = not rest or rest == {"$exists": False}
        return np.where(v.present, on_present, missing_value)
    out = None
    for op in sorted(ops):
        part = _op(v, op, ops[op])
        out = part if out is None else np.logical_and(out, part, out=out)
    assert out is not None
    return np.logical_and(out, v.present, out=out)


def _empty(v: _Values) -> np.ndarray:
    out = (v.kinds == NULL) | v.strings_where(lambda s: s == "")
    if v.has_lists:
        out |= v.is_list & (v.list_len == 0)
    return out


def _op(v: _Values, op: str, x: Any) -> np.ndarray:
    """One field operator on every row (meaningful on present scalar rows only)."""
    n = len(v.kinds)
    if op == "$eq":
        return _eq(v, x)
    if op == "$ne":
        return ~_eq(v, x)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        return _order(v, op, x)
    if op == "$in":
        return _in(v, x)
    if op == "$nin":
        return ~_in(v, x)
    if op == "$exists":
        return np.full(n, bool(x))
    if op == "$empty":
        return _empty(v) if x else ~_empty(v)
    if op == "$icontains":
        needle = x.lower()
        return v.strings_where(lambda s: needle in s.lower())
    if op == "$contains":  # an element of a list (strict equality), or a substring of a string
        out = v.strings_where(lambda s: x in s) if isinstance(x, str) else np.zeros(n, dtype=np.bool_)
        if v.has_lists:
            out |= v.lists_where(_eq(v.elements, x))
        return out
    if not v.has_lists:  # $any / $all hold on lists only
        return np.zeros(n, dtype=np.bool_)
    if op == "$any":
        return v.lists_where(_in(v.elements, x))
    out = v.is_list.copy()  # $all: every operand is an element (an empty operand: any list)
    for item in x:
        out &= v.lists_where(_eq(v.elements, item))
    return out


def _is_number(x: Any) -> bool:
    return type(x) is not bool and isinstance(x, (int, float))


def _eq(v: _Typed, x: Any) -> np.ndarray:
    n = len(v.kinds)
    if x is None:
        return v.kinds == NULL
    if x is True or x is False:
        return (v.kinds == BOOL) & (v.ints == int(x))
    if isinstance(x, str):
        code = v.col.code_of.get(x)
        if code is None:
            return np.zeros(n, dtype=np.bool_)
        return (v.kinds == STR) & (v.codes == code)
    if _is_number(x):
        if isinstance(x, float) and not x.is_integer():
            return (v.kinds == FLOAT) & (v.floats == x)
        i = int(x)
        if not _I64_MIN <= i <= _I64_MAX:
            return np.zeros(n, dtype=np.bool_)
        return (v.kinds == INT) & (v.ints == i)
    return np.zeros(n, dtype=np.bool_)  # a list or dict operand equals no scalar


def _in(v: _Typed, xs: list[Any]) -> np.ndarray:
    n = len(v.kinds)
    out = np.zeros(n, dtype=np.bool_)
    codes = [v.col.code_of[x] for x in xs if isinstance(x, str) and x in v.col.code_of]
    if codes:
        hit = np.zeros(len(v.col.strings), dtype=np.bool_)
        hit[codes] = True
        out = np.take(hit, v.codes)
        out &= v.kinds == STR
    ints = [int(x) for x in xs if _is_number(x) and not (isinstance(x, float) and not x.is_integer())
            and _I64_MIN <= int(x) <= _I64_MAX]
    if ints:
        out |= (v.kinds == INT) & np.isin(v.ints, np.array(ints, dtype=np.int64))
    fracs = [x for x in xs if isinstance(x, float) and not x.is_integer()]
    if fracs:
        out |= (v.kinds == FLOAT) & np.isin(v.floats, np.array(fracs, dtype=np.float64))
    bools = {int(x) for x in xs if x is True or x is False}
    if bools:
        out |= (v.kinds == BOOL) & np.isin(v.ints, np.array(sorted(bools), dtype=np.int64))
    if any(x is None for x in xs):
        out |= v.kinds == NULL
    return out


def _order(v: _Values, op: str, x: Any) -> np.ndarray:
    n = len(v.kinds)
    if isinstance(x, str):
        compare = {"$gt": str.__gt__, "$gte": str.__ge__, "$lt": str.__lt__, "$lte": str.__le__}[op]
        return v.strings_where(lambda s: compare(s, x))
    # integer rows: an exact integer threshold
    upward = op in ("$gt", "$gte")
    if isinstance(x, float) and not x.is_integer():
        t = math.floor(x) if op in ("$gt", "$lte") else math.ceil(x)
    else:
        t = int(x)
    ints_kind = v.kinds == INT
    if t > _I64_MAX:
        on_ints = np.zeros(n, dtype=np.bool_) if upward else ints_kind
    elif t < _I64_MIN:
        on_ints = ints_kind if upward else np.zeros(n, dtype=np.bool_)
    else:
        cmp = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}[op]
        on_ints = ints_kind & cmp(v.ints, np.int64(t))
    # fractional rows: exact float comparison (|value| < 2**53)
    floats_kind = v.kinds == FLOAT
    if not floats_kind.any():
        return on_ints
    f = float(x) if isinstance(x, float) else float(max(-_F_LIMIT, min(_F_LIMIT, x)))
    cmpf = {"$gt": np.greater, "$gte": np.greater_equal, "$lt": np.less, "$lte": np.less_equal}[op]
    return on_ints | (floats_kind & cmpf(v.floats, f))
