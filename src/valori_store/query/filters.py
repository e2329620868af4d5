"""Metadata filters: a small, strict, deterministic query language over record metadata.

A filter is a dict (full reference with examples: ``docs/filters.md``)::

    {"genre": "jazz", "year": {"$gte": 1950, "$lt": 1970}, "$not": {"tags": {"$contains": "live"}}}

* ``{"k": v}`` is strict equality on the top-level metadata key ``k``; several keys in one
  dict are ANDed. ``{"k": {"$op": operand, ...}}`` applies field operators (ANDed):
  ``$eq $ne $gt $gte $lt $lte $in $nin $exists $contains $icontains $any $all $empty``.
* Logical operators sit at a filter's top level beside field keys (ANDed with them):
  ``$and`` and ``$or`` take a non-empty list of filters, ``$not`` takes one filter.
* ``$ids`` (outermost level only) restricts to a list of record ids, ANDed with the rest.
* Equality is type-strict: bool equals only bool (``True != 1``), str only str
  (``1 != "1"``), None only None; numbers (int, float, never bool) compare by exact value
  (``1 == 1.0``); lists and dicts compare element-wise with the same rule.
* Ordering operators match only values of the operand's kind (number or str).
* Every field operator is false on a record that lacks the key, except
  ``{"$exists": False}`` and ``{"$empty": True}``. ``$ne``/``$nin`` therefore skip such records; use ``$not`` for
  the complement that includes them.

:func:`compile_filter` validates once (raising :class:`~valori_store.errors.FilterError`
with the path to the offending part) and returns a predicate that never raises on any
metadata. :func:`canonical_filter` gives the canonical bytes of the normalised filter, as
recorded in retrieval receipts. ``{}`` means "no filter", exactly like ``None``.
"""

from __future__ import annotations

import difflib
import json
import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from valori_store.errors import FilterError

__all__ = [
    "FIELD_OPERATORS",
    "ID_OPERATOR",
    "LOGICAL_OPERATORS",
    "MAX_DEPTH",
    "Predicate",
    "canonical_filter",
    "compile_filter",
    "filter_mask",
    "split_ids",
]

Predicate = Callable[[Mapping[str, Any]], bool]
"""A compiled filter: takes a record's metadata dict, returns True when the record passes."""

Check = Callable[[Any], bool]
"""A compiled field operator: takes the value of a key that is present."""

FIELD_OPERATORS: tuple[str, ...] = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains",
    "$icontains", "$any", "$all", "$empty",
)
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")
ID_OPERATOR = "$ids"
"""Top-level only: ``{"$ids": [...]}`` keeps records whose id is in the list (ANDed)."""
MAX_DEPTH = 64
"""Deepest nesting accepted (filters, operator dicts and operand lists/dicts all count)."""

_ORDERING = ("$gt", "$gte", "$lt", "$lte")
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}
_ALL_OPERATORS = FIELD_OPERATORS + LOGICAL_OPERATORS + (ID_OPERATOR,)
_EMPTY_VALUES: tuple[Any, ...] = (None, "", [], {})
_MISSING: Any = object()
_Path = tuple[str | int, ...]
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


# --------------------------------------------------------------------------- public API


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate | None:
    """Validate ``spec`` and return a predicate over a record's metadata dict.

    ``None`` and ``{}`` give ``None`` (no filter). Raises :class:`FilterError` when the
    filter is malformed. The predicate returns a bool and never raises on JSON metadata.
    """
    normalised = _normalise(spec)
    if normalised is not None and ID_OPERATOR in normalised:
        raise FilterError("invalid filter: $ids restricts record ids and needs the store; "
                          "use split_ids() outside a store")
    return None if normalised is None else _build_filter(normalised)


