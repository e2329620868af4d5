"""The compiled filter: one value per search, normalised once, used by ranking and receipts.

:meth:`Filter.compile` validates a filter dict (the language: :mod:`.filter_language`,
docs/filters.md) and returns a :class:`Filter` holding its ``$ids`` restriction, its
compiled predicate and its canonical bytes; :meth:`Filter.mask` evaluates it on a table.
:func:`combine_filters` is the one place that ANDs several filter dicts and intersects
their ``$ids`` lists (the adapters use it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from valori_store.errors import FilterError
from valori_store.query import filter_eval, filter_plan
from valori_store.query.filter_eval import Predicate
from valori_store.query.filter_language import ID_OPERATOR, canonical_bytes, normalise
from valori_store.state.table import RecordTable

__all__ = ["NO_FILTER", "Filter", "canonical_filter", "combine_filters", "compile_filter", "split_ids"]


@dataclass(frozen=True)
class Filter:
    """A validated filter. ``ids``: the ``$ids`` restriction (sorted by UTF-8 bytes, unique;
    None for none); ``predicate``: the rest, compiled (None for none); ``canonical``: the
    canonical JSON of the whole normalised filter (``b"null"`` for no filter)."""

    ids: tuple[str, ...] | None = None
    predicate: Predicate | None = field(default=None, compare=False)
    canonical: bytes = b"null"
    #: The normalised filter without ``$ids`` (what ``predicate`` was compiled from).
    spec: dict[str, Any] | None = field(default=None, compare=False)

    @classmethod
    def compile(cls, spec: Mapping[str, Any] | None) -> Filter:
        """Validate ``spec`` (FilterError naming the offending part); ``None``/``{}``: no filter."""
        if isinstance(spec, Filter):
            return spec
        normalised = normalise(spec)
        if normalised is None:
            return NO_FILTER
        canonical = canonical_bytes(normalised)
        ids = normalised.pop(ID_OPERATOR, None)
        return cls(None if ids is None else tuple(ids), filter_eval.build(normalised) if normalised else None,
                   canonical, normalised or None)

    @property
    def empty(self) -> bool:
        """True when the filter restricts nothing."""
        return self.ids is None and self.predicate is None

    def mask(self, table: RecordTable) -> np.ndarray | None:
        """Bool mask of the table rows passing the filter (None: every row passes), from the
        table's typed metadata columns (:mod:`.filter_plan`)."""
        out = None
        if self.predicate is not None:
            assert self.spec is not None
            out = filter_plan.evaluate(self.spec, self.predicate, table)
        if self.ids is not None:
            by_id = np.zeros(len(table), dtype=np.bool_)
            rows = [r for r in map(table.row_of.get, self.ids) if r is not None]
            by_id[rows] = True
            out = by_id if out is None else out & by_id
        return out

    def rows(self, table: RecordTable) -> list[int]:
        """Rows passing the filter, in canonical (id) order."""
        if self.predicate is None and self.ids is not None:
            return [r for r in map(table.row_of.get, self.ids) if r is not None]  # ids are in id order
        order = table.id_order_array()
        mask = self.mask(table)
        return (order if mask is None else order[mask[order]]).tolist()


NO_FILTER = Filter()


def compile_filter(spec: Mapping[str, Any] | None) -> Predicate | None:
    """Validate ``spec`` and return a predicate over a record's metadata dict.

    ``None`` and ``{}`` give ``None`` (no filter). Raises :class:`FilterError` when the
    filter is malformed or holds ``$ids`` (which needs the store: use :meth:`Filter.compile`).
    The predicate returns a bool and never raises on JSON metadata.
    """
    f = Filter.compile(spec)
    if f.ids is not None:
        raise FilterError("invalid filter: $ids restricts record ids and needs the store; "
                          "use Filter.compile() or split_ids() outside a store")
    return f.predicate


def canonical_filter(spec: Mapping[str, Any] | None) -> bytes:
    """Canonical UTF-8 JSON of the validated, normalised filter; ``b"null"`` for no filter."""
    return Filter.compile(spec).canonical


def split_ids(spec: Mapping[str, Any] | None) -> tuple[list[str] | None, Predicate | None]:
    """Validate ``spec``; return its ``$ids`` restriction (sorted, unique) and the rest compiled.

    ``(None, None)`` means no restriction at all; an ``$ids`` list may be empty (matches nothing).
    """
    f = Filter.compile(spec)
    return (None if f.ids is None else list(f.ids)), f.predicate


def _id_list(value: Any) -> list[str]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise FilterError(f'{ID_OPERATOR} takes a list of str record ids, e.g. {{"$ids": ["a", "b"]}}; '
                          f"got {value!r}")
    return list(value)


def combine_filters(parts: Iterable[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """One filter dict that holds when every part holds (None parts and ``{}`` are ignored).

    The parts' ``$ids`` lists are intersected and kept at the top level (sorted by UTF-8
    bytes); the other conditions are ANDed (a single part is kept as it is). Returns None
    when nothing restricts. The result is validated by the search that uses it.
    """
    rest: list[dict[str, Any]] = []
    id_sets: list[list[str]] = []
    for part in parts:
        if part is None:
            continue
        if not isinstance(part, Mapping):
            raise FilterError(f"a filter must be a dict such as {{\"year\": 2020}}, got {type(part).__name__}")
        body = dict(part)
        if ID_OPERATOR in body:
            id_sets.append(_id_list(body.pop(ID_OPERATOR)))
        if body:
            rest.append(body)
    out: dict[str, Any] = {}
    if len(rest) == 1:
        out.update(rest[0])
    elif rest:
        out["$and"] = rest
    if id_sets:
        common = set(id_sets[0]).intersection(*id_sets[1:])
        out[ID_OPERATOR] = sorted(common, key=lambda s: s.encode("utf-8"))
    return out or None
