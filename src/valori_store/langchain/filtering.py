"""Translate a LangChain ``filter=`` argument into the core filter language.

Accepted: ``None``; a core filter dict (see docs/filters.md); a callable
``Document -> bool``; or a list/tuple of those, all of which must hold. A callable is
evaluated over the stored records (as Documents) and becomes a top-level ``$ids``
restriction, so every search still runs inside the core with the restriction applied
before ranking: ``k`` results come back whenever ``k`` records match.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from valori_store.errors import FilterError
from valori_store.filters import ID_OPERATOR, combine_filters
from valori_store.langchain.documents import record_to_document

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from valori_store import ValoriStore

DocPredicate = Callable[["Document"], Any]

__all__ = ["DocPredicate", "to_core_filter"]


def _split(filter: Any) -> tuple[list[Mapping[str, Any]], list[DocPredicate]]:
    parts = list(filter) if isinstance(filter, (list, tuple)) else [filter]
    dicts: list[Mapping[str, Any]] = []
    calls: list[DocPredicate] = []
    for i, part in enumerate(parts):
        if part is None:
            continue
        if isinstance(part, Mapping):
            dicts.append(part)
        elif callable(part):
            calls.append(part)
        else:
            where = f"filter[{i}]" if isinstance(filter, (list, tuple)) else "filter"
            raise FilterError(
                f"{where} must be a filter dict (docs/filters.md), a callable Document -> bool, "
                f"or a list of those; got {type(part).__name__}"
            )
    return dicts, calls


def to_core_filter(store: ValoriStore, filter: Any) -> dict[str, Any] | None:
    """The core filter equivalent to ``filter`` on ``store``'s current records.

    Dicts are ANDed by :func:`valori_store.filters.combine_filters` (their ``$ids`` lists
    intersected and kept at the top level). Callables are called once per stored record
    (in id order, after the dict parts' ``$ids`` restriction) with a fresh Document; the
    ids they all accept become one more ``$ids`` part, ANDed the same way.
    """
    dicts, calls = _split(filter)
    combined = combine_filters(dicts)
    if not calls:
        return combined
    allowed = None if combined is None else combined.get(ID_OPERATOR)
    candidates = store.ids() if allowed is None else allowed
    docs = [record_to_document(r) for r in store.get(candidates)]
    accepted = [doc.id for doc in docs if all(bool(fn(doc)) for fn in calls)]
    return combine_filters([combined, {ID_OPERATOR: accepted}])
