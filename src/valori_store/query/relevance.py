"""Relevance scores in [0, 1] for each metric (deterministic; what LangChain's relevance needs).

LangChain's ``similarity_search_with_relevance_scores`` wants 0 = dissimilar, 1 = most
similar. The maps below are monotone in the store's score for a fixed query, computed from
the exact integer scores with a fixed short sequence of IEEE operations (no ``exp``/``log``
whose last bit may differ between C libraries), so relevance values are bit-identical
everywhere too.

* ``cosine`` and ``dot``: ``clamp((1 + raw / self_raw) / 2, 0, 1)`` where ``raw`` is the
  hit's exact integer score and ``self_raw`` the query's exact score with itself (for
  cosine: its integer-normalised vector, so ``raw / self_raw`` is the cosine rescaled so
  that the query's own stored copy gives exactly 1). A stored copy of the query therefore
  gets exactly ``1.0``; opposite vectors get ``0.0``. For unit-length embeddings under
  ``dot`` this is the cosine map; longer vectors whose projection on the query exceeds the
  query's length are clamped to ``1.0``. A zero query under ``dot`` (every score 0) gives
  ``0.5`` for every hit.
* ``l2``: ``1 / (1 + d)`` with ``d`` the Euclidean distance (``d = -score``): ``1.0`` for an
  exact match, falling towards 0 with distance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from valori_store.spec import Metric

__all__ = ["relevance", "relevance_of_raw", "score_relevance_fn", "self_raw"]


def _clamp01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def self_raw(stored_query: np.ndarray) -> int:
    """The exact integer dot product of a stored-form query with itself (Python ints)."""
    row = [int(v) for v in stored_query.tolist()]
    return sum(v * v for v in row)


def relevance_of_raw(metric: Metric, raw: int, own: int) -> float:
    """Relevance in [0, 1] of a hit with exact score ``raw`` for a query whose exact score
    with itself is ``own`` (unused under l2)."""
    if metric.distance:
        return 1.0 / (1.0 + (0.0 - metric.reported(raw)))
    if own == 0:
        return 0.5
    return _clamp01((1.0 + raw / own) / 2.0)


def relevance(metric: Metric, stored_query: np.ndarray, raw: int) -> float:
    """Relevance in [0, 1] of a hit with exact score ``raw`` for this stored-form query."""
    return relevance_of_raw(metric, raw, 0 if metric.distance else self_raw(stored_query))


def score_relevance_fn(metric: Metric) -> Callable[[float], float]:
    """A score-only map (LangChain's ``_select_relevance_score_fn`` shape): it equals
    :func:`relevance` when the query's self-score is exactly 1 (``2**32`` raw)."""
    if metric.distance:
        return lambda score: 1.0 / (1.0 + (0.0 - score))
    return lambda score: _clamp01((1.0 + score) / 2.0)
