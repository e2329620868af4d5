"""LlamaIndex ``MetadataFilters`` -> the core filter language (``docs/filters.md``).

Every restriction of a query (metadata filters, ``node_ids``, ``doc_ids``) becomes one
core filter, so the core applies it *before* ranking: ``k`` hits whenever ``k`` nodes
match, never a post-filtered shortfall.

Semantics follow LlamaIndex's reference evaluator
(``llama_index.core.vector_stores.utils.build_metadata_filter_fn``) with these rules:

* A missing key and a ``None`` value behave alike: ``NE``, ``NIN`` and ``IS_EMPTY`` match
  them, every other operator does not.
* ``AND`` / ``OR`` / ``NOT`` combine the filters of one ``MetadataFilters`` (``NOT``: none
  of them matches). Nested ``MetadataFilters`` are supported at any depth. An empty
  ``filters`` list restricts nothing, at any level and under any condition.
* Deliberately stricter than the reference (documented in docs/llamaindex.md):
  equality is type-strict (``True`` is not ``1``; ``1`` is not ``"1"``; ``1 == 1.0``
  holds), where the reference raises ``TypeError`` (``TEXT_MATCH`` on a non-string,
  ``GT`` between a string and a number...) the node simply does not match, ``ANY`` /
  ``ALL`` match list values only, ``CONTAINS`` tests list elements or substrings (not dict
  keys), ``IS_EMPTY`` also counts ``{}`` as empty, and operands of the wrong shape
  (``IN`` without a list, ``GT`` on a list, a ``None`` value outside ``IS_EMPTY``) raise
  :class:`UnsupportedFilterError` instead of being evaluated.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

from valori_store.filters import ID_OPERATOR, combine_filters, is_number
from valori_store.llamaindex.errors import UnsupportedFilterError
from valori_store.llamaindex.nodes import REF_DOC_ID_KEY

__all__ = ["query_filter", "translate_filters"]

CoreFilter = dict[str, Any]


def _need(cond: bool, f: MetadataFilter, what: str) -> None:
    if not cond:
        op = f.operator.name
        raise UnsupportedFilterError(
            f"MetadataFilter(key={f.key!r}, operator={op}) {what}; got value {f.value!r}"
        )


def _translate_one(f: MetadataFilter) -> CoreFilter:
    """One leaf filter as a core filter (exact; see the module docstring)."""
    key, value, op = f.key, f.value, FilterOperator(f.operator)
    if not isinstance(key, str) or not key or key.startswith("$"):
        raise UnsupportedFilterError(f"metadata key {key!r} cannot be filtered on (empty, or starts with '$')")
    if op == FilterOperator.IS_EMPTY:
        return {key: {"$empty": True}}  # the value is ignored, as in the reference
    _need(value is not None, f, "needs a value (use FilterOperator.IS_EMPTY to test for a missing or null value)")
    if op == FilterOperator.EQ:
        return {key: {"$eq": value}}
    if op == FilterOperator.NE:  # the reference also matches a missing key and None
        return {"$not": {key: {"$eq": value}}}
    if op in (FilterOperator.GT, FilterOperator.GTE, FilterOperator.LT, FilterOperator.LTE):
        _need(is_number(value) or isinstance(value, str), f, "compares with a number or a string")
        return {key: {"$" + op.name.lower(): value}}
    if op in (FilterOperator.IN, FilterOperator.NIN, FilterOperator.ANY, FilterOperator.ALL):
        _need(isinstance(value, list), f, "takes a list of values")
        core_op = {"IN": "$in", "NIN": "$in", "ANY": "$any", "ALL": "$all"}[op.name]
        clause = {key: {core_op: list(value)}}
        return {"$not": clause} if op == FilterOperator.NIN else clause
    if op == FilterOperator.CONTAINS:
        return {key: {"$contains": value}}
    if op == FilterOperator.TEXT_MATCH:
        _need(isinstance(value, str), f, "takes a string")
        # $contains alone would also match a list holding the string; $gte "" holds for
        # every string and nothing else, so the pair is "a string containing value".
        return {key: {"$contains": value, "$gte": ""}}
    if op == FilterOperator.TEXT_MATCH_INSENSITIVE:
        _need(isinstance(value, str), f, "takes a string")
        return {key: {"$icontains": value}}
    raise UnsupportedFilterError(f"filter operator {op!r} is not supported")  # pragma: no cover


def translate_filters(filters: MetadataFilters | None) -> CoreFilter:
    """``filters`` as a core filter; ``{}`` (no restriction) for None or an empty list."""
    if filters is None or not filters.filters:
        return {}
    parts = [
        translate_filters(f) if isinstance(f, MetadataFilters) else _translate_one(f) for f in filters.filters
    ]
    condition = FilterCondition(filters.condition or FilterCondition.AND)
    if condition == FilterCondition.AND:
        return parts[0] if len(parts) == 1 else {"$and": parts}
    any_part = parts[0] if len(parts) == 1 else {"$or": parts}
    if condition == FilterCondition.OR:
        return any_part
    return {"$not": any_part}  # NOT: none of the filters matches


def _str_list(name: str, values: Sequence[str]) -> list[str]:
    if isinstance(values, (str, bytes)) or not all(isinstance(v, str) for v in values):
        raise UnsupportedFilterError(f"{name} must be a list of str, got {values!r}")
    return list(values)


def query_filter(
    filters: MetadataFilters | None = None,
    node_ids: Sequence[str] | None = None,
    doc_ids: Sequence[str] | None = None,
) -> CoreFilter:
    """One core filter for a query's restrictions (ANDed by
    :func:`valori_store.filters.combine_filters`); ``{}`` when there are none.

    ``node_ids`` becomes the core's top-level ``$ids`` (sorted by UTF-8 bytes, unique);
    ``doc_ids`` a ``$in`` on the stored ref-doc-id key. ``None`` or an empty list restricts
    nothing.
    """
    parts = [translate_filters(filters)]
    if doc_ids:
        parts.append({REF_DOC_ID_KEY: {"$in": _str_list("doc_ids", doc_ids)}})
    if node_ids:
        parts.append({ID_OPERATOR: _str_list("node_ids", node_ids)})
    return combine_filters(parts) or {}
