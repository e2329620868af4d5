"""numba kernels that implement :mod:`valori_store.spec` at speed (bit-identical)."""

from __future__ import annotations

from valori_store.kernels.normalize import isqrt, normalize_rows, normalize_rows_serial
from valori_store.kernels.quantize import quantize_rows, quantize_rows_serial
from valori_store.kernels.scores import (
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

#: metric -> (single-query kernel, batched kernel, serial single-query kernel); cosine
#: scores normalised rows by dot.
KEY_KERNELS = {
    "cosine": (dot_keys, dot_keys_batch, dot_keys_serial),
    "dot": (dot_keys, dot_keys_batch, dot_keys_serial),
    "l2": (l2_keys, l2_keys_batch, l2_keys_serial),
}

__all__ = [
    "KEY_KERNELS",
    "SMALL_BATCH",
    "candidate_thresholds",
    "dot_keys",
    "dot_keys_batch",
    "dot_keys_serial",
    "isqrt",
    "l2_keys",
    "l2_keys_batch",
    "l2_keys_serial",
    "normalize_rows",
    "normalize_rows_serial",
    "quantize_rows",
    "quantize_rows_serial",
    "select_candidates",
]
