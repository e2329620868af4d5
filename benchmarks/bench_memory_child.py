"""Resident-memory growth of a store with N vectors, measured in a fresh process.

Run by benchmarks/run.py as a subprocess:
    python benchmarks/bench_memory_child.py --n N --dim D --mode memory|durable|faiss
Prints one JSON object on the last line of stdout.

Method: import everything and warm up the JIT on a tiny store first, then take the
baseline RSS. RSS is taken after the ingest, and again after one search (what a searching
store keeps, such as the narrow scan's int8 copy, is counted in the second). Vectors, ids and metadata are generated batch by batch *inside* the
measured region and dropped after each upsert, so whatever the store keeps (including
references to the caller's id strings and metadata dicts) is counted, and input
buffers are not. Growth = RSS after gc - baseline RSS.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import psutil  # noqa: E402
from bench_common import dir_size, ensure_src_on_path, make_ids, make_metadatas, metadata_bytes_estimate  # noqa: E402

ensure_src_on_path()


def rss() -> int:
    return psutil.Process().memory_info().rss


def hwm() -> int | None:
    """Peak RSS of this process image (VmHWM; unlike ru_maxrss it is not inherited
    from the parent across fork/exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--dim", type=int, required=True)
    ap.add_argument("--mode", choices=("memory", "durable", "faiss"), required=True)
    ap.add_argument("--batch", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--durability", default="batch")
    ap.add_argument("--no-search", action="store_true", help="measure without the query after ingest")
    ap.add_argument("--texts", action="store_true", help="give every record a ~200-byte text too")
    a = ap.parse_args()

    tmpdir = None
    if a.mode == "faiss":
        import faiss

        faiss.IndexFlatIP(a.dim).add(np.zeros((1, a.dim), dtype=np.float32))
    else:
        from bench_valori import import_store, warmup_jit

        ValoriStore = import_store()
        warmup_jit(a.dim, "cosine", durable=(a.mode == "durable"))
    gc.collect()

    rng = np.random.default_rng(a.seed)
    base = rss()
    base_peak = hwm()
    if a.mode == "faiss":
        import faiss

        store = faiss.IndexFlatIP(a.dim)
    elif a.mode == "memory":
        store = ValoriStore(a.dim, metric="cosine")
    else:
        tmpdir = tempfile.mkdtemp(prefix="vs-bench-mem-")
        store = ValoriStore.open(tmpdir, dim=a.dim, metric="cosine", durability=a.durability)

    meta_bytes = 0
    for start in range(0, a.n, a.batch):
        m = min(a.batch, a.n - start)
        x = rng.standard_normal((m, a.dim)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        if a.mode == "faiss":
            store.add(x)
        else:
            ids = make_ids(start, m)
            metas = make_metadatas(start, m)
            meta_bytes += metadata_bytes_estimate(ids, metas)
            texts = [f"record {i}: " + "lorem ipsum dolor sit amet " * 7 for i in range(start, start + m)] if a.texts else None
            if texts:
                meta_bytes += sum(len(t.encode("utf-8")) for t in texts)
            store.upsert(x, ids=ids, texts=texts, metadatas=metas)
            del ids, metas, texts
        last = x[:1].copy()
        del x
    gc.collect()
    after = rss()  # the store right after ingest (what the <= 1.3 target measures)
    # then one search, so the structures that answer queries (the narrow copy) count too
    if a.no_search:
        pass
    elif a.mode == "faiss":
        store.search(last, 10)
    else:
        store.search(last[0], k=10)
    del last
    gc.collect()
    after_search = rss()
    peak = hwm()
    raw = a.n * a.dim * 4
    out = {
        "mode": a.mode,
        "n": a.n,
        "dim": a.dim,
        "rss_base_bytes": base,
        "rss_after_bytes": after,
        "rss_growth_bytes": after - base,
        # None: unknown, or the peak was not above the pre-ingest high-water mark
        "peak_rss_growth_bytes": (peak - base) if (peak and base_peak and peak > base_peak) else None,
        "raw_q16_matrix_bytes": raw,
        "metadata_bytes_estimate": meta_bytes,
        "rss_growth_per_vector_bytes": (after - base) / a.n,
        "ratio_vs_raw": (after - base) / raw,
        "ratio_vs_raw_plus_metadata": (after - base) / (raw + meta_bytes),
        "rss_growth_after_one_search_bytes": after_search - base,
        "ratio_vs_raw_after_one_search": (after_search - base) / raw,
        "ratio_vs_raw_plus_metadata_after_one_search": (after_search - base) / (raw + meta_bytes),
    }
    # Diagnostic only (the ratio above is the measurement): how much of the growth is
    # freed-but-retained heap (glibc keeps freed temporaries) rather than live data.
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
        trimmed = rss()
        out["rss_growth_after_malloc_trim_bytes"] = trimmed - base
        out["ratio_vs_raw_plus_metadata_after_malloc_trim"] = (trimmed - base) / (raw + meta_bytes)
    except Exception:  # noqa: BLE001 - not glibc
        pass
    if a.mode == "memory" and hasattr(store, "_log") and hasattr(store._log, "data"):
        out["diag_in_memory_log_bytes"] = len(store._log.data)
    if a.mode != "faiss" and hasattr(store, "_table"):
        out["diag_matrix_capacity_rows"] = int(store._table.matrix.shape[0])
    if a.mode == "durable":
        store.close()
        out["bytes_on_disk"] = dir_size(tmpdir)
        shutil.rmtree(tmpdir, ignore_errors=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
