"""Deterministic maximal marginal relevance (MMR) over exact integer similarities.

Given candidates (the exact top ``fetch_k`` for a query) MMR picks ``k`` of them one at a
time: first the candidate most similar to the query, then repeatedly the candidate that
maximises ``lambda * sim(query, c) - (1 - lambda) * max over picked p of sim(c, p)``.

Every similarity is the metric's exact integer rank key (:meth:`valori_store.spec.Metric.rank_key`: the raw score
for dot/cosine, minus the squared distance for l2), so query and pairwise similarities
share one scale. ``lambda`` is taken as the exact fraction of its float64 value
(``lambda = p / q``), and candidates are compared on the exact integer
``p * sim_q - (q - p) * max_sim``; equal values go to the smaller id (UTF-8 bytes). No
float arithmetic is involved, so the selection is identical on every machine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from valori_store.errors import InputError
from valori_store.spec import Metric

__all__ = ["check_lambda", "select"]


def check_lambda(lambda_mult: float) -> Fraction:
    """``lambda_mult`` as an exact fraction in [0, 1]; raises InputError otherwise."""
    if isinstance(lambda_mult, bool) or not isinstance(lambda_mult, (int, float, Fraction)):
        raise InputError(f"lambda_mult must be a number in [0, 1], got {type(lambda_mult).__name__}")
    if isinstance(lambda_mult, float) and not math.isfinite(lambda_mult):
        raise InputError(f"lambda_mult must be a finite number in [0, 1], got {lambda_mult!r}")
    frac = Fraction(lambda_mult)
    if not 0 <= frac <= 1:
        raise InputError(f"lambda_mult must be in [0, 1] (1 = pure relevance, 0 = max diversity), "
                         f"got {lambda_mult!r}")
    return frac


def _pair_keys(metric: Metric, vectors: np.ndarray, pick: int) -> list[int]:
    """Exact similarity key of every candidate vector with candidate ``pick`` (Python ints).

    int64 is used when the metric's bound (:meth:`Metric.fits_int64`) holds for these
    vectors; otherwise exact Python-integer arithmetic.
    """
    dim = vectors.shape[1]
    wide = vectors.astype(np.int64)
    bound = int(np.abs(wide).max()) if wide.size else 0
    if metric.fits_int64(dim, bound, bound):
        if metric.distance:
            diff = wide - wide[pick]
            raws = np.einsum("ij,ij->i", diff, diff)
        else:
            raws = wide @ wide[pick]
        return [metric.rank_key(int(r)) for r in raws.tolist()]
    rows = vectors.tolist()
    return [metric.rank_key(metric.raw(row, rows[pick])) for row in rows]


def select(
    metric: Metric,
    query_keys: Sequence[int],
    vectors: np.ndarray,
    ids: Sequence[str],
    k: int,
    lam: Fraction,
) -> list[int]:
    """Indices (into the candidates) of the MMR selection, in pick order.

    ``query_keys[i]`` is candidate i's exact rank key against the query, ``vectors`` the
    candidates' stored int32 rows (normalised for cosine), ``ids`` their ids.
    """
    n = len(ids)
    if n == 0 or k <= 0:
        return []
    p, q = lam.numerator, lam.denominator
    id_bytes = [i.encode("utf-8") for i in ids]
    remaining = set(range(n))
    first = min(remaining, key=lambda i: (-query_keys[i], id_bytes[i]))
    picked = [first]
    remaining.discard(first)
    max_sim = _pair_keys(metric, vectors, first)
    while remaining and len(picked) < k:
        best = min(remaining, key=lambda i: (-(p * query_keys[i] - (q - p) * max_sim[i]), id_bytes[i]))
        picked.append(best)
        remaining.discard(best)
        if remaining and len(picked) < k:
            sims = _pair_keys(metric, vectors, best)
            max_sim = [max(a, b) for a, b in zip(max_sim, sims)]
    return picked
