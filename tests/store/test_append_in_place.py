"""Plain ingest converts vectors straight into the matrix's free rows. Whatever fails
on that path changes nothing, and its result equals the copying path's and a replay."""

from __future__ import annotations

import numpy as np
import pytest

from valori_store import ValoriStore
from valori_store.errors import VectorError, ZeroVectorError

DIM = 24


def _batch(n: int, seed: int) -> np.ndarray:
    return np.random.Generator(np.random.PCG64(seed)).normal(size=(n, DIM))


def _ids(start: int, n: int) -> list[str]:
    return [f"d{i:05d}" for i in range(start, start + n)]


def _free_rows_are_zero(store: ValoriStore) -> bool:
    t = store._live.table
    return not t.matrix[t.n :].any() and not t.rowmax[t.n :].any()


@pytest.mark.parametrize("n", [10, 3000])  # serial and parallel kernels
@pytest.mark.parametrize("bad", ["nan", "range", "zero"])
def test_a_bad_vector_late_in_a_batch_changes_nothing(n: int, bad: str) -> None:
    s = ValoriStore(DIM)
    s.upsert(_batch(50, 1), ids=_ids(0, 50), metadatas=[{"i": i} for i in range(50)])
    before = (len(s), s.state_hash(), s.log_length, s.to_bytes())
    x = _batch(n, 2)
    x[n - 1, 3] = {"nan": np.nan, "range": 1e6, "zero": x[n - 1, 3]}[bad]
    if bad == "zero":
        x[n - 1] = 0.0
    with pytest.raises(ZeroVectorError if bad == "zero" else VectorError, match=f"{n - 1}"):
        s.upsert(x, ids=_ids(50, n))
    assert (len(s), s.state_hash(), s.log_length, s.to_bytes()) == before
    assert _free_rows_are_zero(s)
    x[n - 1] = 1.0
    s.upsert(x, ids=_ids(50, n))  # the same rows, now good, land normally
    clean = ValoriStore(DIM)
    clean.upsert(_batch(50, 1), ids=_ids(0, 50), metadatas=[{"i": i} for i in range(50)])
    clean.upsert(x, ids=_ids(50, n))
    assert s.state_hash() == clean.state_hash() and s.to_bytes() == clean.to_bytes()
    assert s.verify().ok


def test_a_failing_log_append_leaves_no_trace(monkeypatch) -> None:
    s = ValoriStore(DIM)
    s.upsert(_batch(20, 3), ids=_ids(0, 20))
    before = (len(s), s.state_hash(), s.log_length)

    def broken(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(s._live.log, "append", broken)
    with pytest.raises(OSError):
        s.upsert(_batch(500, 4), ids=_ids(20, 500))
    monkeypatch.undo()
    assert (len(s), s.state_hash(), s.log_length) == before and _free_rows_are_zero(s)
    assert s.get(_ids(20, 1)) == []


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_in_place_and_copying_paths_give_identical_states(metric: str) -> None:
    x = _batch(2500, 5)
    ids = _ids(0, 2500)
    direct = ValoriStore(DIM, metric)
    direct.upsert(x, ids=ids)  # every id new: in place
    copied = ValoriStore(DIM, metric)
    copied.upsert(x[:1] * 2, ids=ids[:1])
    copied.upsert(x, ids=ids)  # one id exists: overwrite, copying path
    assert direct.state_hash() == copied.state_hash()
    q = _batch(3, 6)
    assert [[(h.id, h.raw) for h in r] for r in direct.search_batch(q, k=7)] == [
        [(h.id, h.raw) for h in r] for r in copied.search_batch(q, k=7)
    ]


def test_durable_in_place_ingest_reopens_and_replays_to_the_same_state(tmp_path) -> None:
    s = ValoriStore.open(tmp_path / "kb", dim=DIM, durability="batch")
    for start in range(0, 4000, 1000):
        s.upsert(_batch(1000, start), ids=_ids(start, 1000), metadatas=[{"b": start}] * 1000)
    live = s.state_hash()
    assert s.verify().ok
    s.close()
    again = ValoriStore.open(tmp_path / "kb")
    assert again.state_hash() == live and len(again) == 4000
    again.close()


def test_the_row_bound_stays_an_upper_bound_after_deletes_and_search_stays_exact() -> None:
    from valori_store import spec

    s = ValoriStore(DIM, "dot")
    x = _batch(300, 8)
    x[7] = 30000.0  # a huge row: the int64 proof fails for it against big queries
    ids = _ids(0, 300)
    s.upsert(x, ids=ids)
    t = s._live.table
    assert t.rowmax_bound == t.maxabs() == 30000 * 65536
    s.delete([ids[7]])
    assert t.rowmax_bound >= t.maxabs()  # stays high: deletes never lower it
    q = np.full(DIM, 30000.0)
    got = [(h.id, h.raw) for h in s.search(q, k=5)]
    live = [i for i in range(300) if i != 7]
    rows = spec.quantize(x[live], DIM)
    want = spec.top_k("dot", spec.quantize(q, DIM)[0].tolist(), rows, [ids[i] for i in live], 5)
    assert got == want


@pytest.mark.parametrize("n", [500, 5000])  # below and above the serial-scan threshold
def test_one_and_two_threads_give_the_same_results_around_the_serial_threshold(n: int) -> None:
    import numba

    s = ValoriStore(DIM)
    s.upsert(_batch(n, 9), ids=_ids(0, n))
    q = _batch(4, 10)
    before = numba.get_num_threads()
    results = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append([[(h.id, h.raw) for h in s.search(v, k=9)] for v in q])
    finally:
        numba.set_num_threads(before)
    assert all(r == results[0] for r in results)
    assert results[0] == [[(h.id, h.raw) for h in r] for r in s.search_batch(q, k=9)]
