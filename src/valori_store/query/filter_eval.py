"""Evaluation of normalised filters: compiled into closures over a record's metadata dict.

Compiled from the normalised form only (:func:`.filter_language.normalise`), so nothing
here validates. Every check is total: a type mismatch is simply False, and no predicate
ever raises on JSON metadata. Semantics: see :mod:`.filter_language` and docs/filters.md.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from valori_store.query.filter_language import LOGICAL_OPERATORS, ORDERING

__all__ = ["Predicate", "build", "filter_mask", "is_number"]

Predicate = Callable[[Mapping[str, Any]], bool]
"""A compiled filter: takes a record's metadata dict, returns True when the record passes."""

Check = Callable[[Any], bool]
"""A compiled field operator: takes the value of a key that is present."""

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}
_MISSING: Any = object()


def filter_mask(pred: Predicate | None, metadatas: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Evaluate ``pred`` on every metadata dict: a bool array, True where the record passes."""
    n = len(metadatas)
    if pred is None:
        return np.ones(n, dtype=np.bool_)
    return np.fromiter(map(pred, metadatas), dtype=np.bool_, count=n)


def is_number(value: Any) -> bool:
    """True for int and float values (bool excluded)."""
    return type(value) is not bool and isinstance(value, (int, float))


def _strict_equal(value: Any, operand: Any) -> bool:
    """Strict JSON equality of a metadata value with a normalised operand."""
    if operand is None:
        return value is None
    if operand is True or operand is False:
        return value is operand
    if isinstance(operand, str):
        return isinstance(value, str) and value == operand
    if isinstance(operand, (int, float)):
        return is_number(value) and bool(value == operand)
    if isinstance(operand, list):
        if not isinstance(value, list) or len(value) != len(operand):
            return False
        return all(_strict_equal(v, o) for v, o in zip(value, operand))
    # operand is a dict
    if not isinstance(value, dict) or len(value) != len(operand):
        return False
    return all(_strict_equal(value.get(k, _MISSING), o) for k, o in operand.items())


def _eq_check(operand: Any) -> Check:
    """A fast strict-equality check specialised on the operand's type."""
    if operand is None:
        return lambda v: v is None
    if operand is True or operand is False:
        return lambda v: v is operand
    if isinstance(operand, str):
        return lambda v: isinstance(v, str) and v == operand
    if isinstance(operand, (int, float)):
        def eq_number(v: Any) -> bool:
            t = type(v)
            if t is int or t is float:
                return v == operand
            return t is not bool and isinstance(v, (int, float)) and bool(v == operand)
        return eq_number
    return lambda v: _strict_equal(v, operand)


def _order_check(op: str, operand: Any) -> Check:
    """``$gt``/``$gte``/``$lt``/``$lte``: same-kind comparison, else False."""
    compare = _COMPARE[op]
    if isinstance(operand, str):
        return lambda v: isinstance(v, str) and compare(v, operand)

    # operand is a number; Python compares int with float exactly.
    def order_number(v: Any) -> bool:
        t = type(v)
        if t is int or t is float:
            return compare(v, operand)
        return is_number(v) and bool(compare(v, operand))
    return order_number


def _in_check(operands: list[Any]) -> Check:
    """``$in``: strict membership, hashed by kind for scalars, scanned for lists/dicts."""
    strings = frozenset(o for o in operands if isinstance(o, str))
    numbers = frozenset(o for o in operands if is_number(o))
    bools = frozenset(o for o in operands if isinstance(o, bool))
    has_none = any(o is None for o in operands)
    composites = tuple(o for o in operands if isinstance(o, (list, dict)))

    def is_in(v: Any) -> bool:
        if isinstance(v, str):
            return v in strings
        if v is True or v is False:
            return v in bools
        if isinstance(v, (int, float)):
            return v in numbers
        if v is None:
            return has_none
        if isinstance(v, (list, dict)):
            return any(_strict_equal(v, o) for o in composites)
        return False

    return is_in


def _contains_check(operand: Any) -> Check:
    """``$contains``: list element (strict equality) or, for a str operand, substring."""
    eq = _eq_check(operand)
    substring = isinstance(operand, str)

    def contains(v: Any) -> bool:
        if isinstance(v, list):
            return any(eq(item) for item in v)
        return substring and isinstance(v, str) and operand in v
    return contains


def _icontains_check(operand: str) -> Check:
    """``$icontains``: substring after ``str.lower()`` on both sides; str values only."""
    needle = operand.lower()
    return lambda v: isinstance(v, str) and needle in v.lower()


def _list_check(op: str, operands: list[Any]) -> Check:
    """``$any``/``$all``: a list value holding any/every operand (strict element equality)."""
    checks = [_eq_check(o) for o in operands]
    combine = any if op == "$any" else all

    def holds(v: Any) -> bool:
        if not isinstance(v, list):
            return False
        return combine(any(eq(item) for item in v) for eq in checks)
    return holds


def _is_empty(v: Any) -> bool:
    """True for None, "", [] and {} (bool False and 0 are values, not empty)."""
    return v is None or (type(v) in (str, list, dict) and not v)


def _op_check(op: str, operand: Any) -> Check:
    """Compile one field operator into a check on a present value."""
    if op == "$eq":
        return _eq_check(operand)
    if op == "$ne":
        eq = _eq_check(operand)
        return lambda v: not eq(v)
    if op in ORDERING:
        return _order_check(op, operand)
    if op == "$in":
        return _in_check(operand)
    if op == "$nin":
        is_in = _in_check(operand)
        return lambda v: not is_in(v)
    if op == "$exists":
        return (lambda v: True) if operand else (lambda v: False)
    if op == "$empty":
        return _is_empty if operand else (lambda v: not _is_empty(v))
    if op == "$icontains":
        return _icontains_check(operand)
    if op in ("$any", "$all"):
        return _list_check(op, operand)
    return _contains_check(operand)  # "$contains" (validated earlier)


def _all_of(preds: Sequence[Callable[[Any], bool]]) -> Callable[[Any], bool]:
    """Conjunction of predicates, short-circuiting in the given order."""
    if not preds:
        return lambda x: True
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda x: first(x) and second(x)
    frozen = tuple(preds)

    def all_of(x: Any) -> bool:
        for p in frozen:
            if not p(x):
                return False
        return True
    return all_of


def _any_of(preds: Sequence[Predicate]) -> Predicate:
    """Disjunction of predicates, short-circuiting in the given order."""
    if len(preds) == 1:
        return preds[0]
    frozen = tuple(preds)

    def any_of(md: Mapping[str, Any]) -> bool:
        for p in frozen:
            if p(md):
                return True
        return False
    return any_of


def _build_field(key: str, ops: dict[str, Any]) -> Predicate:
    """Predicate for one field's operator dict, with the missing-key rule applied."""
    if ops == {"$exists": False}:
        return lambda md: key not in md
    if ops == {"$exists": True}:
        return lambda md: key in md
    if "$empty" in ops and ops["$empty"] is True:
        # A missing key counts as empty: the one operator besides {"$exists": False} that is
        # true on a missing key. Other operators beside it still apply to present values.
        rest = {op: v for op, v in ops.items() if op != "$empty"}
        check_rest = _all_of([_op_check(op, rest[op]) for op in sorted(rest)])

        def empty_field(md: Mapping[str, Any]) -> bool:
            v = md.get(key, _MISSING)
            if v is _MISSING:
                return not rest or (rest == {"$exists": False})
            return _is_empty(v) and check_rest(v)
        return empty_field
    check = _all_of([_op_check(op, ops[op]) for op in sorted(ops)])
    # Every operator except {"$exists": False} is False on a missing key, and the only dict
    # where all operators are that one was handled above: a missing key fails.

    def field(md: Mapping[str, Any]) -> bool:
        v = md.get(key, _MISSING)
        return v is not _MISSING and check(v)
    return field


def build(spec: dict[str, Any]) -> Predicate:
    """Compile a normalised filter dict (without ``$ids``) into nested closures."""
    clauses: list[Predicate] = []
    # Field conditions first (usually cheapest), then logical operators; the result does not
    # depend on the order because no check has side effects or raises.
    for key in sorted(spec, key=lambda k: (k in LOGICAL_OPERATORS, k)):
        value = spec[key]
        if key == "$and":
            clauses.append(_all_of([build(sub) for sub in value]))
        elif key == "$or":
            clauses.append(_any_of([build(sub) for sub in value]))
        elif key == "$not":
            inner = build(value)
            clauses.append(lambda md, inner=inner: not inner(md))
        else:
            clauses.append(_build_field(key, value))
    return _all_of(clauses)
