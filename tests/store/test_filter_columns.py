"""The columnar filter engine agrees with the record predicate on every row.

Differential: random metadata (the strictness corners of test_filters' pools plus values at
the int64 / 2**53 edges, lists and dicts that take the fallback), random filters from the
whole operator set, and random sequences of inserts, overwrites and deletes between
evaluations, so the incremental column maintenance (appends decoded late, overwritten rows
re-decoded, delete moves mirrored) is exercised too. The reference is
``filter_mask(predicate, metadata dicts)``, the path every filter took before the columns,
itself held to an independent evaluator in test_filters.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_filters import SCALAR_POOL, filters, json_values, operator_entry

from valori_store import ValoriStore
from valori_store.filters import compile_filter, filter_mask
from valori_store.format.canonical import canonical_metadata_batch, decode_metadata
from valori_store.query.filter import Filter
from valori_store.state import meta_columns
from valori_store.state.table import RecordTable

_DECODE_CHUNK = meta_columns.DECODE_CHUNK


def setup_module() -> None:
    meta_columns.DECODE_CHUNK = 7  # several decode chunks even in small tables


def teardown_module() -> None:
    meta_columns.DECODE_CHUNK = _DECODE_CHUNK

EDGES = [2**53, 2**53 + 1, -(2**53), 2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 1e300, -1e300, 0.5, -0.5,
         2.0**63, -(2.0**63), 9007199254740993.0, 1.5, "", "A", "a\x00"]
values = st.one_of(json_values, st.sampled_from(EDGES), st.integers(), st.floats(allow_nan=False, allow_infinity=False))
metadatas = st.dictionaries(st.sampled_from(["a", "b"]), values, max_size=2)
edge_operands = st.sampled_from([v for v in EDGES if not isinstance(v, str)] + [2**64, -(2**64), 0.1])
filters_with_edges = st.one_of(
    filters,
    st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte", "$eq", "$ne"]), edge_operands).map(
        lambda t: {"a": {t[0]: t[1]}}),
    st.lists(edge_operands, max_size=4).map(lambda xs: {"a": {"$in": xs}}),
)
ops = st.lists(st.tuples(st.sampled_from(["put", "put", "del", "check"]), st.integers(0, 11), metadatas),
               min_size=1, max_size=25)


def reference(spec: dict[str, Any], table: RecordTable) -> list[bool]:
    pred = compile_filter(spec)
    return filter_mask(pred, [decode_metadata(table.metas[r]) for r in range(table.n)]).tolist()


def engine(spec: dict[str, Any], table: RecordTable) -> list[bool]:
    mask = Filter.compile(spec).mask(table)
    return [True] * table.n if mask is None else mask.tolist()


def _put(table: RecordTable, rid: str, md: dict[str, Any]) -> None:
    table.upsert([rid], np.zeros((1, 2), np.int32), [None], canonical_metadata_batch([md]))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=filters_with_edges, steps=ops)
def test_engine_matches_predicate_through_mutations(spec: dict[str, Any], steps: list) -> None:
    table = RecordTable(2, "dot")
    checked = 0
    for action, k, md in steps:
        if action == "put":
            _put(table, f"r{k}", md)
        elif action == "del":
            table.delete([f"r{k}"])
        assert engine(spec, table) == reference(spec, table), (spec, action)
        checked += 1
    assert checked == len(steps)


@settings(max_examples=200, deadline=None)
@given(entry=operator_entry(), records=st.lists(metadatas, min_size=1, max_size=30))
def test_single_operator_on_bulk_rows(entry: tuple[str, Any], records: list[dict[str, Any]]) -> None:
    table = RecordTable(2, "dot")
    probes = records + [{"a": v} for v in SCALAR_POOL + EDGES] + [{}, {"b": 1}]
    table.upsert([f"r{i}" for i in range(len(probes))], np.zeros((len(probes), 2), np.int32), [None] * len(probes),
                 canonical_metadata_batch(probes))
    for spec in ({"a": {entry[0]: entry[1]}}, {"a": entry[1]}, {"$not": {"a": {entry[0]: entry[1]}}}):
        assert engine(spec, table) == reference(spec, table), spec


def test_fractional_and_huge_numbers_compare_exactly() -> None:
    table = RecordTable(2, "dot")
    vals = [2**53, 2**53 + 1, 2.0**53, 0.5, 1, 2**63 - 1, 2**63, 1e300]
    table.upsert([f"r{i}" for i in range(len(vals))], np.zeros((len(vals), 2), np.int32), [None] * len(vals),
                 canonical_metadata_batch([{"a": v} for v in vals]))
    got = engine({"a": {"$gt": 2**53}}, table)
    # 2**53 + 1 and the int64 max, 2**63 (fallback row) and 1e300 are above 2**53; 2.0**53 is not
    assert [vals[i] for i, ok in enumerate(got) if ok] == [2**53 + 1, 2**63 - 1, 2**63, 1e300]
    assert [vals[i] for i, ok in enumerate(engine({"a": 2**53}, table)) if ok] == [2**53, 2.0**53]
    assert [vals[i] for i, ok in enumerate(engine({"a": {"$lt": 0.75}}, table)) if ok] == [0.5]


def test_store_filters_through_columns_after_reopen_and_updates(tmp_path) -> None:
    """A durable store: filtered search, then overwrite/delete, then reopen: same answers as
    the predicate path each time (the columns are rebuilt from the reopened table)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 8)).astype(np.float32)
    metas = [{"tag": "ab"[i % 2], "year": 2000 + i % 30, "score": (i % 7) / 4} for i in range(300)]
    store = ValoriStore.open(tmp_path / "s", dim=8)
    store.upsert(x, ids=[f"d{i:03d}" for i in range(300)], metadatas=metas)
    spec = {"tag": "a", "year": {"$gte": 2010}, "score": {"$lt": 1}}

    def expected() -> list[str]:
        table = store._live.table
        pred = compile_filter(spec)
        return sorted(table.ids[r] for r in range(table.n) if pred(decode_metadata(table.metas[r])))

    def got() -> list[str]:
        return sorted(store.select_ids(spec))

    assert got() == expected() and got()
    store.upsert(x[:20], ids=[f"d{i:03d}" for i in range(20)], metadatas=[{"tag": "a", "year": 2029}] * 20)
    store.delete([f"d{i:03d}" for i in range(100, 160)])
    assert got() == expected()
    store.close()
    store = ValoriStore.open(tmp_path / "s")
    assert got() == expected()
    hits = store.search(x[0], k=5, filter=spec)
    assert {h.id for h in hits} <= set(expected())
    store.close()


