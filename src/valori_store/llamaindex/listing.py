"""Records matching a core filter without a query vector (``get_nodes``, deletes and
metadata-only queries).

The filter is evaluated by the core filter engine itself (``valori_store.filters``), on
records read through the public ``ValoriStore`` API, in canonical id order (ascending
UTF-8 bytes), in bounded chunks. Ranked retrieval never goes through here: every search
goes through ``ValoriStore.search`` / ``mmr_search`` with the filter attached.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from valori_store import Record, ValoriStore
from valori_store.filters import split_ids

__all__ = ["matching_ids", "matching_records"]

_CHUNK = 512


def matching_records(store: ValoriStore, filter: Mapping[str, Any] | None, limit: int | None = None) -> Iterator[Record]:
    """Records passing ``filter`` (``$ids`` included), in id order, at most ``limit``."""
    ids, pred = split_ids(filter)
    candidates = store.ids() if ids is None else ids  # split_ids sorts $ids by UTF-8 bytes
    if limit is not None and limit <= 0:
        return
    found = 0
    for start in range(0, len(candidates), _CHUNK):
        for rec in store.get(candidates[start : start + _CHUNK]):
            if pred is None or pred(rec.metadata):
                yield rec
                found += 1
                if limit is not None and found >= limit:
                    return


def matching_ids(store: ValoriStore, filter: Mapping[str, Any] | None) -> list[str]:
    """Ids of the records passing ``filter``, in id order."""
    ids, pred = split_ids(filter)
    if pred is None:
        return store.ids() if ids is None else [i for i in ids if i in store]
    return [rec.id for rec in matching_records(store, filter)]
