"""Public filter API (the documented import path): compile, canonicalise and combine filters.

The language is described in docs/filters.md and :mod:`valori_store.query.filter_language`.
"""

from valori_store.query.filter import Filter, canonical_filter, combine_filters, compile_filter, split_ids
from valori_store.query.filter_eval import Predicate, filter_mask, is_number
from valori_store.query.filter_language import FIELD_OPERATORS, ID_OPERATOR, LOGICAL_OPERATORS, MAX_DEPTH

__all__ = [
    "FIELD_OPERATORS", "ID_OPERATOR", "LOGICAL_OPERATORS", "MAX_DEPTH", "Filter", "Predicate", "canonical_filter",
    "combine_filters", "compile_filter", "filter_mask", "is_number", "split_ids",
]
