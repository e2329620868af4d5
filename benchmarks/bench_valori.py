"""valori-store measurements (in-process): ingest, single/batched search, snapshots."""
from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np
from bench_common import dir_size, ensure_src_on_path

ensure_src_on_path()


def import_store():
    from valori_store import ValoriStore

    return ValoriStore


def warmup_jit(dim: int, metric: str = "cosine", durable: bool = True) -> dict:
    """Compile / load every kernel on a tiny store so timed runs exclude JIT cost."""
    ValoriStore = import_store()
    rng = np.random.default_rng(12345)
    x = rng.standard_normal((64, dim)).astype(np.float32)
    t0 = time.perf_counter()
    s = ValoriStore(dim, metric=metric)
    s.upsert(x, ids=[f"w{i}" for i in range(64)], metadatas=[{"w": i} for i in range(64)])
    s.search(x[0], k=10)
    s.search_batch(x[:8], k=10)
    b = s.to_bytes()
    ValoriStore.from_bytes(b)
    out = {"seconds": time.perf_counter() - t0}
    if durable and hasattr(ValoriStore, "open"):
        d = tempfile.mkdtemp(prefix="vs-bench-warm-")
        try:
            ds = ValoriStore.open(d, dim=dim, metric=metric, durability="batch")
            ds.upsert(x, ids=[f"w{i}" for i in range(64)], metadatas=[{"w": i} for i in range(64)])
            ds.search(x[0], k=10)
            ds.close()
        finally:
            shutil.rmtree(d, ignore_errors=True)
    return out


def ingest(store, M, ids, metas, batch_size) -> float:
    t0 = time.perf_counter()
    for i in range(0, M.shape[0], batch_size):
        store.upsert(M[i : i + batch_size], ids=ids[i : i + batch_size],
                     metadatas=None if metas is None else metas[i : i + batch_size])
    return time.perf_counter() - t0


def _repeat_stats(samples: list[float], n: int) -> dict:
    """Best (the reported rate, as for the FAISS peer), median and every sample, in vectors/s."""
    rates = sorted((n / secs for secs in samples), reverse=True)
    return {"vectors_per_s": rates[0], "vectors_per_s_median": float(np.median(rates)),
            "vectors_per_s_samples": [n / secs for secs in samples], "repeats": len(samples)}


def bench_ingest_memory(M, ids, metas, batch_size, dim, metric="cosine", repeats: int = 1):
    """Ingest into a fresh in-memory store ``repeats`` times; returns (last store, stats)."""
    ValoriStore = import_store()
    samples, s = [], None
    for _ in range(repeats):
        s = None  # free the previous store before building the next
        s = ValoriStore(dim, metric=metric)
        samples.append(ingest(s, M, ids, metas, batch_size))
    return s, {"seconds": min(samples), **_repeat_stats(samples, M.shape[0]), "batch_size": batch_size}


def bench_ingest_durable(M, ids, metas, batch_size, dim, metric="cosine", durability="batch",
                         repeats: int = 1) -> dict:
    """Ingest into a fresh durable store ``repeats`` times (new directory each); the last run
    also measures close, size on disk and reopen."""
    out: dict = {}
    samples = []
    for _ in range(repeats):
        out = _ingest_durable_once(M, ids, metas, batch_size, dim, metric, durability)
        if "error" in out:
            return out
        samples.append(out["seconds_upsert"])
    out.update(_repeat_stats(samples, M.shape[0]))
    return out


def _ingest_durable_once(M, ids, metas, batch_size, dim, metric, durability) -> dict:
    ValoriStore = import_store()
    if not hasattr(ValoriStore, "open"):
        return {"error": "ValoriStore.open not available"}
    d = tempfile.mkdtemp(prefix="vs-bench-durable-")
    try:
        t0 = time.perf_counter()
        s = ValoriStore.open(d, dim=dim, metric=metric, durability=durability)
        t_open = time.perf_counter() - t0
        secs = ingest(s, M, ids, metas, batch_size)
        t1 = time.perf_counter()
        s.close()
        t_close = time.perf_counter() - t1
        on_disk = dir_size(d)
        # reopen = replay / recovery cost
        t2 = time.perf_counter()
        s2 = ValoriStore.open(d, dim=dim, metric=metric, durability=durability)
        t_reopen = time.perf_counter() - t2
        try:
            n_after = len(s2)
        except Exception:  # noqa: BLE001
            n_after = None
        s2.close()
        return {
            "durability": durability,
            "seconds_upsert": secs,
            "seconds_open": t_open,
            "seconds_close": t_close,
            "vectors_per_s": M.shape[0] / secs,
            "vectors_per_s_incl_close": M.shape[0] / (secs + t_close),
            "bytes_on_disk": on_disk,
            "bytes_on_disk_per_vector": on_disk / M.shape[0],
            "seconds_reopen": t_reopen,
            "records_after_reopen": n_after,
            "batch_size": batch_size,
        }
    finally:
        shutil.rmtree(d, ignore_errors=True)


def valori_engines(store, k: int, all_threads: int):
    """(single, batch) engine lists; thread count via numba.set_num_threads."""
    import numba

    def threads(n):
        return lambda: numba.set_num_threads(n)

    single = [("valori_1t", threads(1), lambda q: store.search(q, k=k)),
              ("valori_all", threads(all_threads), lambda q: store.search(q, k=k))]
    batch = [("valori_all", threads(all_threads), lambda Q: store.search_batch(Q, k=k))]
    return single, batch


def bench_snapshot(store, repeats: int) -> dict:
    ValoriStore = import_store()
    out = {}
    d = tempfile.mkdtemp(prefix="vs-bench-snap-")
    try:
        path = os.path.join(d, "store.vsnap")

        def save_load() -> tuple[int, object]:
            if os.path.exists(path):
                os.remove(path)
            store.save(path)
            return dir_size(path), path

        def to_from_bytes() -> tuple[int, object]:
            b = store.to_bytes()
            return len(b), b

        for name, write, read in (("save", save_load, ValoriStore.load), ("to_bytes", to_from_bytes,
                                                                           ValoriStore.from_bytes)):
            t_write, t_read, size = [], [], 0
            for _ in range(repeats):
                t0 = time.perf_counter()
                size, blob = write()
                t_write.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                loaded = read(blob)
                t_read.append(time.perf_counter() - t0)
                del loaded, blob
            back = "load" if name == "save" else "from_bytes"
            out[f"{name}_s"], out[f"{back}_s"] = min(t_write), min(t_read)
            out["file_bytes" if name == "save" else "bytes_len"] = size
        out["repeats"] = repeats
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return out


def hit_ids(hits) -> list[str]:
    return [h.id for h in hits]
