"""Relevance scores in [0, 1] by metric name: the public ``relevance`` / ``score_relevance_fn``.

The maps themselves are the core's (:mod:`valori_store.query.relevance`, documented in
docs/langchain/scores.md); searches get their relevance from
:meth:`ValoriStore.search_with_relevance`, which knows the query's exact self-score. These
two functions keep the adapter's public names and signatures (a metric *name*, and for
:func:`relevance` the hit's score and raw score and the query's self-score), so values
are bit-identical to what a search returns.
"""

from __future__ import annotations

from collections.abc import Callable

from valori_store.query import relevance as core_relevance
from valori_store.spec import get_metric

__all__ = ["relevance", "score_relevance_fn"]

def relevance(metric: str, score: float, raw: int, self_raw: int) -> float:
    """Relevance in [0, 1] of a hit (``score``/``raw`` from the store) for a query whose
    exact score with itself is ``self_raw`` (see docs/langchain/scores.md).

    ``l2`` uses the reported score (``1 / (1 + d)``, ``d = -score``); ``cosine``/``dot`` map
    the hit's score rescaled to the query's own self-score, ``raw / self_raw``, with the
    core's score map (a zero self-score is a zero query: 0.5). InputError for an unknown
    metric.
    """
    m = get_metric(metric)
    if m.distance:
        return core_relevance.score_relevance_fn(m)(score)
    return core_relevance.relevance_of_raw(m, raw, self_raw)


def score_relevance_fn(metric: str) -> Callable[[float], float]:
    """A score-only map (LangChain's ``_select_relevance_score_fn`` shape): it equals
    :func:`relevance` when the query's self-score is exactly 1 (``2**32`` raw)."""
    return core_relevance.score_relevance_fn(get_metric(metric))
