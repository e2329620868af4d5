"""Print digests of every kernel's output on fixed integer inputs (one line each).

Run under different environments (NUMBA_DISABLE_JIT=1, NUMBA_NUM_THREADS=1, default)
by tests/core/test_kernels.py; every line must be identical across them.
"""

from __future__ import annotations

import hashlib
import sys

import numpy as np


def digest(a: object) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:24]


def inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.Generator(np.random.PCG64(20261127))
    rows = rng.integers(-(1 << 20), 1 << 20, size=(300, 16), dtype=np.int64).astype(np.int32)
    rows[100:140] = rows[7]  # many exact ties
    queries = rng.integers(-(1 << 20), 1 << 20, size=(5, 16), dtype=np.int64).astype(np.int32)
    return rows, queries


def main() -> int:
    from valori_store import ValoriStore
    from valori_store.kernels import (
        candidate_thresholds,
        dot_keys,
        dot_keys_batch,
        l2_keys,
        l2_keys_batch,
        normalize_rows,
        select_candidates,
    )
    from valori_store.kernels.convert import convert_rows

    rows, queries = inputs()
    normed, zero = normalize_rows(rows)
    print("normalize", digest(normed), digest(zero))
    floats = rows / 65536.0 + 0.25 / 65536.0  # off-grid values: rounding matters
    floats[3, 4] = np.nan
    stored, rowmax = np.zeros(rows.shape, np.int32), np.zeros(len(rows), np.int64)
    status = convert_rows(floats, True, np.zeros((0, rows.shape[1]), np.int32), stored, rowmax)
    print("ingest", digest(status), digest(stored[status == 0]), digest(rowmax[status == 0]))
    for name, kernel in (("dot", dot_keys), ("l2", l2_keys)):
        keys = np.stack([kernel(rows, len(rows), q) for q in queries])
        print(name, digest(keys))
        print(name, "select", digest(np.concatenate([select_candidates(k, np.zeros(0, np.uint8), 10) for k in keys])))
    from valori_store.kernels.narrow import bounded_candidates, narrow_bounds, narrow_into

    mask3 = (np.arange(len(rows)) % 3 != 1).astype(np.uint8)
    y, shifts, x2 = np.zeros(rows.shape, np.int8), np.zeros(len(rows), np.uint8), np.zeros(len(rows), np.int64)
    narrow_into(rows, 0, len(rows), y, shifts, x2)
    print("narrow rows", digest(y), digest(shifts), digest(x2))
    for q in queries:
        l1, q2 = int(np.abs(q.astype(np.int64)).sum()), int((q.astype(np.int64) ** 2).sum())
        lower, upper = narrow_bounds(y, shifts, x2, len(rows), q, l1, q2, True, 64)
        print("narrow", digest(lower), digest(upper), digest(bounded_candidates(lower, upper, mask3, 9)))
    print("dot batch", digest(dot_keys_batch(rows, len(rows), np.vstack([queries, queries[:3]]))))
    print("l2 batch", digest(l2_keys_batch(rows, len(rows), np.vstack([queries, queries[:3]]))))
    mask = (np.arange(len(rows)) % 3 == 0).astype(np.uint8)
    print("thresholds", digest(candidate_thresholds(dot_keys_batch(rows, len(rows), np.vstack([queries, queries[:3]])), mask, 7)))
    for metric in ("cosine", "dot", "l2"):
        store = ValoriStore(16, metric)
        store.upsert(rows / 65536.0, ids=[f"r{i:03d}" for i in range(len(rows))],
                     metadatas=[{"m": i % 3} for i in range(len(rows))])
        res = store.search_batch(queries / 65536.0, k=12, filter={"m": {"$ne": 1}})
        print(metric, "search", store.state_hash()[:24], ";".join(",".join(f"{h.id}:{h.raw}" for h in r) for r in res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