@pytest.mark.parametrize("spec", [{"a": {"$exists": False}}, {"a": {"$empty": True}}, {"a": {"$empty": True, "$ne": 1}},
                                  {"a": {"$exists": False, "$ne": 1}}, {"$not": {}}, {"$or": [{}, {"a": 1}]}])
def test_missing_key_rules(spec: dict[str, Any]) -> None:
    table = RecordTable(2, "dot")
    recs = [{}, {"a": None}, {"a": ""}, {"a": []}, {"a": {}}, {"a": 1}, {"a": 0}, {"b": 1}]
    table.upsert([f"r{i}" for i in range(len(recs))], np.zeros((len(recs), 2), np.int32), [None] * len(recs),
                 canonical_metadata_batch(recs))
    assert engine(spec, table) == reference(spec, table)


LIST_RECORDS = [{"a": [1, "x", None]}, {"a": []}, {"a": [True]}, {"a": [1.0, 2.5]}, {"a": ["x", "y"]},
                {"a": "x"}, {"a": 1}, {"a": [[1], "x"]}, {"a": [{"x": 1}]}, {"a": [2**70]}, {}, {"b": [1]}]
LIST_OPERANDS = [[], [1], ["x"], ["x", "y"], [1, "x"], [None], [True], [2.5], [[1]], [{"x": 1}], [2**70], ["z"]]


@pytest.mark.parametrize("op", ["$any", "$all", "$contains", "$empty", "$eq", "$ne", "$in", "$nin"])
def test_list_values_every_list_operator(op: str) -> None:
    """Lists of scalars are evaluated on the element arrays; lists holding lists, dicts or
    huge ints (and list operands of equality) go to the predicate. Empty operands included."""
    table = RecordTable(2, "dot")
    table.upsert([f"r{i:02d}" for i in range(len(LIST_RECORDS))], np.zeros((len(LIST_RECORDS), 2), np.int32),
                 [None] * len(LIST_RECORDS), canonical_metadata_batch(LIST_RECORDS))
    if op == "$empty":
        operands: list[Any] = [True, False]
    elif op == "$contains":
        operands = [1, "x", None, True, 2.5, [1], {"x": 1}, "z", 1.0]
    elif op in ("$eq", "$ne"):
        operands = [[1, "x", None], [], [1.0, 2.5], "x", 1]
    else:
        operands = LIST_OPERANDS
    for x in operands:
        spec = {"a": {op: x}}
        assert engine(spec, table) == reference(spec, table), spec


def test_list_elements_are_compacted_after_many_overwrites() -> None:
    table = RecordTable(2, "dot")
    ids = [f"r{i:02d}" for i in range(50)]
    zeros = np.zeros((50, 2), np.int32)
    spec = {"a": {"$any": [3, "k7"]}}
    peak = 0
    for round_ in range(30):
        metas = [{"a": [round_ + i % 5, f"k{(i + round_) % 9}"] * 5} for i in range(50)]
        table.upsert(ids, zeros, [None] * 50, canonical_metadata_batch(metas))
        assert engine(spec, table) == reference(spec, table)
        peak = max(peak, table.meta_columns.columns["a"].n_el)
    table.delete(ids[::3])
    assert engine(spec, table) == reference(spec, table)
    assert table.meta_columns.columns["a"].n_el < 30 * 50 * 10  # garbage was dropped at least once
    assert peak < 30 * 50 * 10
