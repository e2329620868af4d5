"""Growable row storage: growth keeps the rows in use and zeroes the rest, on both the
in-place (remap) path and the copying path."""

from __future__ import annotations

import numpy as np
import pytest

from valori_store.state import growable
from valori_store.state.growable import GrowableRows
from valori_store.state.table import RecordTable


def _fill(rows: GrowableRows, used: int, seed: int) -> np.ndarray:
    data = np.random.Generator(np.random.PCG64(seed)).integers(-(2**31), 2**31 - 1, size=(used, *rows.row_shape))
    rows.array[:used] = data
    return data.astype(rows.dtype)


@pytest.mark.parametrize("row_shape, dtype", [((384,), np.int32), ((), np.int64), ((3,), np.int32)])
def test_growth_keeps_used_rows_and_zeroes_the_rest(row_shape, dtype) -> None:
    rows = GrowableRows(row_shape, dtype)
    used, expected = 0, np.zeros((0, *row_shape), dtype)
    for step, capacity in enumerate([5, 700, 3000, 9000, 40000]):
        rows.grow(capacity, used)
        assert rows.capacity == capacity and rows.array.dtype == dtype
        assert np.array_equal(rows.array[:used], expected)
        assert not rows.array[used:].any()
        new = _fill(rows, capacity, step)
        used, expected = capacity, new
    rows.grow(10, used)  # never shrinks
    assert rows.capacity == 40000


def test_large_storage_is_a_memory_map_grown_in_place() -> None:
    rows = GrowableRows((1024,), np.int32)
    rows.grow(growable.MAP_FROM_BYTES // 4096 + 100, 0)  # just above the mapping threshold
    assert rows._map is not None
    first = _fill(rows, 300, 1)
    mapping = rows._map
    rows.grow(5000, 300)
    assert rows._map is mapping  # extended, not replaced (the kernel may still move it)
    assert np.array_equal(rows.array[:300], first) and not rows.array[300:].any()


def test_a_view_kept_across_growth_forces_a_copy_and_stays_valid() -> None:
    rows = GrowableRows((1024,), np.int32)
    rows.grow(400, 0)
    first = _fill(rows, 400, 2)
    kept = rows.array[:400]  # a caller ignoring the "do not keep views" rule
    mapping = rows._map
    rows.grow(4000, 400)
    assert rows._map is not mapping  # resize refused (exported buffer): copied instead
    assert np.array_equal(kept, first) and np.array_equal(rows.array[:400], first)
    rows.array[:400] = 0
    assert np.array_equal(kept, first)  # the old view is detached, not corrupted


def test_table_growth_with_deletes_matches_a_fresh_table() -> None:
    rng = np.random.Generator(np.random.PCG64(9))
    grown, fresh = RecordTable(600, "dot"), RecordTable(600, "dot")
    all_rows = rng.integers(-(2**16), 2**16, size=(3000, 600)).astype(np.int32)
    ids = [f"r{i:05d}" for i in range(3000)]
    for start in range(0, 3000, 250):
        grown.upsert(ids[start : start + 250], all_rows[start : start + 250], [None] * 250, [b"{}"] * 250)
        grown.delete(ids[start : start + 5])
    keep = [i for i in range(3000) if i % 250 >= 5]
    fresh.upsert([ids[i] for i in keep], all_rows[keep], [None] * len(keep), [b"{}"] * len(keep))
    assert grown.n == fresh.n
    order_g, order_f = grown.id_order(), fresh.id_order()
    assert np.array_equal(grown.matrix[order_g], fresh.matrix[order_f])
    assert np.array_equal(grown.rowmax[order_g], fresh.rowmax[order_f])
    assert not grown.matrix[grown.n :].any() and not grown.rowmax[grown.n :].any()
