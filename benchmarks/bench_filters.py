"""Filter benchmark: filtered vs unfiltered exact search, select() listings, column build.

    python benchmarks/bench_filters.py [--sizes 100000,1000000] [--out DIR] [--quick]

Generated data only (seeded random unit vectors, dim 384, cosine) with the three metadata
fields of bench_common (``source`` a string of 97 values, ``chunk`` an int, ``even`` a bool).
For each size, in one process: the unfiltered single query; filtered single queries at
about 1%, 50% and 25% selectivity, first use (the column of each key is built then) and
steady state; the row mask of the columnar engine against the record-predicate path it
replaced (``filter_mask`` over decoded metadata), measured side by side; ``select_ids``
rows/s. Times are min/median/max over ``--repeats`` calls. JSON to ``DIR/filters.json``.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from bench_common import make_ids, make_metadatas, section_cli, write_section  # noqa: E402

DIM = 384
SEED = 20240601


def _times(fn, repeats: int) -> dict:
    out = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return {"min_ms": min(out) * 1e3, "median_ms": statistics.median(out) * 1e3, "max_ms": max(out) * 1e3}


def measure(n: int, repeats: int) -> dict:
    from valori_store import ValoriStore
    from valori_store.filters import filter_mask
    from valori_store.query.filter import Filter

    rng = np.random.default_rng(SEED)
    store = ValoriStore(DIM)
    t = time.perf_counter()
    for i in range(0, n, 20_000):
        b = min(20_000, n - i)
        x = rng.standard_normal((b, DIM)).astype(np.float32)
        store.upsert(x, ids=make_ids(i, b), metadatas=make_metadatas(i, b))
    res: dict = {"n": n, "dim": DIM, "data": "generated", "ingest_s": time.perf_counter() - t}
    q = rng.standard_normal(DIM).astype(np.float32)
    store.search(q, k=10)
    res["unfiltered"] = _times(lambda: store.search(q, k=10), repeats)
    table = store._live.table
    specs = {"1%": {"source": "src-3"}, "50%": {"chunk": {"$gte": n // 2}},
             "25%": {"even": True, "source": {"$in": [f"src-{i}" for i in range(0, 97, 2)]}}}
    res["filtered"] = {}
    for name, spec in specs.items():
        t = time.perf_counter()
        store.search(q, k=10, filter=spec)
        first = time.perf_counter() - t
        steady = _times(lambda spec=spec: store.search(q, k=10, filter=spec), repeats)
        flt = Filter.compile(spec)
        engine_mask = _times(lambda flt=flt: flt.mask(table), repeats)
        dicts = table.metadata_dicts()
        predicate_mask = _times(lambda flt=flt, dicts=dicts: filter_mask(flt.predicate, dicts), max(1, repeats // 3))
        assert (flt.mask(table) == filter_mask(flt.predicate, dicts)).all()
        res["filtered"][name] = {
            "filter": spec, "matches": int(flt.mask(table).sum()), "first_use_ms": first * 1e3, "steady": steady,
            "ratio_to_unfiltered_median": steady["median_ms"] / res["unfiltered"]["median_ms"],
            "engine_mask": engine_mask, "predicate_mask": predicate_mask,
            "engine_rows_per_s": n / (engine_mask["median_ms"] / 1e3)}
    spec = specs["50%"]
    store.select_ids(spec)
    sel = _times(lambda: store.select_ids(spec), repeats)
    res["select_ids"] = {"filter": spec, **sel, "rows_scanned_per_s": n / (sel["median_ms"] / 1e3)}
    return res


def run_filters(sizes: list[int], repeats: int = 7) -> dict:
    """The filter section of ``make bench``: :func:`measure` at each size."""
    return {"what": __doc__.split("\n\n")[0].replace("\n", " "), "sizes": {str(n): measure(n, repeats) for n in sizes}}


def main(argv=None) -> int:
    a, sizes = section_cli(__doc__, argv, (100_000, 1_000_000), (20_000,),
                           lambda ap: ap.add_argument("--repeats", type=int, default=7))
    out = run_filters(sizes, a.repeats)
    for n, r in out["sizes"].items():
        print(f"n={int(n):,}: unfiltered {r['unfiltered']['median_ms']:.1f} ms")
        for name, f in r["filtered"].items():
            print(f"  {name:>4} filtered {f['steady']['median_ms']:.1f} ms ({f['ratio_to_unfiltered_median']:.2f}x), "
                  f"first use {f['first_use_ms']:.0f} ms, mask {f['engine_mask']['median_ms']:.2f} ms vs predicate "
                  f"{f['predicate_mask']['median_ms']:.0f} ms")
        print(f"  select_ids {r['select_ids']['median_ms']:.1f} ms ({r['select_ids']['rows_scanned_per_s'] / 1e6:.0f}M rows/s)")
    write_section(a.out, "filters.json", out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
