"""The cost of ``valori_store.verify`` on a store with a long history (issue 12, item 10).

Builds (generated data, seeded) a durable store of ``--base`` records of dimension ``--dim``,
then ``--rounds`` rounds of: an upsert of 80 records (half new, half overwrites, with
texts), a checkpoint and ``write_image()`` (about 19 MB of log and 800 checkpoints and
image writes at the defaults), and times ``verify(path)`` ``--repeats`` times (the first
run includes numba's compile or cache load, reported apart). JSON to ``--out``/verify.json.

    python benchmarks/bench_verify.py --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_common import ensure_src_on_path, machine_facts  # noqa: E402

ensure_src_on_path()

from valori_store import ValoriStore, verify  # noqa: E402


def build(root: Path, base: int, rounds: int, dim: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    with ValoriStore.open(root, dim=dim, durability="none") as s:
        s.upsert(rng.standard_normal((base, dim)), ids=[f"b{i}" for i in range(base)])
        for r in range(rounds):
            ids = [f"r{r}-{j}" if j % 2 else f"b{(r * 40 + j) % base}" for j in range(80)]
            s.upsert(rng.standard_normal((80, dim)), ids=ids, texts=[f"t{j}" for j in range(80)])
            s.checkpoint(f"c{r}")
            s.write_image()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base", type=int, default=3000)
    ap.add_argument("--rounds", type=int, default=800)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    warnings.simplefilter("ignore")
    with tempfile.TemporaryDirectory(prefix="valori-bench-verify-") as tmp:
        root = Path(tmp) / "store"
        t = time.perf_counter()
        build(root, args.base, args.rounds, args.dim, args.seed)
        build_s = time.perf_counter() - t
        times, ok = [], True
        for _ in range(args.repeats):
            t = time.perf_counter()
            report = verify(root)
            times.append(time.perf_counter() - t)
            ok &= report.ok
        result = {"machine": machine_facts(), "data": "generated (seeded normal vectors)", "base": args.base,
                  "rounds": args.rounds, "dim": args.dim, "build_s": build_s,
                  "log_bytes": os.path.getsize(root / "events.vlog"),
                  "images_kept": len(list((root / "images").iterdir())),
                  "pages_kept": len(list((root / "pages").iterdir())), "checkpoints": args.rounds,
                  "verify_first_s": times[0], "verify_s": times[1:], "all_ok": ok}
    warm = result["verify_s"] or [times[0]]
    print(f"log {result['log_bytes'] / 1e6:.1f} MB, {args.rounds} checkpoints and image writes "
          f"({result['images_kept']} images and {result['pages_kept']} pages kept by retention): verify "
          f"{min(warm):.2f}-{max(warm):.2f} s (first {times[0]:.2f} s), ok={ok}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "verify.json").write_text(json.dumps(result, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
