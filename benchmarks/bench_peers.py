"""Peer measurements: numpy float32 brute force, FAISS IndexFlatIP, and the
machine's sustained memory read bandwidth (the lower bound of a full scan)."""
from __future__ import annotations

import time

import numpy as np


# ----------------------------------------------------------------------------- numpy
def numpy_topk_single(M: np.ndarray, q: np.ndarray, k: int) -> np.ndarray:
    s = M @ q
    idx = np.argpartition(s, -k)[-k:]
    return idx[np.argsort(-s[idx], kind="stable")]


def numpy_topk_batch(M: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    S = Q @ M.T
    idx = np.argpartition(S, -k, axis=1)[:, -k:]
    top = np.take_along_axis(S, idx, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1)


def numpy_engines(M: np.ndarray, k: int):
    """(single, batch) engine lists; numpy runs as-is (OpenBLAS default threads)."""
    noop = lambda: None  # noqa: E731
    return ([("numpy", noop, lambda q: numpy_topk_single(M, q, k))],
            [("numpy", noop, lambda Q: numpy_topk_batch(M, Q, k))])


# ----------------------------------------------------------------------------- faiss
def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401

        return True
    except Exception:  # noqa: BLE001
        return False


def build_faiss(M: np.ndarray):
    import faiss

    index = faiss.IndexFlatIP(M.shape[1])
    index.add(M)
    return index


def faiss_engines(index, k: int, all_threads: int):
    """(single, batch) engine lists: IndexFlatIP at 1 thread and at all threads."""
    import faiss

    def threads(n):
        return lambda: faiss.omp_set_num_threads(n)

    single = [("faiss_1t", threads(1), lambda q: index.search(q[None, :], k)),
              ("faiss_all", threads(all_threads), lambda q: index.search(q[None, :], k))]
    batch = [("faiss_all", threads(all_threads), lambda Q: index.search(Q, k))]
    return single, batch


def bench_faiss_ingest(M: np.ndarray, batch_size: int, repeats: int) -> dict:
    import faiss

    ts = []
    for _ in range(repeats):
        index = faiss.IndexFlatIP(M.shape[1])
        t0 = time.perf_counter()
        for i in range(0, M.shape[0], batch_size):
            index.add(M[i : i + batch_size])
        ts.append(time.perf_counter() - t0)
        del index
    best = min(ts)
    return {"seconds_best": best, "vectors_per_s": M.shape[0] / best, "batch_size": batch_size, "repeats": repeats}


# ----------------------------------------------------------------------------- bandwidth
_KERNELS = {}


def _numba_sum_kernel():
    if "sum" not in _KERNELS:
        import numba

        @numba.njit(parallel=True, nogil=True, cache=False)
        def _sum_i32(a):
            s = np.int64(0)
            for i in numba.prange(a.shape[0]):
                s += np.int64(a[i])
            return s

        _KERNELS["sum"] = _sum_i32
    return _KERNELS["sum"]


def measure_bandwidth(nbytes: int, repeats: int, all_threads: int) -> dict:
    """Sustained read bandwidth (bytes/s), best of `repeats`, for several readers:

    - numpy float32 sum (1 thread, pairwise SIMD),
    - numba prange int32 -> int64 sum with 1 thread and with all threads (the same
      access pattern as a Q16.16 scan).

    The array (nbytes) is much larger than the last-level cache, so this is DRAM
    bandwidth. `best_bytes_per_s` is the max over readers/threads and is what the
    bound uses; `one_thread_bytes_per_s` is the best single-thread figure.
    """
    import numba

    n = nbytes // 4
    a_i = np.ones(n, dtype=np.int32)  # touch every page
    a_f = a_i.view(np.float32)
    res = {"array_bytes": int(n * 4), "repeats": repeats}

    def best_of(fn):
        fn()  # warm (page faults, JIT)
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return (n * 4) / min(ts)

    res["numpy_f32_sum_1t"] = best_of(lambda: a_f.sum())
    kern = _numba_sum_kernel()
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        res["numba_i32_sum_1t"] = best_of(lambda: kern(a_i))
        numba.set_num_threads(all_threads)
        res["numba_i32_sum_all"] = best_of(lambda: kern(a_i))
        res["numba_threads_all"] = all_threads
        try:
            res["numba_threading_layer"] = numba.threading_layer()
        except Exception:  # noqa: BLE001
            pass
    finally:
        numba.set_num_threads(prev)
    del a_i, a_f
    res["one_thread_bytes_per_s"] = max(res["numpy_f32_sum_1t"], res["numba_i32_sum_1t"])
    res["best_bytes_per_s"] = max(res["one_thread_bytes_per_s"], res["numba_i32_sum_all"])
    res["best_GBps"] = res["best_bytes_per_s"] / 1e9
    res["one_thread_GBps"] = res["one_thread_bytes_per_s"] / 1e9
    return res
