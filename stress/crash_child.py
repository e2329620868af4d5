"""The crash loop's child: run the seeded operation stream on a durable store until killed.

    crash_child.py STORE SNAPSHOT fsync|batch SEED N START

Lines on stdout (each flushed, so a line printed before SIGKILL reaches the parent):

* ``OPEN <log_length>`` once the store is open;
* ``BEGIN <i>`` just before operation ``i`` is called;
* ``DONE <i> <effect>`` once that call returned;
* ``ACK <i> <effect>`` once everything up to operation ``i`` is acknowledged by the store:
  after every call under ``fsync``; under ``batch`` only after a ``checkpoint()`` or
  ``sync()`` returned (batch acknowledges at sync);
* ``END`` if it ran out of operations (the parent always kills it before).
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from crash_ops import DIM, METRIC, apply, effect, make_ops  # noqa: E402

from valori_store import ValoriStore  # noqa: E402


def main() -> None:
    store_dir, snap, mode = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    seed, n, start = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
    ops = make_ops(seed, n)
    out = sys.stdout
    warnings.simplefilter("ignore")  # the parent checks the recovery warnings itself
    s = ValoriStore.open(store_dir, dim=DIM, metric=METRIC, durability=mode)
    out.write(f"OPEN {s.log_length}\n")
    out.flush()
    for i in range(start, n):
        o = ops[i]
        out.write(f"BEGIN {i}\n")
        out.flush()
        apply(s, o, snap)
        e = effect(i, o)
        line = f"DONE {i} {e}\n"
        if mode == "fsync" or o[0] in ("checkpoint", "sync"):
            line += f"ACK {i} {e}\n"
        out.write(line)
        out.flush()
    s.close()
    out.write("END\n")
    out.flush()


if __name__ == "__main__":
    main()
