"""The crash loop's child: run the operation stream from ``start`` on a durable store.

    crash_child.py STORE SNAPSHOT fsync|batch START

Prints ``DONE i`` when operation ``i`` returned and ``DURABLE i`` when everything up to it
is on disk (every operation under fsync; checkpoints, images, compactions and every fifth
operation's explicit ``sync()`` under batch).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import warnings  # noqa: E402

from ops import DIM, apply, op  # noqa: E402

from valori_store import ValoriStore  # noqa: E402


def main() -> None:
    store_dir, snap, mode, start = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    warnings.simplefilter("ignore")
    s = ValoriStore.open(store_dir, dim=DIM, metric="cosine", durability=mode)
    for i in range(start, start + 400):
        operation = op(i)
        apply(s, operation, durable=True, snap=snap)
        print(f"DONE {i}", flush=True)
        synced = operation[0] in ("checkpoint", "image", "compact")
        if mode == "batch" and not synced and i % 5 == 4:
            s.sync()
            synced = True
        if mode == "fsync" or synced:
            print(f"DURABLE {i}", flush=True)
    s.close()


if __name__ == "__main__":
    main()
