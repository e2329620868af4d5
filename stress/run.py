"""Stress runs for valori-store (``make stress``; not part of ``make test``).

    python stress/run.py all            # crash loop, concurrency, soak (about 10 minutes)
    python stress/run.py crash --kills 100
    python stress/run.py concurrency --seconds 60
    python stress/run.py soak --seconds 120
    python stress/run.py all --quick    # about a minute

Each part prints what it checked and exits non-zero on any violation:

* **crash** (``crash.py``): a child process (``crash_child.py``) runs a seeded stream
  (``crash_ops.py``) of upserts, overwrites, deletes, checkpoints, restores, image writes,
  snapshot saves and compactions on one durable store (``fsync`` and ``batch`` durability
  alternating) and reports each call it began, each that returned and each point up to
  which the store acknowledged everything. The parent SIGKILLs it at a seeded moment
  (after some returned calls, during recovery, inside a slow operation), reopens the
  directory and checks: it opens (only recovery warnings) with no temp files left, its
  content and log length equal the stream's after an operation between the last
  acknowledged one and the one in flight, every acknowledged write is there exactly, every
  checkpoint keeps its seq and root, the root is a fresh store's root of the same content,
  ``verify`` passes, and the saved snapshot is the old file or the new one, whole.
* **concurrency**: threads upsert, delete, checkpoint, search, ``get`` and hash one durable
  store at once, while other processes try to open it for writing (``LockedError``), open it
  read-only and verify it; searches must be in the total order and every checkpoint's root
  must be reproducible by ``restore``.
* **soak**: a random mix of operations, reopens, restores, images and compactions against a
  durable store and an in-memory twin fed the same calls: after every operation the roots
  agree, and periodically the whole content and search results (ids, order, raw scores).
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Failed, check  # noqa: E402
from crash import crash  # noqa: E402
from valori_store import ValoriStore, verify  # noqa: E402

DIM = 8  # vector dimension of the concurrency and soak stores


# ------------------------------------------------------------------------ concurrency
def _ordered(hits) -> bool:
    """Score descending (raw: higher is closer under cosine), then id ascending (UTF-8 bytes)."""
    keys = [(-h.raw, h.id.encode("utf-8")) for h in hits]
    return keys == sorted(keys)


def concurrency(seconds: float, seed: int, work: Path) -> dict:
    root = work / "conc" / "store"
    root.parent.mkdir(parents=True, exist_ok=True)
    s = ValoriStore.open(root, dim=DIM, metric="cosine", durability="batch")
    rng0 = np.random.default_rng(seed)
    s.upsert(rng0.standard_normal((2000, DIM)), ids=[f"r{i}" for i in range(2000)])
    stop = threading.Event()
    counts: dict[str, int] = {}
    errors: list[str] = []
    cps: list = []
    lock = threading.Lock()

    def count(name: str) -> None:
        with lock:
            counts[name] = counts.get(name, 0) + 1

    def loop(name: str, body) -> None:
        rng = np.random.default_rng(seed + zlib.crc32(name.encode()))
        try:
            while not stop.is_set():
                body(rng)
                count(name)
        except Exception as exc:  # noqa: BLE001 - reported as a failure
            errors.append(f"{name}: {exc!r}")

    def upsert(rng) -> None:
        s.upsert(rng.standard_normal((5, DIM)), ids=[f"u{int(rng.integers(5000))}" for _ in range(5)][:1] +
                 [f"v{time.monotonic_ns()}-{j}" for j in range(4)])

    def delete(rng) -> None:
        s.delete([f"u{int(rng.integers(5000))}", f"r{int(rng.integers(2000))}"])

    def checkpoint(rng) -> None:
        c = s.checkpoint()
        with lock:
            cps.append(c)
        time.sleep(0.01)

    def search(rng) -> None:
        hits = s.search(rng.standard_normal(DIM), k=10)
        if not _ordered(hits):
            raise AssertionError("search results out of the total order")
        got = s.get([h.id for h in hits])
        if len(got) > len(hits):
            raise AssertionError("get returned more records than asked for")

    def hashing(rng) -> None:
        with s.view() as v:
            a = v.table.state_digest()
            b = v.table.state_digest()
        if a != b:
            raise AssertionError("the root changed inside one read view")

    threads = [threading.Thread(target=loop, args=(n, b)) for n, b in
               (("upsert", upsert), ("delete", delete), ("checkpoint", checkpoint), ("search-1", search),
                ("search-2", search), ("hash", hashing))]
    for t in threads:
        t.start()
    probes = {"locked": 0, "readonly": 0, "verify": 0}
    end = time.monotonic() + seconds
    code = ("import sys; sys.path.insert(0, %r)\n"
            "from valori_store import ValoriStore, LockedError, open_readonly, verify\n"
            "try:\n    ValoriStore.open(sys.argv[1]); print('OPENED')\n"
            "except LockedError:\n    print('LOCKED')\n"
            "r = open_readonly(sys.argv[1]); r.search([1.0] * %d, k=3); print('READONLY', len(r))\n"
            "print('VERIFY', verify(sys.argv[1]).ok)\n") % (str(ROOT / "src"), DIM)
    while time.monotonic() < end and not errors:
        out = subprocess.run([sys.executable, "-W", "ignore", "-c", code, str(root)], capture_output=True, text=True,
                             timeout=300)
        lines = out.stdout.split()
        if "LOCKED" not in lines:
            errors.append(f"another process opened the store for writing: {out.stdout} {out.stderr[-500:]}")
        probes["locked"] += "LOCKED" in lines
        probes["readonly"] += "READONLY" in lines
        if "VERIFY" in lines:
            ok = lines[lines.index("VERIFY") + 1] == "True"
            probes["verify"] += ok
            if not ok:
                errors.append("verify from another process failed on the live store")
        else:
            errors.append(f"probe process failed: {out.stderr[-800:]}")
    stop.set()
    for t in threads:
        t.join(120)
    check(not errors, "; ".join(errors[:5]))
    # every checkpoint taken under load is restorable to exactly its root
    sample = random.Random(seed).sample(cps, min(10, len(cps)))
    for c in sample:
        got = s.restore(c)
        check(s.state_hash() == c.state_hash == got.state_hash, f"restore to checkpoint {c.seq} gave another root")
    s.close()
    check(verify(root).ok, "verify after the concurrency run failed")
    print(f"concurrency: {seconds:.0f} s, operations {dict(sorted(counts.items()))}; every search in the total "
          f"order; the root stable inside read views; {probes['locked']} other processes got LockedError, "
          f"{probes['readonly']} read-only opens searched, {probes['verify']} verifies of the live store passed; "
          f"{len(sample)} of {len(cps)} checkpoints restored to their exact root; final verify ok", flush=True)
    return {"counts": counts, "probes": probes, "checkpoints": len(cps)}


# ------------------------------------------------------------------------------- soak
def _flat(r) -> tuple:
    return (r.id, None if r.vector is None else r.vector.tobytes(), r.text, r.metadata)


def soak(seconds: float, seed: int, work: Path) -> dict:
    root = work / "soak" / "store"
    root.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    s = ValoriStore.open(root, dim=DIM, metric="l2", durability="batch")
    twin = ValoriStore(dim=DIM, metric="l2")
    both = (s, twin)
    labels: list[str] = []  # checkpoints after the last compaction (restorable)
    counts: dict[str, int] = {}
    end = time.monotonic() + seconds
    i = 0
    while time.monotonic() < end:
        kind = rng.choices(["upsert", "plain", "delete", "checkpoint", "restore", "image", "reopen", "compact",
                            "compare"], [30, 5, 10, 8, 4, 2, 2, 1, 4])[0]
        if kind == "upsert":
            n = rng.randint(1, 50)
            x = nrng.standard_normal((n, DIM))
            ids = [f"k{rng.randint(0, 3000)}" for _ in range(n)]
            ids = list(dict.fromkeys(ids))
            texts = [rng.choice([None, "t", f"text {i}"]) for _ in ids]
            metas = [{"i": i, "g": rng.randint(0, 5)} if rng.random() < 0.7 else None for _ in ids]
            for t in both:
                t.upsert(x[: len(ids)], ids=ids, texts=texts, metadatas=metas)
        elif kind == "plain":
            ids = [f"p{rng.randint(0, 300)}"]
            for t in both:
                t.upsert_plain(ids, texts=[f"plain {i}"])
        elif kind == "delete":
            ids = [f"k{rng.randint(0, 3000)}" for _ in range(rng.randint(1, 20))]
            for t in both:
                t.delete(ids)
        elif kind == "checkpoint":
            label = f"c{i}"
            a, b = s.checkpoint(label), twin.checkpoint(label)
            check(a.state_hash == b.state_hash, f"op {i}: checkpoint roots differ")
            labels.append(label)
        elif kind == "restore" and labels:
            label = rng.choice(labels)
            for t in both:
                t.restore(label)
        elif kind == "image":
            s.write_image()
        elif kind == "reopen":
            s.close()
            s = ValoriStore.open(root)
            both = (s, twin)
        elif kind == "compact" and len(labels) >= 3:
            cut = labels[-2]
            s.compact(before=cut)
            labels = labels[labels.index(cut):]
        elif kind == "compare":
            check(s.ids() == twin.ids(), f"op {i}: ids differ")
            ids = s.ids()
            check([_flat(r) for r in s.get(ids)] == [_flat(r) for r in twin.get(ids)], f"op {i}: records differ")
            q = nrng.standard_normal(DIM)
            a = [(h.id, h.score) for h in s.search(q, k=20)]
            b = [(h.id, h.score) for h in twin.search(q, k=20)]
            check(a == b, f"op {i}: search results differ")
        counts[kind] = counts.get(kind, 0) + 1
        check(s.state_hash() == twin.state_hash(), f"op {i} ({kind}): the durable store and its twin differ")
        i += 1
    s.close()
    report = verify(root)
    check(report.ok and report.state_hash == twin.state_hash(), "final verify failed or gave another root")
    print(f"soak: {seconds:.0f} s, {i} operations {dict(sorted(counts.items()))}; the durable store's root equalled "
          f"its in-memory twin's after every one; content and search results (ids, order, scores) equal at every "
          f"compare; final verify ok (root {report.state_hash[:16]})", flush=True)
    return {"ops": i, "counts": counts}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("part", nargs="?", default="all", choices=("all", "crash", "concurrency", "soak"))
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--seconds", type=float, default=None, help="concurrency and soak duration (default 120 each)")
    ap.add_argument("--seed", type=int, default=20261203)
    ap.add_argument("--quick", action="store_true", help="10 kills, 15 s of concurrency and of soak")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args(argv)
    kills = 10 if args.quick else args.kills
    seconds = args.seconds if args.seconds is not None else (15.0 if args.quick else 120.0)
    work = Path(tempfile.mkdtemp(prefix="valori-stress-"))
    t0 = time.monotonic()
    try:
        if args.part in ("all", "crash"):
            crash(kills, args.seed, work)
        if args.part in ("all", "concurrency"):
            concurrency(seconds, args.seed, work)
        if args.part in ("all", "soak"):
            soak(seconds, args.seed, work)
    except Failed as exc:
        print(f"FAILED: {exc} (work directory kept: {work})", flush=True)
        return 1
    print(f"stress {args.part}: all checks passed in {time.monotonic() - t0:.0f} s", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
