#!/usr/bin/env python
"""Contention benchmark: search latency under a continuous write loop, with the store's
fair readers-writer lock and with the old writer-preferring one, in one run (issue 12).

    python benchmarks/bench_contention.py [--n 50000] [--dim 384] [--seconds 4]
                                          [--batch 100] [--lock both|new|old]
                                          [--old-rev b9e0424] [--stores memory,batch]
                                          [--variants upsert_1w,upsert_2w,checkpoint_1w]
                                          [--out benchmarks/results]

For each store kind (``memory``: in-memory; ``batch``: a durable directory with
``durability="batch"``) and each variant, a fresh store of ``--n`` seeded random unit
vectors (cosine) is built, then:

* ``upsert_1w`` / ``upsert_2w``: 1 or 2 writer threads upsert batches of ``--batch`` new
  vectors (pre-generated, so the loop does nothing but write) back to back;
* ``checkpoint_1w``: one writer thread calls ``checkpoint()`` back to back;

and after a short warm-up one reader thread issues single searches (k=10) for
``--seconds``. Reported per (store, variant, lock): write-op duration p50/p99 (a call's
whole time, lock wait included), search latency p50/p99/max, searches completed, and
search p99 / write p99. A search still waiting when the window closes finishes once the
writers stop, and counts (its latency is then about the whole window: starvation).
``alone`` gives each operation's duration without contention, for scale.

``--lock old`` is the ``ReadWriteLock`` of ``--old-rev`` (the last commit with the
writer-preferring lock), read with ``git show`` into a module of its own; it is installed
where the store constructs its lock (``opening.Live``, whose ``lock`` field's default
factory it replaces), so the store holds it from the start. Threads of one process share
the GIL, as an application's would. JSON goes to ``<out>/contention.json``; a table is
printed.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as _dt
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
from bench_common import REPO_ROOT, ensure_src_on_path, external_cpu_busy, machine_facts, unit_vectors  # noqa: E402

ensure_src_on_path()

from valori_store import ValoriStore  # noqa: E402
from valori_store.store import live as live_mod  # noqa: E402
from valori_store.store import opening  # noqa: E402
from valori_store.store.rwlock import ReadWriteLock  # noqa: E402

SCHEMA = "valori-store-bench-contention/1"
#: The last commit whose store lock is the writer-preferring one.
OLD_LOCK_REV = "b9e0424"
STORES = ("memory", "batch")
VARIANTS = ("upsert_1w", "upsert_2w", "checkpoint_1w")
K = 10
SEED_DATA = 20240601
SEED_QUERIES = 20240602
SEED_WRITES = 20240621
WARMUP_S = 0.3  # writers run this long before the reader starts
JOIN_S = 120.0  # bound on joining threads after the window


# ----------------------------------------------------------------------------- locks
def load_old_lock(rev: str) -> type:
    """``ReadWriteLock`` as of git revision ``rev``, loaded as a module of its own."""
    src = subprocess.run(["git", "-C", str(REPO_ROOT), "show", f"{rev}:src/valori_store/store/rwlock.py"],
                         capture_output=True, check=True, text=True).stdout
    mod = types.ModuleType(f"valori_rwlock_{rev}")
    mod.__file__ = f"git:{rev}:src/valori_store/store/rwlock.py"
    exec(compile(src, mod.__file__, "exec"), mod.__dict__)  # noqa: S102 - this repository's own file
    return mod.ReadWriteLock


@contextlib.contextmanager
def store_lock(cls: type) -> Iterator[None]:
    """Stores constructed inside the block hold a ``cls`` lock (``opening.Live`` patched)."""
    if cls is ReadWriteLock:
        yield
        return

    @dataclasses.dataclass
    class PatchedLive(live_mod.Live):
        lock: Any = dataclasses.field(default_factory=cls)

    saved = opening.Live
    opening.Live = PatchedLive  # type: ignore[misc]
    try:
        yield
    finally:
        opening.Live = saved  # type: ignore[misc]


# ----------------------------------------------------------------------------- stores
def build(kind: str, data: np.ndarray, lock_cls: type, tmp: Path) -> ValoriStore:
    with store_lock(lock_cls):
        if kind == "memory":
            store = ValoriStore(data.shape[1], "cosine")
        else:
            store = ValoriStore.open(tmp / "store", data.shape[1], "cosine", durability="batch")
    assert type(store._live.lock) is lock_cls, type(store._live.lock)
    step = 10_000
    for i in range(0, len(data), step):
        store.upsert(data[i : i + step], ids=[f"base-{j:08d}" for j in range(i, min(i + step, len(data)))])
    return store


def writer_op(store: ValoriStore, variant: str, batches: list[np.ndarray], w: int) -> Callable[[int], Any]:
    if variant.startswith("checkpoint"):
        return lambda i: store.checkpoint()
    return lambda i: store.upsert(batches[i % len(batches)], ids=[f"w{w}-{i}-{j}" for j in range(len(batches[0]))])


def stats(samples_s: list[float]) -> dict[str, Any]:
    if not samples_s:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    a = np.asarray(samples_s) * 1e3
    return {"n": int(a.size), "p50_ms": float(np.percentile(a, 50)), "p99_ms": float(np.percentile(a, 99)),
            "max_ms": float(a.max())}


def measure(kind: str, variant: str, lock_cls: type, data: np.ndarray, queries: np.ndarray,
            batches: list[np.ndarray], seconds: float) -> dict[str, Any]:
    """One window: the writer loop(s) of ``variant`` against one reader thread."""
    tmp = Path(tempfile.mkdtemp(prefix="valori-contention-"))
    store = build(kind, data, lock_cls, tmp)
    try:
        store.search(queries[0], k=K)
        writers = 2 if variant.endswith("2w") else 1
        stop, window = threading.Event(), [0.0, float("inf")]
        writes: list[list[tuple[float, float]]] = [[] for _ in range(writers)]
        searches: list[tuple[float, float]] = []
        pc = time.perf_counter

        def write_loop(w: int) -> None:
            op, i = writer_op(store, variant, batches, w), 0
            while not stop.is_set():
                t0 = pc()
                op(i)
                writes[w].append((t0, pc() - t0))
                i += 1

        def read_loop() -> None:
            i = 0
            while not stop.is_set():
                t0 = pc()
                store.search(queries[i % len(queries)], k=K)
                searches.append((t0, pc() - t0))
                i += 1

        threads = [threading.Thread(target=write_loop, args=(w,), name=f"writer-{w}", daemon=True)
                   for w in range(writers)]
        for t in threads:
            t.start()
        time.sleep(WARMUP_S)
        reader = threading.Thread(target=read_loop, name="reader", daemon=True)
        window[0] = pc()
        reader.start()
        time.sleep(seconds)
        window[1] = pc()
        stop.set()
        for t in [*threads, reader]:
            t.join(JOIN_S)
            if t.is_alive():
                raise RuntimeError(f"{t.name} did not stop within {JOIN_S:.0f} s")
        in_window = [d for t0, d in (x for w in writes for x in w) if window[0] <= t0 < window[1]]
        search_d = [d for _, d in searches]
        out = {"writers": writers, "window_s": window[1] - window[0], "write": stats(in_window),
               "search": stats(search_d), "searches_completed": len(search_d),
               "last_search_ended_after_window": bool(searches) and searches[-1][0] + searches[-1][1] > window[1],
               "records_after": len(store)}
        w99, s99 = out["write"]["p99_ms"], out["search"]["p99_ms"]
        out["search_p99_over_write_p99"] = s99 / w99 if w99 and s99 is not None else None
        return out
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


def alone(kind: str, data: np.ndarray, queries: np.ndarray, batches: list[np.ndarray]) -> dict[str, Any]:
    """Each operation's duration with no other thread using the store (current lock)."""
    tmp = Path(tempfile.mkdtemp(prefix="valori-contention-"))
    store = build(kind, data, ReadWriteLock, tmp)
    try:
        store.search(queries[0], k=K)
        pc, out = time.perf_counter, {}
        for name, op, reps in (("search", lambda i: store.search(queries[i % len(queries)], k=K), 100),
                               ("upsert", writer_op(store, "upsert", batches, 0), 50),
                               ("checkpoint", writer_op(store, "checkpoint", batches, 0), 50)):
            ds = []
            for i in range(reps):
                t0 = pc()
                op(i)
                ds.append(pc() - t0)
            out[name] = stats(ds)
        return out
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- output
def _f(v: float | None, spec: str = ".1f") -> str:
    return "-" if v is None else format(v, spec)


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'store':<7} {'variant':<14} {'lock':<5} {'searches':>8} {'srch p50':>9} {'p99':>8} {'max':>9} "
          f"{'write p50':>9} {'p99':>8} {'p99/p99':>8}")
    for row in result["runs"]:
        s, w = row["search"], row["write"]
        print(f"{row['store']:<7} {row['variant']:<14} {row['lock']:<5} {row['searches_completed']:>8} "
              f"{_f(s['p50_ms']):>9} {_f(s['p99_ms']):>8} {_f(s['max_ms']):>9} {_f(w['p50_ms']):>9} "
              f"{_f(w['p99_ms']):>8} {_f(row['search_p99_over_write_p99']):>8}")
    print("(ms; write = one upsert/checkpoint call incl. lock wait; p99/p99 = search p99 / write p99)")
    for kind, a in result["alone"].items():
        print(f"alone, {kind}: " + ", ".join(f"{k} p50 {_f(v['p50_ms'], '.2f')} ms" for k, v in a.items()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=50_000, help="records in the store before the writers start")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--seconds", type=float, default=4.0, help="reader window per (store, variant, lock)")
    ap.add_argument("--batch", type=int, default=100, help="vectors per upsert")
    ap.add_argument("--lock", choices=("both", "new", "old"), default="both",
                    help="new: src/'s lock; old: --old-rev's; both (default): each, interleaved")
    ap.add_argument("--old-rev", default=OLD_LOCK_REV, help="git revision of the old lock (default %(default)s)")
    ap.add_argument("--stores", default=",".join(STORES), help="comma list of: " + ", ".join(STORES))
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma list of: " + ", ".join(VARIANTS))
    ap.add_argument("--out", default=str(HERE / "results"), help="directory for contention.json ('' = none)")
    a = ap.parse_args(argv)
    a.stores = [s for s in a.stores.split(",") if s]
    a.variants = [v for v in a.variants.split(",") if v]
    for name, got, known in (("--stores", a.stores, STORES), ("--variants", a.variants, VARIANTS)):
        bad = [x for x in got if x not in known]
        if bad or not got:
            ap.error(f"{name}: unknown {bad or 'empty list'}; choose from {', '.join(known)}")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    locks: dict[str, type] = {}
    if a.lock in ("both", "new"):
        locks["new"] = ReadWriteLock
    if a.lock in ("both", "old"):
        try:
            locks["old"] = load_old_lock(a.old_rev)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"cannot load the old lock from git {a.old_rev}: {exc}", file=sys.stderr)
            return 2
    t_start = time.perf_counter()
    data = unit_vectors(a.n, a.dim, SEED_DATA)
    queries = unit_vectors(256, a.dim, SEED_QUERIES)
    batches = [unit_vectors(a.batch, a.dim, SEED_WRITES + i) for i in range(8)]
    result: dict[str, Any] = {
        "schema": SCHEMA, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "params": {"n": a.n, "dim": a.dim, "metric": "cosine", "k": K, "batch": a.batch, "seconds": a.seconds,
                   "warmup_s": WARMUP_S, "old_rev": a.old_rev if "old" in locks else None,
                   "data": "generated: seeded random unit vectors (bench_common.unit_vectors)"},
        "machine": machine_facts(), "external_cpu_busy_before": external_cpu_busy(), "alone": {}, "runs": [],
    }
    for kind in a.stores:
        result["alone"][kind] = alone(kind, data, queries, batches)
        for variant in a.variants:
            for lock_name, cls in locks.items():
                row = {"store": kind, "variant": variant, "lock": lock_name,
                       **measure(kind, variant, cls, data, queries, batches, a.seconds)}
                result["runs"].append(row)
                print(f"{kind} {variant} {lock_name}: {row['searches_completed']} searches, p99 "
                      f"{_f(row['search']['p99_ms'])} ms, max {_f(row['search']['max_ms'])} ms", flush=True)
    result["external_cpu_busy_after"] = external_cpu_busy()
    result["total_s"] = time.perf_counter() - t_start
    print_table(result)
    if a.out:
        out = Path(a.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "contention.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"wrote {out / 'contention.json'} ({result['total_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
