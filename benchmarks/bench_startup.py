"""Start-up cost: fresh interpreter, from just before `import valori_store` to the
first search result on a tiny store, with a cold and then a warm numba cache."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

from bench_common import child_env

_SNIPPET = r"""
import time, json
t0 = time.perf_counter()
import valori_store
from valori_store import ValoriStore
t_import = time.perf_counter() - t0
import numpy as np
x = np.random.default_rng(0).standard_normal((32, {dim})).astype(np.float32)
s = ValoriStore({dim}, metric="cosine")
s.upsert(x, ids=[f"t{{i}}" for i in range(32)])
t_upsert = time.perf_counter() - t0
hits = s.search(x[0], k=4)
t_first = time.perf_counter() - t0
assert hits and hits[0].id == "t0", hits
print(json.dumps({{"import_s": t_import, "upsert_done_s": t_upsert, "first_search_s": t_first}}))
"""


def _run_once(dim: int, cache_dir: str | None, timeout: float) -> dict:
    env = child_env({"NUMBA_CACHE_DIR": cache_dir} if cache_dir else None)
    t0 = time.perf_counter()
    r = subprocess.run(
        [sys.executable, "-c", _SNIPPET.format(dim=dim)],
        env=env, capture_output=True, text=True, timeout=timeout,
    )
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        return {"error": (r.stderr or r.stdout)[-2000:], "wall_s": wall}
    out = json.loads(r.stdout.strip().splitlines()[-1])
    out["wall_s"] = wall  # includes interpreter start-up
    return out


def bench_startup(dim: int, warm_runs: int, cold: bool = True, timeout: float = 300.0) -> dict:
    """cold=True: a new empty NUMBA_CACHE_DIR, one cold run, then warm runs on it.
    cold=False (--quick): warm runs only, on the cache the bench process itself filled
    (NUMBA_CACHE_DIR as inherited, or numba's default next to the sources)."""
    if not cold:
        env_cache = os.environ.get("NUMBA_CACHE_DIR")
        warm = [_run_once(dim, env_cache, timeout) for _ in range(warm_runs)]
        res = {"dim": dim, "cold": None, "cold_skipped": True, "warm_runs": warm}
    else:
        cache_dir = tempfile.mkdtemp(prefix="vs-bench-numba-cache-")
        try:
            cold_run = _run_once(dim, cache_dir, timeout)
            warm = [_run_once(dim, cache_dir, timeout) for _ in range(warm_runs)]
        finally:
            shutil.rmtree(cache_dir, ignore_errors=True)
        res = {"dim": dim, "cold": cold_run, "warm_runs": warm}
    cold = res["cold"] or {}
    ok = [w["first_search_s"] for w in warm if "first_search_s" in w]
    if ok:
        ok.sort()
        res["warm_first_search_s_median"] = ok[len(ok) // 2]
        res["warm_first_search_s_min"] = ok[0]
        res["warm_wall_s_median"] = sorted(w["wall_s"] for w in warm if "wall_s" in w)[len(ok) // 2]
    if "first_search_s" in cold:
        res["cold_first_search_s"] = cold["first_search_s"]
    return res
