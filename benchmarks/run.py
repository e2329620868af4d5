#!/usr/bin/env python
"""valori-store benchmark: the store against its exact-search peers, in one run.

    python benchmarks/run.py [--sizes 10000,100000] [--dim 384] [--out benchmarks/results] [--quick]
                             [--state-sizes 200000,1000000] [--skip-state]

Writes <out>/latest.json and <out>/latest.png and prints a table. This is a
benchmark, not a test: it exits 0 even when a target is missed (use --strict to
exit 1 then). See benchmarks/README.md for what is measured and how.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import gc
import json
import os
import subprocess
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from bench_common import (  # noqa: E402
    child_env,
    ensure_src_on_path,
    external_cpu_busy,
    interleaved_batch,
    interleaved_single,
    machine_facts,
    make_ids,
    make_metadatas,
    metadata_bytes_estimate,
    unit_vectors,
)
from bench_peers import (  # noqa: E402
    bench_faiss_ingest,
    build_faiss,
    faiss_available,
    faiss_engines,
    measure_bandwidth,
    numpy_engines,
)

ensure_src_on_path()

SCHEMA = "valori-store-bench/1"
K = 10
SEED_DATA = 20240601
SEED_QUERIES = 20240602
SEED_BATCH = 20240603

TARGETS = {
    # name: (description, op, threshold)
    "single_query_vs_faiss_1t": ("valori 1-thread median / FAISS IndexFlatIP 1-thread median", "<=", 1.5),
    "single_query_vs_bandwidth_bound": ("valori all-threads median / (N*dim*4 bytes / measured read bandwidth)", "<=", 1.5),
    "batch_throughput_vs_faiss": ("valori search_batch qps / FAISS IndexFlatIP batch qps (all threads)", ">=", 0.5),
    "ingest_in_memory": ("in-memory upsert, vectors/s (batches of 10,000, ids + metadata)", ">=", 100_000),
    "ingest_durable": ("durable store (durability='batch') upsert, vectors/s", ">=", 100_000),
    "memory_in_memory": ("RSS growth / (raw Q16.16 matrix + id/metadata bytes), in-memory store", "<=", 1.3),
    "memory_durable": ("RSS growth / (raw Q16.16 matrix + id/metadata bytes), durable store", "<=", 1.3),
    "memory_after_search": ("RSS growth after one search / raw Q16.16 matrix, in-memory store (narrow copy "
                            "included from 20,000 records)", "<=", 1.5),
    "warm_start": ("seconds from `import valori_store` to first search result, warm numba cache", "<", 2.0),
}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def guarded(name: str, fn, *a, **kw):
    """Run one measurement; on failure record the error instead of aborting the run."""
    t0 = time.perf_counter()
    try:
        r = fn(*a, **kw)
    except Exception as e:  # noqa: BLE001
        log(f"{name}: FAILED {e!r}")
        return {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-3000:]}
    log(f"{name}: done in {time.perf_counter() - t0:.1f}s")
    return r


def wait_for_quiet(max_wait: float, threshold_pct: float = 15.0) -> float:
    """Wait (up to max_wait s) until other processes leave the CPUs mostly idle."""
    t0 = time.perf_counter()
    said = False
    busy = None
    while time.perf_counter() - t0 < max_wait:
        busy = external_cpu_busy(1.0).get("mean_pct")
        if busy is None or busy < threshold_pct:
            break
        if not said:
            log(f"CPUs {busy:.0f}% busy with other processes; waiting up to {max_wait:.0f}s (--wait-quiet)")
            said = True
    waited = time.perf_counter() - t0
    if said:
        log(f"waited {waited:.0f}s; CPUs now {busy:.0f}% busy" if busy is not None else f"waited {waited:.0f}s")
    return waited


def run_memory_child(n: int, dim: int, mode: str, timeout: float) -> dict:
    cmd = [sys.executable, str(HERE / "bench_memory_child.py"), "--n", str(n), "--dim", str(dim), "--mode", mode]
    r = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"memory child ({mode}) exited {r.returncode}: {(r.stderr or r.stdout)[-2000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def consistency_checks(store, M, ids, faiss_index, queries, batch, nt_all) -> dict:
    """Cheap sanity checks so a broken run is not mistaken for a fast one."""
    import numba

    out = {}
    nq = min(20, len(queries))
    if faiss_index is not None:
        _, fi = faiss_index.search(queries[:nq], K)
        overlap = []
        for j in range(nq):
            got = {h.id for h in store.search(queries[j], k=K)}
            want = {ids[i] for i in fi[j]}
            overlap.append(len(got & want) / K)
        out["recall_at_10_vs_faiss"] = float(np.mean(overlap))
    prev = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        r1 = [[(h.id, h.raw) for h in store.search(q, k=K)] for q in queries[:nq]]
        numba.set_num_threads(nt_all)
        ra = [[(h.id, h.raw) for h in store.search(q, k=K)] for q in queries[:nq]]
        rb = [[(h.id, h.raw) for h in hs] for hs in store.search_batch(queries[:nq], k=K)]
    finally:
        numba.set_num_threads(prev)
    out["one_thread_equals_all_threads"] = r1 == ra
    out["single_equals_batch"] = ra == rb
    return out


def run_size(n: int, args, nt_all: int, have_valori: bool, have_faiss: bool) -> dict:
    import numba

    dim = args.dim
    res: dict = {"n": n, "dim": dim, "k": K, "matrix_bytes_q16": n * dim * 4}
    log(f"N={n}: generating data")
    M = unit_vectors(n, dim, SEED_DATA)
    queries = unit_vectors(args.warmup + args.queries, dim, SEED_QUERIES)
    batch = unit_vectors(args.batch, dim, SEED_BATCH)
    ids = make_ids(0, n)
    metas = make_metadatas(0, n)
    res["metadata_bytes_estimate"] = metadata_bytes_estimate(ids, metas)
    res["queries"] = {"timed": args.queries, "warmup": args.warmup, "batch": args.batch, "rounds": args.rounds}
    res["waited_for_quiet_s"] = wait_for_quiet(args.wait_quiet)
    res["external_cpu_busy_at_start"] = external_cpu_busy()

    single_engines, batch_engines = [], []
    s_np, b_np = numpy_engines(M, K)
    single_engines += s_np
    batch_engines += b_np

    findex = None
    if have_faiss:
        findex = build_faiss(M)
        s_f, b_f = faiss_engines(findex, K, nt_all)
        single_engines += s_f
        batch_engines += b_f
        res["faiss_ingest"] = guarded(f"N={n} faiss ingest", bench_faiss_ingest, M, args.ingest_batch,
                                      args.ingest_repeats)

    v: dict = {}
    store = None
    if have_valori:
        from bench_valori import bench_ingest_durable, bench_ingest_memory, bench_snapshot, valori_engines

        res["valori"] = v
        built = guarded(f"N={n} valori ingest (in-memory)", bench_ingest_memory, M, ids, metas, args.ingest_batch, dim,
                        repeats=args.ingest_repeats)
        if isinstance(built, tuple):
            store, v["ingest_memory"] = built
        else:
            v["ingest_memory"] = built
        ids_only = guarded(f"N={n} valori ingest (in-memory, ids only)", bench_ingest_memory, M, ids, None,
                           args.ingest_batch, dim)
        v["ingest_memory_ids_only"] = ids_only[1] if isinstance(ids_only, tuple) else ids_only
        del ids_only
        gc.collect()
        v["ingest_durable"] = guarded(f"N={n} valori ingest (durable)", bench_ingest_durable, M, ids, metas,
                                      args.ingest_batch, dim, repeats=args.ingest_repeats)
        if store is not None:
            gc.collect()
            s_v, b_v = valori_engines(store, K, nt_all)
            single_engines += s_v
            batch_engines += b_v
    else:
        res["valori"] = {"error": "valori_store not importable"}

    prev_numba = numba.get_num_threads()
    prev_faiss = None
    if have_faiss:
        import faiss

        prev_faiss = faiss.omp_get_max_threads()
    try:
        t0 = time.perf_counter()
        res["single"] = interleaved_single(single_engines, queries, args.warmup, args.rounds)
        log(f"N={n} single-query latency ({', '.join(e[0] for e in single_engines)}): "
            f"done in {time.perf_counter() - t0:.1f}s")
        t0 = time.perf_counter()
        res["batch"] = interleaved_batch(batch_engines, batch, args.batch_repeats, args.batch_rounds)
        log(f"N={n} batch throughput: done in {time.perf_counter() - t0:.1f}s")
    finally:
        numba.set_num_threads(prev_numba)
        if prev_faiss is not None:
            faiss.omp_set_num_threads(prev_faiss)

    if store is not None:
        v["consistency"] = guarded(f"N={n} valori consistency", consistency_checks, store, M, ids, findex,
                                   queries[args.warmup:], batch, nt_all)
        v["snapshot"] = guarded(f"N={n} valori snapshot", bench_snapshot, store,
                                args.snapshot_repeats if n <= 20_000 else 1)
    del store, findex
    gc.collect()
    if have_valori and not args.skip_memory:
        v["memory_in_memory"] = guarded(f"N={n} memory child (in-memory)", run_memory_child, n, dim, "memory",
                                        args.child_timeout)
        v["memory_durable"] = guarded(f"N={n} memory child (durable)", run_memory_child, n, dim, "durable",
                                      args.child_timeout)
    if have_faiss and not args.skip_memory:
        res["faiss_memory"] = guarded(f"N={n} memory child (faiss)", run_memory_child, n, dim, "faiss",
                                      args.child_timeout)
    res["external_cpu_busy_at_end"] = external_cpu_busy()
    return res


# ----------------------------------------------------------------------------- ratios / targets
def _get(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def _div(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def compute_ratios(result: dict) -> dict:
    bw = _get(result, "bandwidth", "best_bytes_per_s")
    bw1 = _get(result, "bandwidth", "one_thread_bytes_per_s")
    per = {}
    for size, r in result["sizes"].items():
        v = r.get("valori", {})
        bound_ms = _div(r["matrix_bytes_q16"], bw)
        bound_ms = bound_ms * 1e3 if bound_ms is not None else None
        bound1_ms = _div(r["matrix_bytes_q16"], bw1)
        bound1_ms = bound1_ms * 1e3 if bound1_ms is not None else None
        r["bandwidth_bound_ms"] = bound_ms
        r["bandwidth_bound_1t_ms"] = bound1_ms
        v1 = _get(r, "single", "valori_1t", "median_ms")
        va = _get(r, "single", "valori_all", "median_ms")
        f1 = _get(r, "single", "faiss_1t", "median_ms")
        fa = _get(r, "single", "faiss_all", "median_ms")
        npm = _get(r, "single", "numpy", "median_ms")
        vq = _get(r, "batch", "valori_all", "qps_median")
        fq = _get(r, "batch", "faiss_all", "qps_median")
        nq = _get(r, "batch", "numpy", "qps_median")
        ing = _get(v, "ingest_memory", "vectors_per_s")
        ingd = _get(v, "ingest_durable", "vectors_per_s")
        per[size] = {
            "single_valori1t_over_faiss1t": _div(v1, f1),
            "single_valoriall_over_faissall": _div(va, fa),
            "single_valoriall_over_bound": _div(va, bound_ms),
            "single_valori1t_over_bound_1t": _div(v1, bound1_ms),
            "single_faiss1t_over_bound_1t": _div(f1, bound1_ms),
            "single_valori1t_over_numpy": _div(v1, npm),
            "batch_valori_over_faiss": _div(vq, fq),
            "batch_valori_over_numpy": _div(vq, nq),
            "ingest_memory_vectors_per_s": ing,
            "ingest_durable_vectors_per_s": ingd,
            "ingest_memory_over_target": _div(ing, 100_000),
            "ingest_durable_over_target": _div(ingd, 100_000),
            "memory_ratio_inmemory": _get(v, "memory_in_memory", "ratio_vs_raw_plus_metadata"),
            "memory_ratio_durable": _get(v, "memory_durable", "ratio_vs_raw_plus_metadata"),
            "memory_ratio_after_search": _get(v, "memory_in_memory", "ratio_vs_raw_after_one_search"),
            "matrix_fits_in_llc": None,
        }
        llc = result["machine"].get("L3 cache", "")
        try:
            mib = float(llc.split()[0]) * (1024 if "GiB" in llc else 1) if "iB" in llc else None
            per[size]["matrix_fits_in_llc"] = (r["matrix_bytes_q16"] <= mib * 2**20) if mib else None
        except (ValueError, IndexError):
            pass
    return {
        "per_size": per,
        "warm_start_s": _get(result, "startup", "warm_first_search_s_median"),
        "cold_start_s": _get(result, "startup", "cold_first_search_s"),
    }


def evaluate_targets(result: dict) -> list[dict]:
    ratios = result["ratios"]
    out = []
    key_for = {
        "single_query_vs_faiss_1t": "single_valori1t_over_faiss1t",
        "single_query_vs_bandwidth_bound": "single_valoriall_over_bound",
        "batch_throughput_vs_faiss": "batch_valori_over_faiss",
        "ingest_in_memory": "ingest_memory_vectors_per_s",
        "ingest_durable": "ingest_durable_vectors_per_s",
        "memory_in_memory": "memory_ratio_inmemory",
        "memory_durable": "memory_ratio_durable",
        "memory_after_search": "memory_ratio_after_search",
    }

    def check(value, op, thr):
        if value is None:
            return None
        return {"<=": value <= thr, ">=": value >= thr, "<": value < thr}[op]

    for name, (desc, op, thr) in TARGETS.items():
        if name == "warm_start":
            val = ratios.get("warm_start_s")
            out.append({"target": name, "n": None, "value": val, "op": op, "threshold": thr,
                        "pass": check(val, op, thr), "description": desc})
            continue
        for size, pr in ratios["per_size"].items():
            val = pr.get(key_for[name])
            row = {"target": name, "n": int(size), "value": val, "op": op, "threshold": thr,
                   "pass": check(val, op, thr), "description": desc}
            if name == "single_query_vs_bandwidth_bound" and pr.get("matrix_fits_in_llc"):
                row["note"] = "matrix fits in the last-level cache: the DRAM bound is not the real floor here"
            out.append(row)
    return out


# ----------------------------------------------------------------------------- table
def _fmt(v, unit="", nd=2):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 10_000:
        return f"{v:,.0f}{unit}"
    return f"{v:.{nd}f}{unit}"


def print_table(result: dict) -> None:
    lines = []
    m = result["machine"]
    lines.append(f"valori-store benchmark - {m.get('cpu_model')} ({m.get('logical_cpus')} CPUs), "
                 f"numpy {m.get('numpy')}, numba {m.get('numba')}, faiss {m.get('faiss')}, dim={result['args']['dim']}")
    bw = result.get("bandwidth", {})
    lines.append(f"read bandwidth: best {_fmt(bw.get('best_GBps'))} GB/s, 1 thread {_fmt(bw.get('one_thread_GBps'))} GB/s")
    for size, r in result["sizes"].items():
        v = r.get("valori", {})
        lines.append("")
        lines.append(f"N = {int(size):,}  (matrix {r['matrix_bytes_q16'] / 2**20:.1f} MiB; "
                     f"bandwidth bound {_fmt(r.get('bandwidth_bound_ms'), ' ms', 3)}, 1 thread {_fmt(r.get('bandwidth_bound_1t_ms'), ' ms', 3)})")
        lines.append(f"  {'single query top-10':32s} {'median ms':>10s} {'p95 ms':>10s}")
        rows = [
            ("valori 1 thread", _get(r, "single", "valori_1t")),
            ("valori all threads", _get(r, "single", "valori_all")),
            ("numpy f32 (as-is)", _get(r, "single", "numpy")),
            ("faiss flat 1 thread", _get(r, "single", "faiss_1t")),
            ("faiss flat all threads", _get(r, "single", "faiss_all")),
        ]
        for name, d in rows:
            lines.append(f"  {name:32s} {_fmt(_get(d, 'median_ms'), '', 3):>10s} {_fmt(_get(d, 'p95_ms'), '', 3):>10s}")
        lines.append(f"  {'batch of ' + str(result['args']['batch']) + ' (all threads)':32s} {'queries/s':>10s}")
        for name, d in (("valori search_batch", _get(r, "batch", "valori_all")),
                        ("numpy Q@M.T", _get(r, "batch", "numpy")),
                        ("faiss flat", _get(r, "batch", "faiss_all"))):
            lines.append(f"  {name:32s} {_fmt(_get(d, 'qps_median'), '', 0):>10s}")
        reps = result["args"]["ingest_repeats"]
        lines.append(f"  {'ingest (best of ' + str(reps) + ')':32s} {'vectors/s':>10s} {'median':>10s}")
        for name, d in (("valori in-memory", _get(v, "ingest_memory")),
                        ("valori in-memory, ids only", _get(v, "ingest_memory_ids_only")),
                        ("valori durable (batch)", _get(v, "ingest_durable")),
                        ("faiss add", _get(r, "faiss_ingest"))):
            lines.append(f"  {name:32s} {_fmt(_get(d, 'vectors_per_s'), '', 0):>10s} "
                         f"{_fmt(_get(d, 'vectors_per_s_median'), '', 0):>10s}")
        mi, md, mf = _get(v, "memory_in_memory"), _get(v, "memory_durable"), _get(r, "faiss_memory")
        lines.append(f"  {'memory (RSS growth)':32s} {'MiB':>10s} {'B/vector':>10s} {'/raw+meta':>10s} "
                     f"{'peak MiB':>10s} {'trimmed*':>10s}")
        for name, d in (("valori in-memory", mi), ("valori durable", md), ("faiss flat (f32)", mf)):
            g = _get(d, "rss_growth_bytes")
            lines.append(f"  {name:32s} {_fmt(g / 2**20 if g is not None else None, '', 1):>10s} "
                         f"{_fmt(_get(d, 'rss_growth_per_vector_bytes'), '', 0):>10s} "
                         f"{_fmt(_get(d, 'ratio_vs_raw_plus_metadata'), '', 2):>10s} "
                         f"{_fmt((_get(d, 'peak_rss_growth_bytes') or 0) / 2**20 if _get(d, 'peak_rss_growth_bytes') else None, '', 1):>10s} "
                         f"{_fmt(_get(d, 'ratio_vs_raw_plus_metadata_after_malloc_trim'), '', 2):>10s}")
        lines.append("  (* trimmed = /raw+meta after glibc malloc_trim(0): diagnostic, shows how much of the growth "
                     "is freed-but-retained heap)")
        sn = _get(v, "snapshot") or {}
        lines.append(f"  snapshot: save {_fmt(sn.get('save_s'), ' s', 3)}, load {_fmt(sn.get('load_s'), ' s', 3)}, "
                     f"to_bytes {_fmt(sn.get('to_bytes_s'), ' s', 3)}, from_bytes {_fmt(sn.get('from_bytes_s'), ' s', 3)}, "
                     f"size {_fmt((sn.get('bytes_len') or 0) / 2**20 if sn.get('bytes_len') else None, ' MiB', 1)}")
        c = _get(v, "consistency") or {}
        if c:
            lines.append(f"  checks: recall@10 vs faiss {_fmt(c.get('recall_at_10_vs_faiss'), '', 3)}, "
                         f"1t==all {c.get('one_thread_equals_all_threads')}, single==batch {c.get('single_equals_batch')}")
        errs = [k for k, d in list(v.items()) + list((r.get("single") or {}).items())
                + list((r.get("batch") or {}).items()) if isinstance(d, dict) and "error" in d]
        e0 = _get(r, "external_cpu_busy_at_start", "mean_pct")
        e1 = _get(r, "external_cpu_busy_at_end", "mean_pct")
        if max(e for e in (e0, e1, 0.0) if e is not None) > 10:
            lines.append(f"  WARNING: other processes kept the CPUs busy (sampled {_fmt(e0, '%', 0)} before and "
                         f"{_fmt(e1, '%', 0)} after this size's run); timings, multi-threaded ones most, may be distorted")
        if errs:
            lines.append(f"  ERRORS in: {', '.join(errs)} (see JSON)")
    state = result.get("state") or {}
    if "sizes" in state:
        from bench_state import format_state_table

        lines.extend(format_state_table(state))
    elif "error" in state:
        lines.extend(["", f"STATE: ERROR {state['error'][:300]}"])
    st = result.get("startup") or {}
    lines.append("")
    lines.append(f"start-up (import -> first search): cold "
                 f"{'skipped (--quick)' if st.get('cold_skipped') else _fmt(st.get('cold_first_search_s'), ' s')}, "
                 f"warm {_fmt(st.get('warm_first_search_s_median'), ' s')} "
                 f"(process wall, warm: {_fmt(st.get('warm_wall_s_median'), ' s')})"
                 + (f"  ERROR: {st['error'][:200]}" if 'error' in st else ""))
    lines.append("")
    lines.append(f"  {'target':34s} {'N':>8s} {'value':>12s} {'goal':>12s}  result")
    for t in result["targets"]:
        status = {True: "PASS", False: "FAIL", None: "n/a"}[t["pass"]]
        lines.append(f"  {t['target']:34s} {(str(t['n']) if t['n'] else '-'):>8s} {_fmt(t['value'], '', 3):>12s} "
                     f"{t['op'] + ' ' + _fmt(float(t['threshold']), '', 1):>12s}  {status}"
                     + ("  (" + t["note"] + ")" if t.get("note") else ""))
    lines.append("")
    lines.append(f"total bench runtime {result['runtime_s']:.1f} s")
    print("\n".join(lines))


# ----------------------------------------------------------------------------- main
def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated store sizes (default 10000,100000)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--quick", action="store_true",
                    help="N=10,000 only (state section: 20,000), fewer repeats (smoke check, about a minute)")
    ap.add_argument("--queries", type=int, default=None, help="timed single queries per engine (default 200)")
    ap.add_argument("--warmup", type=int, default=None)
    ap.add_argument("--batch", type=int, default=256, help="queries per batch for throughput")
    ap.add_argument("--threads", type=int, default=None, help="'all threads' count (default: numba's max)")
    ap.add_argument("--skip-memory", action="store_true", help="skip the RSS subprocess measurements")
    ap.add_argument("--skip-startup", action="store_true", help="skip the start-up subprocess measurements")
    ap.add_argument("--skip-state", action="store_true", help="skip the state section (bench_state.py)")
    ap.add_argument("--skip-filters", action="store_true", help="skip the filter section (bench_filters.py)")
    ap.add_argument("--skip-narrow", action="store_true", help="skip the narrow-scan section (bench_narrow.py)")
    ap.add_argument("--state-sizes", default=None,
                    help="store sizes of the state section (default 200000,1000000; --quick: 20000)")
    ap.add_argument("--state-baseline-src", default=None,
                    help="src/ of the baseline checkout for the state section (default "
                         "$VALORI_BENCH_BASELINE_SRC or git:249211e, main before the state tree, extracted "
                         "with git archive; '' skips the baseline rows)")
    ap.add_argument("--state-baseline-max-n", type=int, default=200_000,
                    help="largest state size the baseline is measured at (default 200000)")
    ap.add_argument("--state-data", choices=("generated", "real"), default="generated",
                    help="state section data: generated (default) or ../shared/data MiniLM embeddings + texts")
    ap.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                    help="before each size, wait up to SECONDS for other processes to leave the CPUs "
                         "idle (< 15%% busy); default 30 (5 with --quick), 0 disables")
    ap.add_argument("--strict", action="store_true", help="exit 1 if any target fails or cannot be measured")
    a = ap.parse_args(argv)
    if a.quick:
        a.sizes = "10000"
    if a.state_sizes is None:
        a.state_sizes = "20000" if a.quick else "200000,1000000"
    a.state_size_list = [int(s) for s in a.state_sizes.split(",") if s.strip()]
    a.size_list = [int(s) for s in a.sizes.split(",") if s.strip()]
    a.queries = a.queries or (50 if a.quick else 200)
    a.warmup = a.warmup if a.warmup is not None else (5 if a.quick else 20)
    a.batch_repeats = 2 if a.quick else 4
    a.rounds = 2 if a.quick else 4
    a.batch_rounds = 2
    a.ingest_batch = 10_000
    a.ingest_repeats = 1 if a.quick else 3
    a.snapshot_repeats = 1 if a.quick else 3
    a.bandwidth_bytes = (256 if a.quick else 512) * 2**20
    a.bandwidth_repeats = 3 if a.quick else 6
    a.warm_start_runs = 1 if a.quick else 3
    a.child_timeout = 600.0
    if a.wait_quiet is None:
        a.wait_quiet = 5.0 if a.quick else 30.0
    return a


def main(argv=None) -> int:
    t_start = time.perf_counter()
    args = parse_args(argv)
    import numba

    nt_all = args.threads or numba.config.NUMBA_NUM_THREADS
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    result: dict = {
        "schema": SCHEMA,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "args": {"sizes": args.size_list, "dim": args.dim, "quick": args.quick, "k": K, "queries": args.queries,
                 "warmup": args.warmup, "batch": args.batch, "batch_repeats": args.batch_repeats,
                 "ingest_batch": args.ingest_batch, "ingest_repeats": args.ingest_repeats,
                 "threads_all": nt_all, "rounds": args.rounds,
                 "batch_rounds": args.batch_rounds,
                 "wait_quiet_s": args.wait_quiet,
                 "seeds": {"data": SEED_DATA, "queries": SEED_QUERIES, "batch": SEED_BATCH},
                 "state_sizes": [] if args.skip_state else args.state_size_list,
                 "metric": "cosine"},
        "machine": machine_facts(),
        "notes": [
            "Synthetic data: seeded random unit vectors (float32); fine for exact-search timing.",
            "numpy peer runs as-is (OpenBLAS default threads, env recorded in machine.env; "
            "OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, if set, can slow it).",
            "valori thread count via numba.set_num_threads; FAISS via faiss.omp_set_num_threads.",
            "Bandwidth bound = N*dim*4 bytes / best measured sustained read bandwidth.",
            "Ingest rates are the best of ingest_repeats runs for valori and for FAISS alike "
            "(median and every sample are in the JSON).",
        ],
    }
    log(f"machine: {result['machine'].get('cpu_model')} x{result['machine'].get('logical_cpus')}, threads_all={nt_all}")

    result["waited_for_quiet_s_before_bandwidth"] = wait_for_quiet(args.wait_quiet)
    result["external_cpu_busy_before_bandwidth"] = external_cpu_busy()
    result["bandwidth"] = guarded("bandwidth", measure_bandwidth, args.bandwidth_bytes, args.bandwidth_repeats, nt_all)

    have_faiss = faiss_available()
    have_valori = False
    try:
        from bench_valori import import_store, warmup_jit

        import_store()
        have_valori = True
    except Exception as e:  # noqa: BLE001
        result["valori_import_error"] = f"{type(e).__name__}: {e}"
        log(f"valori_store not importable: {e!r} - measuring peers only")
    if have_valori:
        result["valori_warmup"] = guarded("valori JIT warm-up", warmup_jit, args.dim)
        try:
            result["machine"]["numba_threading_layer"] = numba.threading_layer()
        except Exception:  # noqa: BLE001
            pass

    result["sizes"] = {}
    for n in args.size_list:
        result["sizes"][str(n)] = run_size(n, args, nt_all, have_valori, have_faiss)
        gc.collect()

    if have_valori and not args.skip_startup:
        from bench_startup import bench_startup

        result["startup"] = guarded("start-up", bench_startup, args.dim, args.warm_start_runs, cold=not args.quick)

    if have_valori and not args.skip_narrow:
        from bench_narrow import run_narrow

        result["narrow"] = guarded("narrow scan", run_narrow, [20_000] if args.quick else [100_000, 1_000_000])

    if have_valori and not args.skip_filters:
        from bench_filters import run_filters

        result["filters"] = guarded("filters", run_filters, [20_000] if args.quick else [100_000, 1_000_000])

    if have_valori and not args.skip_state:
        from bench_state import DEFAULT_BASELINE_SRC, run_state

        base_src = DEFAULT_BASELINE_SRC if args.state_baseline_src is None else (args.state_baseline_src or None)
        result["state"] = guarded("state", run_state, args.state_size_list, args.dim, quick=args.quick,
                                  baseline_src=base_src, baseline_max_n=args.state_baseline_max_n,
                                  data=args.state_data, wait_quiet=wait_for_quiet, wait_quiet_s=args.wait_quiet)

    result["ratios"] = compute_ratios(result)
    result["targets"] = evaluate_targets(result)
    # the state section's targets (today's code; baseline rows stay in result["state"])
    result["targets"] += (result.get("state") or {}).get("targets", [])
    result["all_targets_pass"] = all(t["pass"] is True for t in result["targets"])
    result["runtime_s"] = time.perf_counter() - t_start

    tmp = out_dir / "latest.json.tmp"
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    os.replace(tmp, out_dir / "latest.json")
    try:
        from bench_chart import write_chart

        write_chart(result, str(out_dir / "latest.png"))
    except Exception as e:  # noqa: BLE001
        log(f"chart failed: {e!r}")
    print_table(result)
    log(f"wrote {out_dir / 'latest.json'} and {out_dir / 'latest.png'}")
    if args.strict and not result["all_targets_pass"]:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
