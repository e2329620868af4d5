"""Shared helpers for the valori-store benchmark: data, timing, machine facts.

Everything here is deterministic given the seed (data) and has no dependency on
valori_store, so the peer measurements work even while the store is unfinished.
"""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
SRC_DIR = REPO_ROOT / "src"

# Environment variables that change BLAS / threading behaviour. Recorded, never changed.
ENV_VARS_OF_INTEREST = (
    "OPENBLAS_CORETYPE",
    "OPENBLAS_L2_SIZE",
    "OPENBLAS_NUM_THREADS",
    "OPENBLAS_VERBOSE",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "NUMBA_NUM_THREADS",
    "NUMBA_THREADING_LAYER",
    "NUMBA_CACHE_DIR",
    "NUMBA_DISABLE_JIT",
    "NUMBA_OPT",
    "PYTHONHASHSEED",
)


def ensure_src_on_path() -> None:
    """Make `import valori_store` work from a checkout without installation."""
    s = str(SRC_DIR)
    if s not in sys.path:
        sys.path.insert(0, s)


def child_env(extra: dict | None = None) -> dict:
    """Environment for subprocesses: current env + src/ on PYTHONPATH."""
    env = dict(os.environ)
    pp = env.get("PYTHONPATH", "")
    parts = [p for p in pp.split(os.pathsep) if p]
    if str(SRC_DIR) not in parts:
        parts.insert(0, str(SRC_DIR))
    env["PYTHONPATH"] = os.pathsep.join(parts)
    if extra:
        env.update(extra)
    return env


# ----------------------------------------------------------------------------- data
def unit_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """n random unit vectors (float32, C-contiguous) from a seeded PCG64 stream.

    Generated in float64 and normalised there, then cast, so the result does not
    depend on BLAS. Random (unclustered) unit vectors are fine for *exact* search
    timing; they are a worst case for ANN recall, which is not measured here.
    """
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    step = 20_000
    for i in range(0, n, step):
        x = rng.standard_normal((min(step, n - i), dim))
        x /= np.sqrt(np.einsum("ij,ij->i", x, x))[:, None]
        out[i : i + x.shape[0]] = x
    return out


def make_ids(start: int, n: int) -> list[str]:
    return [f"doc-{i:08d}" for i in range(start, start + n)]


def make_metadatas(start: int, n: int) -> list[dict]:
    # small, JSON-native metadata: a string tag, an int and a bool
    return [{"source": f"src-{i % 97}", "chunk": i, "even": (i % 2 == 0)} for i in range(start, start + n)]


