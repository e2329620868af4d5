"""Keyword-argument checks shared by every :class:`ValoriVectorStore` method."""

from __future__ import annotations

from typing import Any

from valori_store.errors import InputError

__all__ = ["RETRIEVER_OPTIONS", "check_batch_size", "no_extra"]

#: Search options that retrievers pass along with shared ``search_kwargs`` and that other
#: vector stores accept on every search method; they are ignored where they do not apply
#: (e.g. ``fetch_k`` on a plain similarity search), so switching ``search_type`` works.
RETRIEVER_OPTIONS = frozenset({"fetch_k", "lambda_mult", "score_threshold"})


def no_extra(kwargs: dict[str, Any], method: str) -> None:
    """Reject unknown keyword arguments (typos such as ``filters=`` must not pass silently);
    the retriever options in :data:`RETRIEVER_OPTIONS` are accepted and ignored by searches."""
    unknown = set(kwargs)
    if method.lstrip("a").startswith(("similarity_search", "max_marginal")):
        unknown -= RETRIEVER_OPTIONS
    if unknown:
        names = ", ".join(sorted(unknown))
        raise InputError(f"{method}() got unexpected keyword argument(s): {names}")


def check_batch_size(batch_size: Any, n: int) -> int:
    """``batch_size`` as a positive int (``None``: one batch of all ``n`` items)."""
    if batch_size is None:
        return max(n, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise InputError(f"batch_size must be a positive int or None (one batch), got {batch_size!r}")
    return batch_size
