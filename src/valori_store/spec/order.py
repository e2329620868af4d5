"""The numeric spec, part 3: the total order of results, and the reference exact top-k.

Results are sorted by rank key descending (``raw`` for similarities, ``-raw`` for
distances, see :mod:`.metrics`), then by id ascending compared as UTF-8 bytes. Ties at the
k-th place follow the same rule, so the returned set never depends on scan order, threads,
batch composition or (later) shard layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from valori_store.spec.metrics import get_metric


def id_key(record_id: str) -> bytes:
    """Tie-break key: the id's UTF-8 bytes."""
    return record_id.encode("utf-8")


def sort_key(rank_key: int, record_id: str) -> tuple[int, bytes]:
    """The total order as a sort key (ascending sort = best first)."""
    return -rank_key, record_id.encode("utf-8")


def top_k(
    metric: str,
    query: Sequence[int],
    matrix: np.ndarray,
    ids: Sequence[str],
    k: int,
) -> list[tuple[str, int]]:
    """Reference exact top-k: (id, raw) pairs under the total order of this spec."""
    m = get_metric(metric)
    scored = [(ids[i], m.raw(query, row)) for i, row in enumerate(np.asarray(matrix).tolist())]
    scored.sort(key=lambda t: sort_key(m.rank_key(t[1]), t[0]))
    return scored[:k]
