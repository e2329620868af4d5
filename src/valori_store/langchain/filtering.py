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
from valori_store.langchain.documents import record_to_document
from valori_store.query.filters import ID_OPERATOR

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


def _id_list(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FilterError(f'{ID_OPERATOR} takes a list of str record ids, e.g. {{"$ids": ["a", "b"]}}; '
                          f"got {value!r}")
    return value


def to_core_filter(store: ValoriStore, filter: Any) -> dict[str, Any] | None:
    """The core filter equivalent to ``filter`` on ``store``'s current records.

    Dicts are ANDed (their ``$ids`` lists intersected and kept at the top level). Callables
    are called once per stored record (in id order, after the dict parts' ``$ids``
    restriction) with a fresh Document; the ids they all accept become ``$ids``.
    """
    dicts, calls = _split(filter)
    id_sets: list[list[str]] = []
    rest: list[dict[str, Any]] = []
    for d in dicts:
        body = dict(d)
        if ID_OPERATOR in body:
            id_sets.append(_id_list(body.pop(ID_OPERATOR)))
        if body:
            rest.append(body)
    allowed: list[str] | None = None
    if id_sets:
        common = set(id_sets[0]).intersection(*id_sets[1:])
        allowed = sorted(common, key=lambda s: s.encode("utf-8"))
    if calls:
        candidates = store.ids() if allowed is None else allowed
        docs = [record_to_document(r) for r in store.get(candidates)]
        allowed = [doc.id for doc in docs if all(bool(fn(doc)) for fn in calls)]  # type: ignore[misc]
    out: dict[str, Any] = {}
    if len(rest) == 1:
        out.update(rest[0])
    elif rest:
        out["$and"] = rest
    if allowed is not None:
        out[ID_OPERATOR] = allowed
    return out or None
