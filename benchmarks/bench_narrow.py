"""Narrow-scan benchmark: single-query exact search through the int8 copy vs the full
int32 scan vs FAISS ``IndexFlatIP`` and numpy (float32 matvec + argpartition), in one
process, at 1 and 2 threads.

    python benchmarks/bench_narrow.py [--sizes 100000,1000000] [--queries 30] [--out DIR] [--quick]

Generated data (seeded random unit vectors, dim 384, cosine; queries are other random unit
vectors). Every query's narrow result is compared with the full scan's (ids, order, raw
scores) and a mismatch aborts the run. Reports per-query latency min/median/p90 (ms), the
ratios to FAISS's median at the same thread count, and how many rows were rescored
exactly. JSON to ``DIR/narrow.json``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import section_cli, write_section  # noqa: E402

DIM = 384
SEED = 20240601


def _lat(fn, queries) -> dict:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append(time.perf_counter() - t)
    out.sort()
    return {"min_ms": out[0] * 1e3, "median_ms": statistics.median(out) * 1e3,
            "p90_ms": out[int(0.9 * (len(out) - 1))] * 1e3}


def measure(n: int, nq: int) -> dict:
    import numba

    from valori_store import ValoriStore
    from valori_store.query import ranking

    rng = np.random.default_rng(SEED)
    store = ValoriStore(DIM)
    x_all = []
    for i in range(0, n, 50_000):
        b = min(50_000, n - i)
        x = rng.standard_normal((b, DIM)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        store.upsert(x, ids=[f"doc-{j:08d}" for j in range(i, i + b)])
        x_all.append(x)
    queries = rng.standard_normal((nq, DIM)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    res: dict = {"n": n, "dim": DIM, "data": "generated", "queries": nq, "threads": {}}
    try:
        import faiss

        index = faiss.IndexFlatIP(DIM)
        for x in x_all:
            index.add(x)
    except ImportError:
        faiss, index = None, None
    flat = np.concatenate(x_all)  # the numpy peer: float32 matrix-vector product + argpartition
    del x_all

    def numpy_search(q):
        scores = flat @ q
        top = np.argpartition(-scores, 10)[:10]
        return top[np.argsort(-scores[top])]
    saved = ranking.NARROW_FROM
    # rows rescored (counted by wrapping the candidate kernel), and narrow == full on every query
    counts: list[int] = []
    real = ranking.bounded_candidates

    def counting(*args):
        out = real(*args)
        counts.append(len(out))
        return out

    ranking.bounded_candidates = counting
    try:
        for q in queries:
            ranking.NARROW_FROM = 1
            narrow = [(h.id, h.raw) for h in store.search(q, k=10)]
            ranking.NARROW_FROM = 10**12
            full = [(h.id, h.raw) for h in store.search(q, k=10)]
            if narrow != full:
                raise SystemExit(f"narrow scan differs from the full scan at n={n}")
    finally:
        ranking.bounded_candidates = real
    ranking.NARROW_FROM = saved
    res["identical_to_full_scan"] = True
    if counts:
        res["rows_rescored"] = {"mean": statistics.mean(counts), "max": max(counts)}
    threads_before = numba.get_num_threads()
    try:
        for th in (1, 2):
            res["threads"][str(th)] = _timed_row(th, store, queries, numpy_search, faiss, index)
    finally:
        numba.set_num_threads(threads_before)
        ranking.NARROW_FROM = saved
    return res


def _timed_row(th: int, store, queries, numpy_search, faiss, index) -> dict:
    """Latencies at ``th`` threads: narrow, full int32, numpy and FAISS (when installed)."""
    import numba

    from valori_store.query import ranking

    saved = ranking.NARROW_FROM
    numba.set_num_threads(min(th, numba.config.NUMBA_NUM_THREADS))
    row: dict = {"numba_threads": numba.get_num_threads()}
    ranking.NARROW_FROM = 1
    store.search(queries[0], k=10)
    row["narrow"] = _lat(lambda q: store.search(q, k=10), queries)
    ranking.NARROW_FROM = 10**12
    store.search(queries[0], k=10)
    row["full_int32"] = _lat(lambda q: store.search(q, k=10), queries)
    ranking.NARROW_FROM = saved
    numpy_search(queries[0])
    row["numpy_matvec"] = _lat(numpy_search, queries)
    row["numpy_threads"] = "OpenBLAS default (not set per row)"
    row["ratio_narrow_to_numpy"] = row["narrow"]["median_ms"] / row["numpy_matvec"]["median_ms"]
    if index is not None:
        faiss.omp_set_num_threads(th)  # left at th: FAISS is only used here
        index.search(queries[:1], 10)
        row["faiss_flat_ip"] = _lat(lambda q: index.search(q[None, :], 10), queries)
        row["ratio_narrow_to_faiss"] = row["narrow"]["median_ms"] / row["faiss_flat_ip"]["median_ms"]
        row["ratio_full_to_faiss"] = row["full_int32"]["median_ms"] / row["faiss_flat_ip"]["median_ms"]
    return row


def run_narrow(sizes: list[int], nq: int = 30) -> dict:
    return {"what": __doc__.split("\n\n")[0].replace("\n", " "), "sizes": {str(n): measure(n, nq) for n in sizes}}


def main(argv=None) -> int:
    a, sizes = section_cli(__doc__, argv, (100_000, 1_000_000), (20_000,),
                           lambda ap: ap.add_argument("--queries", type=int, default=30))
    out = run_narrow(sizes, a.queries)
    for n, r in out["sizes"].items():
        print(f"n={int(n):,}: rescored rows {r.get('rows_rescored')}")
        for th, row in r["threads"].items():
            f = row.get("faiss_flat_ip", {}).get("median_ms")
            print(f"  {th} thread(s): narrow {row['narrow']['median_ms']:.1f} ms, full {row['full_int32']['median_ms']:.1f} ms, "
                  f"faiss {f if f is None else round(f, 1)} ms, numpy {row['numpy_matvec']['median_ms']:.1f} ms, "
                  f"narrow/faiss {row.get('ratio_narrow_to_faiss', float('nan')):.2f}")
    write_section(a.out, "narrow.json", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
