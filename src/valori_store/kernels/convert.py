"""Conversion kernels: Q16.16 conversion and cosine normalisation in one pass.

:func:`ingest_rows` (stored rows and row maxima, written in place) serves upserts;
:func:`query_rows` (raw and stored rows at once) serves queries.

Equals :func:`valori_store.spec.quantize` followed (under cosine) by
:func:`valori_store.spec.normalize`, exactly: the same steps as
:func:`~.quantize.quantize_rows` and :func:`~.normalize.normalize_row_into`, but written
straight into caller-provided rows (for the store: the free rows at the end of its
matrix), so a batch is converted without scratch matrices or a second copy.

The conversion loop has no early exit (so it vectorises): a value that is NaN, infinite
or outside int32 after rounding marks its row bad; that row's output is unspecified and
the caller re-runs the spec to raise the precise error.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.normalize import normalize_row_into
from valori_store.kernels.options import PARALLEL, SERIAL, serial_twin
from valori_store.spec import Q_MAX, Q_MIN, SCALE

#: Per-row status codes.
OK, BAD_VALUE, ZERO_VECTOR = 0, 1, 2
#: Rows per parallel work item (one scratch row each); results never depend on it.
CHUNK = 64


@njit(**SERIAL)
def quantize_row_into(x: np.ndarray, out: np.ndarray) -> int:
    """Q16.16 of one float row into int32 ``out``; returns how many values are NaN, infinite
    or outside int32 after rounding (``out`` is then unspecified). No early exit, so the
    loop vectorises."""
    lo = np.float64(Q_MIN)
    hi = np.float64(Q_MAX)
    scale = np.float64(SCALE)
    bad = 0
    for j in range(x.shape[0]):
        r = np.rint(np.float64(x[j]) * scale)  # exact product; NaN/inf stay NaN/inf
        inside = (r >= lo) & (r <= hi)  # False for NaN and +-inf too
        bad += np.int64(not inside)
        out[j] = np.int32(r) if inside else np.int32(0)
    return bad


@njit(**PARALLEL)
def ingest_rows(x: np.ndarray, cosine: bool, out: np.ndarray, rowmax: np.ndarray) -> np.ndarray:
    """Fill ``out`` (n, d) int32 with the stored rows of float ``x`` and ``rowmax`` (n,) int64
    with each stored row's max |value|; returns the uint8 status of each row.

    ``x`` must not overlap ``out``. Rows whose status is not OK have unspecified contents.
    """
    n, d = x.shape
    status = np.zeros(n, dtype=np.uint8)
    for c in prange((n + CHUNK - 1) // CHUNK):
        q = np.empty(d, dtype=np.int32)
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            if quantize_row_into(x[i], q):
                status[i] = BAD_VALUE
                continue
            if cosine:
                m = normalize_row_into(q, out[i])
                if m < 0:
                    status[i] = ZERO_VECTOR
                    continue
            else:
                m = np.int64(0)
                for j in range(d):
                    v = np.int64(q[j])
                    out[i, j] = q[j]
                    a = v if v >= 0 else -v
                    if a > m:
                        m = a
            rowmax[i] = m
    return status


#: Serial twin for a handful of rows; ``prange`` runs as ``range``.
ingest_rows_serial = serial_twin(ingest_rows)


@njit(**SERIAL)
def query_rows(x: np.ndarray, cosine: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Q16.16 rows as given, rows in stored form, uint8 status per row) of a few float
    query rows, in one call; the stored form is the raw rows under dot and l2.

    Same steps and statuses as :func:`ingest_rows`; rows whose status is not OK have
    unspecified contents.
    """
    n, d = x.shape
    raw = np.zeros((n, d), dtype=np.int32)
    stored = np.zeros((n, d), dtype=np.int32)
    status = np.zeros(n, dtype=np.uint8)
    for i in range(n):
        if quantize_row_into(x[i], raw[i]):
            status[i] = BAD_VALUE
        elif cosine:
            if normalize_row_into(raw[i], stored[i]) < 0:
                status[i] = ZERO_VECTOR
        else:
            stored[i] = raw[i]
    return raw, stored, status