def canonical_filter(spec: Mapping[str, Any] | None) -> bytes:
    """Canonical UTF-8 JSON of the validated, normalised filter; ``b"null"`` for no filter.

    Shorthand equality is expanded (``{"a": 1}`` -> ``{"a": {"$eq": 1}}``), keys are
    sorted, integral floats are written as ints (``1.0`` -> ``1``); list order is kept.
    """
    normalised = _normalise(spec)
    if normalised is None:
        return b"null"
    text = json.dumps(
        normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode("utf-8")


def split_ids(spec: Mapping[str, Any] | None) -> tuple[list[str] | None, Predicate | None]:
    """Validate ``spec``; return its ``$ids`` restriction (sorted, unique) and the rest compiled.

    ``(None, None)`` means no restriction at all; an ``$ids`` list may be empty (matches nothing).
    """
    normalised = _normalise(spec)
    if normalised is None:
        return None, None
    ids = normalised.pop(ID_OPERATOR, None)
    return ids, (_build_filter(normalised) if normalised else None)


def filter_mask(pred: Predicate | None, metadatas: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """Evaluate ``pred`` on every metadata dict: a bool array, True where the record passes."""
    n = len(metadatas)
    if pred is None:
        return np.ones(n, dtype=np.bool_)
    return np.fromiter(map(pred, metadatas), dtype=np.bool_, count=n)


# --------------------------------------------------------------------------- validation


def _where(path: _Path) -> str:
    """Render a path into the filter, e.g. ``$and[1].year.$gt``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
        elif _SIMPLE_KEY.fullmatch(seg):
            out += f".{seg}" if out else seg
        else:
            out += f"[{json.dumps(seg, ensure_ascii=False)}]"
    return out


def _fail(path: _Path, message: str) -> FilterError:
    where = _where(path)
    return FilterError(f"invalid filter at {where}: {message}" if where else f"invalid filter: {message}")


def _describe(value: Any) -> str:
    """Type name plus a short repr of ``value``, for error messages."""
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _check_depth(path: _Path, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _fail(path, f"nested more than {MAX_DEPTH} levels deep; flatten the filter")


def _check_text(text: str, path: _Path, what: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _fail(path, f"{what} {text!r} is not valid Unicode (lone surrogate); fix the string") from None
    return str(text)


def _unknown(op: str, path: _Path) -> FilterError:
    close = difflib.get_close_matches(op, _ALL_OPERATORS, n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return _fail(
        path,
        f"unknown operator {op!r}; {hint}field operators are {', '.join(FIELD_OPERATORS)}; "
        f"logical operators are {', '.join(LOGICAL_OPERATORS)}",
    )


def _normalise(spec: Any) -> dict[str, Any] | None:
    """Validate a whole filter; ``None`` for no filter (``None`` or ``{}``)."""
    if spec is None:
        return None
    normalised = _norm_filter(spec, (), 1)
    return normalised or None


def _norm_filter(spec: Any, path: _Path, depth: int) -> dict[str, Any]:
    """Validate one filter dict and return its normalised form."""
    _check_depth(path, depth)
    if not isinstance(spec, Mapping):
        raise _fail(path, f"a filter must be a dict such as {{\"year\": 2020}}, got {_describe(spec)}")
    out: dict[str, Any] = {}
    for key, value in spec.items():
        if not isinstance(key, str):
            raise _fail(path, f"keys must be strings (metadata keys or operators), got {_describe(key)}")
        key = _check_text(key, path, "key")
        here = path + (key,)
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise _fail(here, f"{key} takes a non-empty list of filters, e.g. "
                                  f"{{\"{key}\": [{{\"a\": 1}}, {{\"b\": 2}}]}}; got {_describe(value)}")
            out[key] = [_norm_filter(sub, here + (i,), depth + 1) for i, sub in enumerate(value)]
        elif key == "$not":
            if not isinstance(value, Mapping):
                raise _fail(here, f"$not takes one filter (a dict), e.g. {{\"$not\": {{\"a\": 1}}}}; "
                                  f"got {_describe(value)}")
            out[key] = _norm_filter(value, here, depth + 1)
        elif key == ID_OPERATOR:
            if path:
                raise _fail(here, "$ids goes only at the filter's top level (it is ANDed with the rest); "
                                  "to combine id sets, compute them first")
            out[key] = _norm_ids(value, here)
        elif key in FIELD_OPERATORS:
            raise _fail(here, f"{key} is a field operator; put it under a metadata key, "
                              f"e.g. {{\"year\": {{\"{key}\": ...}}}}")
        elif key.startswith("$"):
            raise _unknown(key, here)
        else:
            out[key] = _norm_condition(value, here, depth + 1)
    return out


def _norm_ids(value: Any, path: _Path) -> list[str]:
    """``$ids`` operand: a list of str ids, returned sorted by UTF-8 bytes and de-duplicated."""
    if not isinstance(value, (list, tuple)):
        raise _fail(path, f"$ids takes a list of record ids, e.g. {{\"$ids\": [\"a\", \"b\"]}}; "
                          f"got {_describe(value)}")
    ids: set[str] = set()
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise _fail(path + (i,), f"record ids are str, got {_describe(item)}")
        ids.add(_check_text(item, path + (i,), "id"))
    return sorted(ids, key=lambda t: t.encode("utf-8"))


def _norm_condition(value: Any, path: _Path, depth: int) -> dict[str, Any]:
    """Validate the condition on one field: an operator dict or a literal for ``$eq``."""
    if isinstance(value, Mapping) and any(isinstance(k, str) and k.startswith("$") for k in value):
        _check_depth(path, depth)
        plain = [k for k in value if not (isinstance(k, str) and k.startswith("$"))]
        if plain:
            raise _fail(path, f"mixes operators and plain keys ({plain[0]!r}); to match a dict value "
                              f"literally write {{\"$eq\": {{...}}}}")
        return {op: _norm_operand(op, operand, path + (op,), depth + 1) for op, operand in value.items()}
    return {"$eq": _norm_json(value, path, depth)}


def _norm_operand(op: str, operand: Any, path: _Path, depth: int) -> Any:
    """Validate the operand of field operator ``op``."""
    op = _check_text(op, path[:-1], "operator")
    if op in ("$eq", "$ne", "$contains"):
        return _norm_json(operand, path, depth)
    if op == "$icontains":
        if not isinstance(operand, str):
            raise _fail(path, f"$icontains takes a string, got {_describe(operand)}")
        return _check_text(operand, path, "operand")
    if op in ("$any", "$all"):
        if not isinstance(operand, list):
            raise _fail(path, f"{op} takes a list of values, e.g. {{\"{op}\": [\"a\", \"b\"]}}; "
                              f"got {_describe(operand)}")
        _check_depth(path, depth)
        return [_norm_json(item, path + (i,), depth + 1) for i, item in enumerate(operand)]
    if op in _ORDERING:
        if isinstance(operand, str):
            return _check_text(operand, path, "operand")
        if isinstance(operand, (int, float)) and not isinstance(operand, bool):
            return _norm_json(operand, path, depth)
        raise _fail(path, f"{op} compares with a number or a string, got {_describe(operand)}")
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            raise _fail(path, f"{op} takes a list of values, e.g. {{\"{op}\": [1, 2]}}; got {_describe(operand)}")
        _check_depth(path, depth)
        return [_norm_json(item, path + (i,), depth + 1) for i, item in enumerate(operand)]
    if op in ("$exists", "$empty"):
        if not isinstance(operand, bool):
            raise _fail(path, f"{op} takes true or false, got {_describe(operand)}")
        return operand
    if op in LOGICAL_OPERATORS:
        raise _fail(path, f"{op} is a logical operator and goes at a filter's top level, beside the "
                          f"field keys, e.g. {{\"$or\": [{{\"year\": 1}}, {{\"year\": 2}}]}}")
    raise _unknown(op, path)


def _norm_json(value: Any, path: _Path, depth: int) -> Any:
    """Validate a JSON operand value; return it with plain types and integral floats as ints."""
    _check_depth(path, depth)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _fail(path, f"{value!r} is not allowed (NaN and infinities are not JSON); use a finite number")
        return int(value) if value.is_integer() else float(value)
    if isinstance(value, str):
        return _check_text(value, path, "string")
    if isinstance(value, list):
        return [_norm_json(item, path + (i,), depth + 1) for i, item in enumerate(value)]
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise _fail(path, f"dict keys in values must be strings, got {_describe(key)}")
            key = _check_text(key, path, "key")
            out[key] = _norm_json(item, path + (key,), depth + 1)
        return out
    hint = " (use a list)" if isinstance(value, (tuple, set, frozenset)) else ""
    raise _fail(path, f"values must be JSON: str, int, float, bool, None, list or dict; "
                      f"got {_describe(value)}{hint}")


# --------------------------------------------------------------------------- evaluation
# Compiled from the normalised form only, so nothing here validates. Every check is total:
# a type mismatch is simply False.


def _is_number(value: Any) -> bool:
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
        return _is_number(value) and bool(value == operand)
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
        return _is_number(v) and bool(compare(v, operand))
    return order_number


def _in_check(operands: list[Any]) -> Check:
    """``$in``: strict membership, hashed by kind for scalars, scanned for lists/dicts."""
    strings = frozenset(o for o in operands if isinstance(o, str))
    numbers = frozenset(o for o in operands if _is_number(o))
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
    if op in _ORDERING:
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


def _build_filter(spec: dict[str, Any]) -> Predicate:
    """Compile a normalised filter dict into nested closures."""
    clauses: list[Predicate] = []
    # Field conditions first (usually cheapest), then logical operators; the result does not
    # depend on the order because no check has side effects or raises.
    for key in sorted(spec, key=lambda k: (k in LOGICAL_OPERATORS, k)):
        value = spec[key]
        if key == "$and":
            clauses.append(_all_of([_build_filter(sub) for sub in value]))
        elif key == "$or":
            clauses.append(_any_of([_build_filter(sub) for sub in value]))
        elif key == "$not":
            inner = _build_filter(value)
            clauses.append(lambda md, inner=inner: not inner(md))
        else:
            clauses.append(_build_field(key, value))
    return _all_of(clauses)
