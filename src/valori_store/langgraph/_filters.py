"""Translate LangGraph store filters into the core filter language.

LangGraph's filter (as implemented by ``InMemoryStore``) compares ``item.value[key]``
with each filter entry: a scalar means equality (a missing key reads as ``None``), a dict
without ``$`` keys is a nested partial match (the value must be a dict; each listed
sub-key is compared recursively), a list means element-wise equality, and an operator
dict applies ``$eq $ne $gt $gte $lt $lte``. The translation addresses the ``v:`` value
fields and ``lg:dicts`` of :mod:`._layout`, so the whole filter runs inside the core
search, before top-k. Deliberate differences (documented in docs/langgraph/memory.md):
equality is the core's type-strict one (``True`` is not ``1``), ``$gt``-family
operators compare numbers with numbers and strings with strings and are false (instead
of raising) on a missing or other-typed value, and list literals compare exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from valori_store.errors import FilterError
from valori_store.langgraph import _layout as L

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _literal(value: Any, where: str) -> Any:
    """A JSON literal for the core (tuples become lists); FilterError for anything else."""
    if isinstance(value, (list, tuple)):
        return [_literal(v, where) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _literal(v, where) for k, v in value.items()}
    return value


def _parent_is_dict(path: tuple[str, ...]) -> list[dict[str, Any]]:
    if len(path) == 1:
        return []  # the value itself is always a dict
    return [{L.DICTS: {"$contains": L.path_text(path[:-1])}}]


def _missing_or_null(path: tuple[str, ...]) -> dict[str, Any]:
    f = L.field_key(path)
    return {"$or": [{f: {"$exists": False}}, {f: None}]}


def _eq(path: tuple[str, ...], operand: Any, where: str) -> list[dict[str, Any]]:
    if operand is None:  # a missing key reads as None
        return [*_parent_is_dict(path), _missing_or_null(path)]
    return [{L.field_key(path): {"$eq": _literal(operand, where)}}]


def _ne(path: tuple[str, ...], operand: Any, where: str) -> list[dict[str, Any]]:
    f = L.field_key(path)
    if operand is None:
        return [{f: {"$ne": None}}]
    return [*_parent_is_dict(path), {"$or": [{f: {"$exists": False}}, {f: {"$ne": _literal(operand, where)}}]}]


def _condition(path: tuple[str, ...], cond: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(cond, Mapping):
        if any(isinstance(k, str) and k.startswith("$") for k in cond):
            out: list[dict[str, Any]] = []
            for op, operand in cond.items():
                if op == "$eq":
                    out += _eq(path, operand, where)
                elif op == "$ne":
                    out += _ne(path, operand, where)
                elif op in OPERATORS:
                    if isinstance(operand, bool) or not isinstance(operand, (int, float, str)):
                        raise FilterError(
                            f"invalid filter at {where}.{op}: {op} takes a number or a string, got {operand!r}"
                        )
                    out.append({L.field_key(path): {op: operand}})
                else:
                    raise FilterError(
                        f"invalid filter at {where}: unsupported operator {op!r}; LangGraph store filters "
                        f"support {', '.join(OPERATORS)} (plain values mean equality, dicts match nested fields)"
                    )
            return out
        out = [*_parent_is_dict(path), {L.DICTS: {"$contains": L.path_text(path)}}]  # the value is a dict
        for k, v in cond.items():
            if not isinstance(k, str):
                raise FilterError(f"invalid filter at {where}: keys must be str, got {k!r}")
            out += _condition((*path, k), v, f"{where}.{k}")
        return out
    return _eq(path, cond, where)


def translate(filter: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """Core filter clauses (to be ANDed) equivalent to a LangGraph store ``filter``."""
    if not filter:
        return []
    if not isinstance(filter, Mapping):
        raise FilterError(f"a store filter must be a dict, got {type(filter).__name__}")
    clauses: list[dict[str, Any]] = []
    for key, cond in filter.items():
        if not isinstance(key, str):
            raise FilterError(f"filter keys must be str, got {key!r}")
        clauses += _condition((key,), cond, key)
    return clauses
