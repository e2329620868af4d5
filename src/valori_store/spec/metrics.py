"""The numeric spec, part 2: the metric registry (scores, rank keys, reported scores, bounds).

Every metric-dependent rule lives in one :class:`Metric` value, looked up by name with
:func:`get_metric`; no other module branches on a metric's name.

Scores (exact integers, never wrapped) of two Q16.16 vectors ``a``, ``b``:

* ``dot`` and ``cosine``: ``raw = sum a_i * b_i`` (cosine rows are integer-normalised at
  ingest, see :mod:`.numbers`, so the dot product is the cosine at scale 2**32);
* ``l2``: ``raw = sum (a_i - b_i)**2`` (the squared distance; lower is closer).

The **rank key** is bigger-is-better: ``raw`` for similarities, ``-raw`` for distances.
The **reported float score** (higher is always more similar) is one correctly rounded IEEE
operation on the exact integer: ``raw / 2**32`` (Python's int / int true division) for
similarities; ``0.0 - sqrt(raw) / 2**16`` for l2 (``math.sqrt`` of the float64 of ``raw``;
the division by a power of two and the subtraction from zero are exact; a zero distance
scores +0.0, never -0.0).

**int64 bounds.** Every partial sum of a similarity is at most ``dim * max|a| * max|b|``
in magnitude, of a squared distance at most ``dim * (max|a| + max|b|)**2``; when that
bound is at most ``2**63 - 1`` the int64 kernels are exact whatever the summation order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from valori_store.errors import InputError
from valori_store.spec.numbers import SCALE

#: Largest int64.
INT64_MAX = (1 << 63) - 1
#: Every stored or query value of a cosine store is within this magnitude (numbers, step 4).
COSINE_MAXABS = 1 << 16


@dataclass(frozen=True)
class Metric:
    """One metric's rules. ``code`` is its byte in file headers; ``family`` names the score
    kernel (``dot`` or ``l2``); ``normalised`` means rows are integer-normalised (cosine);
    ``distance`` means a smaller raw score is closer."""

    name: str
    code: int
    family: str
    normalised: bool
    distance: bool

    def raw(self, a: Sequence[int], b: Sequence[int]) -> int:
        """The exact integer score of two Q16.16 vectors (Python ints; never overflows)."""
        xs = [int(v) for v in a]
        ys = [int(v) for v in b]
        if self.distance:
            return sum((x - y) * (x - y) for x, y in zip(xs, ys))
        return sum(x * y for x, y in zip(xs, ys))

    def rank_key(self, raw: int) -> int:
        """Bigger is better: ``-raw`` for a distance, ``raw`` for a similarity."""
        return -raw if self.distance else raw

    def raw_of_key(self, key: int) -> int:
        """Inverse of :meth:`rank_key`."""
        return -key if self.distance else key

    def reported(self, raw: int) -> float:
        """The float score of a raw integer score: one correctly rounded operation."""
        if self.distance:
            return 0.0 - math.sqrt(raw) / SCALE  # 0.0 - x, not -x: a zero distance scores +0.0
        return raw / (1 << 32)  # int / int: the exact quotient, correctly rounded once

    def fits_int64(self, dim: int, maxabs_a: int, maxabs_b: int) -> bool:
        """True when no partial sum of any score of such vectors can leave int64."""
        if self.distance:
            return dim * (maxabs_a + maxabs_b) ** 2 <= INT64_MAX
        return dim * maxabs_a * maxabs_b <= INT64_MAX

    def row_limit(self, dim: int, query_maxabs: int) -> int:
        """The largest per-row max|value| for which the int64 bound holds against a query."""
        if self.distance:
            return math.isqrt(INT64_MAX // dim) - query_maxabs
        return INT64_MAX // (dim * query_maxabs) if query_maxabs else INT64_MAX

    def query_maxabs(self, stored_query: Sequence[int]) -> int:
        """max|value| of a stored-form query, or an upper bound of it (cosine: 2**16)."""
        if self.normalised:
            return COSINE_MAXABS
        return max((abs(int(v)) for v in stored_query), default=0)


#: Metric names in code order (the header byte is the index).
METRICS = ("cosine", "dot", "l2")
REGISTRY: dict[str, Metric] = {
    "cosine": Metric("cosine", 0, "dot", normalised=True, distance=False),
    "dot": Metric("dot", 1, "dot", normalised=False, distance=False),
    "l2": Metric("l2", 2, "l2", normalised=False, distance=True),
}
assert tuple(REGISTRY) == METRICS and all(m.code == METRICS.index(n) for n, m in REGISTRY.items())


def get_metric(name: str) -> Metric:
    """The registry entry of ``name``; InputError for an unknown metric."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown metric {name!r}; use one of {', '.join(METRICS)}") from None


def check_metric(metric: str) -> str:
    """Return ``metric`` if it is one of :data:`METRICS`, else raise InputError."""
    return get_metric(metric).name


def raw_score(metric: str, a: Sequence[int], b: Sequence[int]) -> int:
    """:meth:`Metric.raw` by name."""
    return get_metric(metric).raw(a, b)


def rank_key(metric: str, raw: int) -> int:
    """:meth:`Metric.rank_key` by name."""
    return get_metric(metric).rank_key(raw)


def reported_score(metric: str, raw: int) -> float:
    """:meth:`Metric.reported` by name."""
    return get_metric(metric).reported(raw)
