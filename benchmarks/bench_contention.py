"""Search latency under a continuous write loop: the fair store lock against the old one.

Issue 12, item 2: with the old writer-preferring lock a thread that upserts in a loop
blocked every search (one took 4.9 s; with two writers a search waited the whole run).
This runs, in one process and one run, each variant with the current lock and with the
lock of ``--baseline`` (default: the last commit before the fair lock, read with
``git show``; swapped into the store after it is built):

* ``upsert_1w`` / ``upsert_2w``: 1 or 2 threads upsert batches of ``--batch`` new vectors
  in a loop into an in-memory store;
* ``checkpoint``: one thread does upsert(1 vector) + checkpoint() in a loop on a durable
  ("batch") store;

while one thread issues single searches (k=10) for ``--seconds``. Reported per variant and
lock: write-op duration p50/p99, search latency p50/p99/max, searches completed, and
search p99 / write p99. Generated data (seeded random unit vectors); JSON to
``--out``/contention.json.

    python benchmarks/bench_contention.py --n 50000 --seconds 5 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import REPO_ROOT, ensure_src_on_path, machine_facts, unit_vectors  # noqa: E402

ensure_src_on_path()

from valori_store import ValoriStore  # noqa: E402
from valori_store.store.rwlock import ReadWriteLock  # noqa: E402

#: The last commit with the writer-preferring lock.
DEFAULT_BASELINE = "b9e0424"


def old_lock_class(rev: str) -> type | None:
    """The ReadWriteLock of ``rev`` (None when git or the revision is unavailable)."""
    try:
        src = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:src/valori_store/store/rwlock.py"],
                             check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    path = Path(tempfile.mkdtemp(prefix="valori-oldlock-")) / "old_rwlock.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("old_rwlock", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.ReadWriteLock


def pct(xs: list[float], q: float) -> float | None:
    return float(np.percentile(np.array(xs), q)) if xs else None


def run_variant(variant: str, lock_cls: type, n: int, dim: int, seconds: float, batch: int, seed: int) -> dict:
    base = unit_vectors(n, dim, seed)
    queries = unit_vectors(64, dim, seed + 1)
    tmp = None
    if variant == "checkpoint":
        tmp = tempfile.TemporaryDirectory(prefix="valori-contention-")
        store = ValoriStore.open(Path(tmp.name) / "s", dim=dim, durability="batch")
    else:
        store = ValoriStore(dim=dim)
    for i in range(0, n, 10_000):
        store.upsert(base[i:i + 10_000], ids=[f"b{j}" for j in range(i, i + len(base[i:i + 10_000]))])
    store.search(queries[0], k=10)
    store._live.lock = lock_cls()  # the lock under test (nothing holds the old one now)
    writers = 2 if variant == "upsert_2w" else 1
    stop = threading.Event()
    write_times: list[list[float]] = [[] for _ in range(writers)]

    def writer(w: int) -> None:
        rng = np.random.default_rng(seed + 10 + w)
        i = 0
        while not stop.is_set():
            if variant == "checkpoint":
                x = rng.standard_normal((1, dim)).astype(np.float32)
                t = time.perf_counter()
                store.upsert(x, ids=[f"b{int(rng.integers(n))}"])
                store.checkpoint()
            else:
                x = rng.standard_normal((batch, dim)).astype(np.float32)
                t = time.perf_counter()
                store.upsert(x, ids=[f"w{w}-{i}-{j}" for j in range(batch)])
            write_times[w].append(time.perf_counter() - t)
            i += 1

    threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    lat: list[float] = []
    end = time.perf_counter() + seconds
    q = 0
    while time.perf_counter() < end:
        t = time.perf_counter()
        store.search(queries[q % len(queries)], k=10)
        lat.append(time.perf_counter() - t)
        q += 1
    stop.set()
    for t in threads:
        t.join(60)
    if tmp is not None:
        store.close()
        tmp.cleanup()
    writes = [x for w in write_times for x in w]
    ms = lambda v: None if v is None else v * 1e3  # noqa: E731
    out = {"searches": len(lat), "writes": len(writes),
           "search_ms": {"p50": ms(pct(lat, 50)), "p99": ms(pct(lat, 99)), "max": ms(max(lat) if lat else None)},
           "write_ms": {"p50": ms(pct(writes, 50)), "p99": ms(pct(writes, 99))}}
    wp99 = out["write_ms"]["p99"]
    out["search_p99_over_write_p99"] = (out["search_ms"]["p99"] / wp99) if wp99 else None
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--seconds", type=float, default=5.0, help="searching time per variant and lock")
    ap.add_argument("--batch", type=int, default=100, help="vectors per upsert in the upsert variants")
    ap.add_argument("--baseline", default=DEFAULT_BASELINE, help="git revision of the old lock")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--out", default=None, help="directory for contention.json")
    args = ap.parse_args(argv)
    locks = {"fair": ReadWriteLock}
    old = old_lock_class(args.baseline)
    if old is not None:
        locks[f"old ({args.baseline})"] = old
    result = {"machine": machine_facts(), "data": "generated (seeded random unit vectors)", "n": args.n,
              "dim": args.dim, "seconds": args.seconds, "batch": args.batch, "variants": {}}
    print(f"{'variant':<11} {'lock':<15} {'searches':>8} {'search p50':>10} {'p99':>9} {'max':>9} "
          f"{'write p50':>9} {'p99':>8} {'p99 ratio':>9}")
    for variant in ("upsert_1w", "upsert_2w", "checkpoint"):
        for name, cls in locks.items():
            r = run_variant(variant, cls, args.n, args.dim, args.seconds, args.batch, args.seed)
            result["variants"].setdefault(variant, {})[name] = r
            f = lambda v: "-" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"{variant:<11} {name:<15} {r['searches']:>8} {f(r['search_ms']['p50']):>10} "
                  f"{f(r['search_ms']['p99']):>9} {f(r['search_ms']['max']):>9} {f(r['write_ms']['p50']):>9} "
                  f"{f(r['write_ms']['p99']):>8} {f(r['search_p99_over_write_p99']):>9}", flush=True)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "contention.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