def canonical_json_len(obj) -> int:
    return len(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8"))


def metadata_bytes_estimate(ids: list[str], metadatas: list[dict] | None, texts: list[str] | None = None) -> int:
    """Payload bytes a record store must keep besides the vectors: UTF-8 ids,
    canonical-JSON metadata and UTF-8 texts (no Python object overhead)."""
    total = sum(len(i.encode("utf-8")) for i in ids)
    if metadatas:
        total += sum(canonical_json_len(m) for m in metadatas)
    if texts:
        total += sum(len(t.encode("utf-8")) for t in texts)
    return total


# ----------------------------------------------------------------------------- timing
def summarize_ns(samples_ns: list[int]) -> dict:
    a = np.asarray(samples_ns, dtype=np.float64) / 1e6  # ms
    return {
        "n": int(a.size),
        "median_ms": float(np.median(a)),
        "p95_ms": float(np.percentile(a, 95)),
        "mean_ms": float(a.mean()),
        "min_ms": float(a.min()),
        "max_ms": float(a.max()),
    }


def time_single_queries(fn, queries: np.ndarray, warmup: int) -> dict:
    """Call fn(q) for each query; the first `warmup` calls are not recorded."""
    for i in range(min(warmup, len(queries))):
        fn(queries[i])
    samples = []
    pc = time.perf_counter_ns
    for q in queries[warmup:]:
        t0 = pc()
        fn(q)
        samples.append(pc() - t0)
    return summarize_ns(samples)


def time_batch(fn, batch: np.ndarray, repeats: int, warmup: int = 1) -> dict:
    for _ in range(warmup):
        fn(batch)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(batch)
        ts.append(time.perf_counter() - t0)
    best = min(ts)
    med = float(np.median(ts))
    nq = batch.shape[0]
    return {
        "batch": int(nq),
        "repeats": repeats,
        "best_s": best,
        "median_s": med,
        "qps_best": nq / best,
        "qps_median": nq / med,
    }


def interleaved_single(engines: list, queries: np.ndarray, warmup: int, rounds: int) -> dict:
    """Single-query latency for several engines, interleaved in `rounds` blocks.

    engines: list of (name, prepare, fn); prepare() sets thread counts, fn(q) runs one
    query. Every engine is warmed with `warmup` queries first; then the timed queries
    are split into `rounds` consecutive slices and, per round, each engine runs the
    same slice (after 2 untimed queries to re-warm its thread pool). Background load
    that comes and goes during the run is so spread over all engines alike.
    Failures are recorded per engine.
    """
    timed = queries[warmup:]
    slices = np.array_split(np.arange(len(timed)), max(1, rounds))
    samples: dict = {name: [] for name, _, _ in engines}
    errors: dict = {}
    pc = time.perf_counter_ns
    for name, prepare, fn in engines:
        try:
            prepare()
            for i in range(warmup):
                fn(queries[i])
        except Exception as e:  # noqa: BLE001
            errors[name] = f"{type(e).__name__}: {e}"
    for sl in slices:
        for name, prepare, fn in engines:
            if name in errors:
                continue
            try:
                prepare()
                for i in range(min(2, warmup)):
                    fn(queries[i])
                for j in sl:
                    q = timed[j]
                    t0 = pc()
                    fn(q)
                    samples[name].append(pc() - t0)
            except Exception as e:  # noqa: BLE001
                errors[name] = f"{type(e).__name__}: {e}"
    out = {}
    for name, _, _ in engines:
        if name in errors:
            out[name] = {"error": errors[name]}
        else:
            out[name] = summarize_ns(samples[name])
            out[name]["rounds"] = len(slices)
    return out


def interleaved_batch(engines: list, batch: np.ndarray, repeats: int, rounds: int) -> dict:
    """Batched throughput, interleaved like interleaved_single (1 untimed call per
    engine per round, then repeats/rounds timed calls)."""
    per_round = max(1, int(np.ceil(repeats / max(1, rounds))))
    ts: dict = {name: [] for name, _, _ in engines}
    errors: dict = {}
    for _ in range(max(1, rounds)):
        for name, prepare, fn in engines:
            if name in errors:
                continue
            try:
                prepare()
                fn(batch)
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    fn(batch)
                    ts[name].append(time.perf_counter() - t0)
            except Exception as e:  # noqa: BLE001
                errors[name] = f"{type(e).__name__}: {e}"
    out = {}
    nq = batch.shape[0]
    for name, _, _ in engines:
        if name in errors:
            out[name] = {"error": errors[name]}
            continue
        best, med = min(ts[name]), float(np.median(ts[name]))
        out[name] = {"batch": int(nq), "timed_calls": len(ts[name]), "best_s": best, "median_s": med,
                     "qps_best": nq / best, "qps_median": nq / med}
    return out


def external_cpu_busy(interval: float = 0.5) -> dict:
    """CPU busy % of the machine over `interval` while this process sleeps, i.e. load
    from other processes (other users, test runs) that can distort timings."""
    try:
        import psutil

        per = psutil.cpu_percent(interval=interval, percpu=True)
        return {"per_cpu_pct": per, "mean_pct": float(sum(per) / len(per)), "loadavg": list(os.getloadavg())}
    except Exception as e:  # noqa: BLE001
        return {"error": repr(e)}


# ----------------------------------------------------------------------------- machine
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cache_sizes() -> dict:
    out = {}
    try:
        r = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10)
        for line in r.stdout.splitlines():
            k, _, v = line.partition(":")
            if k.strip() in ("L1d cache", "L2 cache", "L3 cache", "Model name", "Hypervisor vendor", "Flags"):
                key = k.strip()
                if key == "Flags":
                    flags = set(v.split())
                    out["simd_flags"] = sorted(f for f in flags if f in ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "neon", "asimd", "sve"))
                else:
                    out[key] = v.strip()
    except Exception:  # noqa: BLE001 - lscpu is optional
        pass
    return out


def machine_facts() -> dict:
    import numba

    facts = {
        "cpu_model": _cpu_model(),
        "logical_cpus": os.cpu_count(),
        "affinity_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_num_threads_max": numba.config.NUMBA_NUM_THREADS,
        "env": {k: os.environ.get(k) for k in ENV_VARS_OF_INTEREST},
    }
    facts.update(_cache_sizes())
    try:
        import psutil

        facts["ram_total_bytes"] = psutil.virtual_memory().total
        facts["physical_cores"] = psutil.cpu_count(logical=False)
    except Exception:  # noqa: BLE001
        pass
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg.get("Build Dependencies", {}).get("blas", {})
        facts["numpy_blas"] = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # noqa: BLE001
        pass
    try:
        import faiss

        facts["faiss"] = faiss.__version__
        facts["faiss_omp_max_threads"] = faiss.omp_get_max_threads()
    except Exception as e:  # noqa: BLE001
        facts["faiss"] = f"unavailable: {e!r}"
    try:
        import matplotlib

        facts["matplotlib"] = matplotlib.__version__
    except Exception:  # noqa: BLE001
        pass
    return facts


def dir_size(path: str | os.PathLike) -> int:
    p = Path(path)
    if p.is_file():
        return p.stat().st_size
    return sum(f.stat().st_size for f in p.rglob("*") if f.is_file())


def section_cli(doc: str, argv, default_sizes: tuple[int, ...], quick_sizes: tuple[int, ...], extra=None):
    """The command line of a standalone bench section: ``--sizes``, ``--out``, ``--quick``
    (plus ``extra(parser)``); returns (args, sizes)."""
    import argparse

    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--sizes", default=None, help=f"comma-separated (default {','.join(map(str, default_sizes))}; "
                                                  f"--quick {','.join(map(str, quick_sizes))})")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--quick", action="store_true")
    if extra is not None:
        extra(ap)
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")] if a.sizes else list(quick_sizes if a.quick else default_sizes)
    return a, sizes


def write_section(out_dir: str, name: str, data: dict) -> Path:
    """Write a bench section's JSON to ``out_dir/name``."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))
    return path
