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

This module validates and normalises (:func:`normalise`, raising
:class:`~valori_store.errors.FilterError` with the path to the offending part) and gives the
canonical bytes of the normalised filter (:func:`canonical_bytes`), as recorded in
retrieval receipts. ``{}`` means "no filter", exactly like ``None``. Evaluation is in
:mod:`.filter_eval`; the compiled value that searches use is :class:`.filter.Filter`.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Mapping
from typing import Any

from valori_store.errors import FilterError
from valori_store.format.canonical import MAX_INT_DIGITS

__all__ = ["FIELD_OPERATORS", "ID_OPERATOR", "LOGICAL_OPERATORS", "MAX_DEPTH", "ORDERING", "canonical_bytes",
           "normalise"]

FIELD_OPERATORS: tuple[str, ...] = (
    "$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$contains",
    "$icontains", "$any", "$all", "$empty",
)
LOGICAL_OPERATORS: tuple[str, ...] = ("$and", "$or", "$not")
ID_OPERATOR = "$ids"
"""Top-level only: ``{"$ids": [...]}`` keeps records whose id is in the list (ANDed)."""
MAX_DEPTH = 64
"""Deepest nesting accepted (filters, operator dicts and operand lists/dicts all count)."""

ORDERING = ("$gt", "$gte", "$lt", "$lte")
_ALL_OPERATORS = FIELD_OPERATORS + LOGICAL_OPERATORS + (ID_OPERATOR,)
_Path = tuple[str | int, ...]
_SIMPLE_KEY = re.compile(r"[A-Za-z_$][A-Za-z0-9_$-]*")


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


def normalise(spec: Any) -> dict[str, Any] | None:
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
    if op in ORDERING:
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
        value = int(value)
        if value.bit_length() > 14000 and abs(value) >= 10**MAX_INT_DIGITS:
            raise _fail(path, f"integers have at most {MAX_INT_DIGITS} digits")
        return value
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


def canonical_bytes(normalised: dict[str, Any] | None) -> bytes:
    """Canonical UTF-8 JSON of a normalised filter; ``b"null"`` for no filter.

    Shorthand equality is expanded (``{"a": 1}`` -> ``{"a": {"$eq": 1}}``), keys are
    sorted, integral floats are written as ints (``1.0`` -> ``1``); list order is kept.
    """
    if normalised is None:
        return b"null"
    text = json.dumps(normalised, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8")
