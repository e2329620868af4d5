"""Records matching a core filter without a query vector (``get_nodes``, deletes and
metadata-only queries).

The filter is evaluated by the core itself (``ValoriStore.select``: one consistent view, in
canonical id order, ascending UTF-8 bytes). Ranked retrieval never goes through here: every search
goes through ``ValoriStore.search`` / ``mmr_search`` with the filter attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from valori_store import Record, ValoriStore
from valori_store.query.filters import split_ids

__all__ = ["matching_ids", "matching_records"]

def matching_records(store: ValoriStore, filter: Mapping[str, Any] | None, limit: int | None = None) -> Iterator[Record]:
    """Records passing ``filter`` (``$ids`` included), in id order, at most ``limit``."""
    if limit is not None and limit <= 0:
        return iter(())
    return iter(store.select(filter, limit=limit))


def matching_ids(store: ValoriStore, filter: Mapping[str, Any] | None) -> list[str]:
    """Ids of the records passing ``filter``, in id order."""
    ids, pred = split_ids(filter)
    if pred is None:
        return store.ids() if ids is None else [i for i in ids if i in store]
    return [rec.id for rec in store.select(filter)]
