"""The normative numeric spec of valori-store, in plain NumPy and Python integers.

* :mod:`.numbers`: Q16.16 conversion of float input and integer cosine normalisation;
* :mod:`.metrics`: the metric registry (exact scores, rank keys, reported float scores,
  int64 bounds);
* :mod:`.order`: the total order of results and the reference top-k;
* :mod:`.state_tree`: the state root (a Merkle hash trie over the records) and its proofs.

Everything faster (the numba kernels) must equal these functions bit for bit.
"""

from __future__ import annotations

from valori_store.spec.metrics import (
    INT64_MAX,
    METRICS,
    REGISTRY,
    Metric,
    check_metric,
    get_metric,
    rank_key,
    raw_score,
    reported_score,
)
from valori_store.spec.numbers import (
    MAX_DIM,
    MAX_ID_BYTES,
    NORM_BITS,
    Q_MAX,
    Q_MIN,
    SCALE,
    SPEC_VERSION,
    SPEC_VERSIONS,
    check_dim,
    normalize,
    normalize_row,
    quantize,
    to_float64_matrix,
)
from valori_store.spec.order import id_key, sort_key, top_k

__all__ = [
    "INT64_MAX", "MAX_DIM", "MAX_ID_BYTES", "METRICS", "NORM_BITS", "Q_MAX", "Q_MIN", "REGISTRY", "SCALE", "SPEC_VERSION", "SPEC_VERSIONS",
    "Metric", "check_dim", "check_metric", "get_metric", "id_key", "normalize", "normalize_row", "quantize",
    "rank_key", "raw_score", "reported_score", "sort_key", "to_float64_matrix", "top_k",
]
