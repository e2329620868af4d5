"""Errors raised by the LlamaIndex adapter (all in the valori_store.errors hierarchy)."""

from __future__ import annotations

from valori_store.errors import FilterError, InputError

__all__ = ["UnsupportedFilterError", "UnsupportedQueryModeError"]


class UnsupportedQueryModeError(InputError):
    """A ``VectorStoreQuery.mode`` other than DEFAULT or MMR (also a ValueError)."""


class UnsupportedFilterError(FilterError):
    """A ``MetadataFilter`` that has no exact translation (wrong value type for its operator)."""
