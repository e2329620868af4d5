"""Relevance scores in [0, 1] for each metric (framework-free, deterministic).

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

from collections.abc import Callable, Sequence

import numpy as np

from valori_store import spec
from valori_store.errors import InputError

__all__ = ["query_self_raw", "relevance", "score_relevance_fn"]


def _clamp01(x: float) -> float:
    return 0.0 if x < 0.0 else 1.0 if x > 1.0 else x


def query_self_raw(metric: str, query: Sequence[float], dim: int) -> int:
    """The query's exact integer score with itself, as the store would compute it.

    The query is quantised to Q16.16 (and integer-normalised under cosine) exactly as
    :meth:`ValoriStore.search` does, so an identical stored vector scores exactly this.
    """
    q = spec.quantize(np.asarray([query], dtype=np.float64), dim)
    if metric == "cosine":
        q = spec.normalize(q)
    row = q[0].tolist()
    return spec.raw_score("dot", row, row)


def relevance(metric: str, score: float, raw: int, self_raw: int) -> float:
    """Relevance in [0, 1] of a hit (``score``/``raw`` from the store; see module doc)."""
    if metric == "l2":
        return 1.0 / (1.0 + (0.0 - score))
    if metric in ("cosine", "dot"):
        if self_raw == 0:
            return 0.5
        return _clamp01((1.0 + raw / self_raw) / 2.0)
    raise InputError(f"unknown metric {metric!r}")


def score_relevance_fn(metric: str) -> Callable[[float], float]:
    """A score-only map (LangChain's ``_select_relevance_score_fn`` shape).

    It equals :func:`relevance` when the query's self-score is exactly 1 (``2**32`` raw);
    the store itself uses :func:`relevance`, which also knows the query's self-score.
    """
    if metric == "l2":
        return lambda score: 1.0 / (1.0 + (0.0 - score))
    if metric in ("cosine", "dot"):
        return lambda score: _clamp01((1.0 + score) / 2.0)
    raise InputError(f"unknown metric {metric!r}")
