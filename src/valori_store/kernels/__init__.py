"""numba kernels that implement :mod:`valori_store.spec` at speed (bit-identical).

Leaf modules, one job each: :mod:`.convert` (Q16.16 conversion and normalisation),
:mod:`.normalize` (integer cosine normalisation), :mod:`.scores` (exact int64 scores),
:mod:`.select` (exact top-k candidates), :mod:`.options` (every compile flag).
"""

from __future__ import annotations

from valori_store.kernels.convert import BAD_VALUE, OK, ZERO_VECTOR, convert_rows, convert_rows_serial
from valori_store.kernels.normalize import isqrt, normalize_rows, normalize_rows_serial
from valori_store.kernels.scores import (
    QUERY_TILE,
    dot_keys,
    dot_keys_batch,
    dot_keys_serial,
    l2_keys,
    l2_keys_batch,
    l2_keys_serial,
)
from valori_store.kernels.select import candidate_thresholds, select_candidates

#: Below this many rows the serial twins of the conversion kernels are used.
SMALL_BATCH = 64

#: score family (``spec.Metric.family``) -> (single-query kernel, batched kernel, serial
#: single-query kernel). Cosine scores its normalised rows with the ``dot`` family.
KEY_KERNELS = {
    "dot": (dot_keys, dot_keys_batch, dot_keys_serial),
    "l2": (l2_keys, l2_keys_batch, l2_keys_serial),
}

__all__ = [
    "BAD_VALUE", "KEY_KERNELS", "OK", "QUERY_TILE", "SMALL_BATCH", "ZERO_VECTOR", "candidate_thresholds",
    "convert_rows", "convert_rows_serial", "dot_keys", "dot_keys_batch", "dot_keys_serial", "isqrt", "l2_keys",
    "l2_keys_batch", "l2_keys_serial", "normalize_rows", "normalize_rows_serial", "select_candidates",
]
