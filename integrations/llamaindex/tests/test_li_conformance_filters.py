"""Every FilterOperator and FilterCondition against LlamaIndex's reference evaluator.

The reference is ``llama_index.core.vector_stores.utils.build_metadata_filter_fn`` (what
SimpleVectorStore runs). For each filter and each metadata value of a corpus covering
missing keys, None, numbers, strings, lists and dicts, the set of nodes ValoriVectorStore
returns — through a vector query (core search) and a metadata-only query (core filter
engine) — must equal the reference's set, except for the documented deliberate
differences, which have their own expectation (``_documented``):

* where the reference raises TypeError, the node does not match;
* ANY / ALL match list values only (the reference also does substring tests on strings,
  key tests on dicts, and ALL [] is true for any present value);
* CONTAINS on a dict value does not match (the reference tests dict keys);
* IS_EMPTY counts {} as empty (the reference counts None, "" and [] only);
* bool values are not numbers (tested separately in ``test_bool_values_are_not_numbers``).

Nested MetadataFilters are not supported by the reference; their expectation composes the
reference's leaf results with the reference's own condition rules (AND: all, OR: any,
NOT: none, empty list: everything).
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores.types import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)
from llama_index.core.vector_stores.utils import build_metadata_filter_fn

from valori_store.llamaindex import UnsupportedFilterError, ValoriVectorStore

MISSING = object()
KEY = "v"

# (label, value) — every value becomes one node; MISSING means the node lacks the key.
VALUES: list[tuple[str, Any]] = [
    ("missing", MISSING), ("none", None), ("zero", 0), ("one", 1), ("one_f", 1.0), ("two", 2),
    ("one_half", 1.5), ("neg", -1), ("s1", "1"), ("sa", "a"), ("sabc", "abc"), ("sABC", "ABC"),
    ("shello", "Hello World"), ("sb", "b"), ("sempty", ""), ("lempty", []), ("la", ["a"]),
    ("lab", ["a", "b"]), ("lbc", ["b", "c"]), ("l12", [1, 2]), ("l1f", [1.0]), ("lnested", [["a", "b"]]),
    ("dict", {"a": 1}), ("dempty", {}),
]

OPERANDS: dict[FilterOperator, list[Any]] = {
    FilterOperator.EQ: [1, 1.0, 1.5, "1", "a", "abc", 0, ["a", "b"], [1, 2]],
    FilterOperator.NE: [1, 1.5, "1", "a", ["a", "b"]],
    FilterOperator.GT: [1, 1.5, 0, "abc", "b"],
    FilterOperator.GTE: [1, 1.5, "abc", "A"],
    FilterOperator.LT: [1, 2, "b", "abc"],
    FilterOperator.LTE: [1, 1.5, "abc", "a"],
    FilterOperator.IN: [[1, 2], ["a", "abc"], [1.5], ["1"], []],
    FilterOperator.NIN: [[1, 2], ["a", "abc"], ["1"], []],
    FilterOperator.ANY: [["a"], ["a", "b"], ["c", "x"], [1], []],
    FilterOperator.ALL: [["a"], ["a", "b"], ["b", "c"], [1, 2], []],
    FilterOperator.CONTAINS: ["a", 1, "b", "ab", ["a", "b"]],
    FilterOperator.TEXT_MATCH: ["a", "bc", "B", "", "World"],
    FilterOperator.TEXT_MATCH_INSENSITIVE: ["A", "bc", "WORLD", ""],
    FilterOperator.IS_EMPTY: [None],
}
assert set(OPERANDS) == set(FilterOperator), "every operator is covered"

LEAVES = [MetadataFilter(key=KEY, operator=op, value=v) for op, vs in OPERANDS.items() for v in vs]


def _metadata(value: Any) -> dict[str, Any]:
    return {"tag": "x"} if value is MISSING else {"tag": "x", KEY: value}


def _leaf_reference(f: MetadataFilter, md: dict[str, Any]) -> bool | type[TypeError]:
    """The reference verdict for one leaf; TypeError when the reference raises it."""
    fn = build_metadata_filter_fn(lambda _: md, MetadataFilters(filters=[f]))
    try:
        return fn("node")
    except TypeError:
        return TypeError


def _documented(f: MetadataFilter, md: dict[str, Any]) -> bool:
    """Our verdict for one leaf: the reference's, or the documented deliberate difference."""
    ref = _leaf_reference(f, md)
    value = md.get(KEY, MISSING)
    op = f.operator
    if ref is TypeError:
        return False
    if op in (FilterOperator.ANY, FilterOperator.ALL) and value not in (MISSING, None) and not isinstance(value, list):
        return False
    if op == FilterOperator.CONTAINS and isinstance(value, dict):
        return False
    if op == FilterOperator.IS_EMPTY and value == {} and isinstance(value, dict):
        return True
    return bool(ref)


def _expected(filters: MetadataFilters, md: dict[str, Any]) -> bool:
    """Nested composition with the reference's condition rules."""
    if not filters.filters:
        return True
    verdicts = [
        _expected(f, md) if isinstance(f, MetadataFilters) else _documented(f, md) for f in filters.filters
    ]
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.AND:
        return all(verdicts)
    if condition == FilterCondition.OR:
        return any(verdicts)
    return not any(verdicts)


@pytest.fixture(scope="module")
def store() -> ValoriVectorStore:
    s = ValoriVectorStore(dim=2)
    nodes = [
        TextNode(id_=label, text=label, metadata=_metadata(value), embedding=[1.0, float(i % 3)])
        for i, (label, value) in enumerate(VALUES)
    ]
    s.add(nodes)
    return s


def _matches(store: ValoriVectorStore, filters: MetadataFilters, vector: bool) -> set[str]:
    q = VectorStoreQuery(query_embedding=[1.0, 0.5] if vector else None, similarity_top_k=len(VALUES), filters=filters)
    return set(store.query(q).ids)


def _expected_ids(filters: MetadataFilters) -> set[str]:
    return {label for label, value in VALUES if _expected(filters, _metadata(value))}


def test_reference_agrees_with_us_on_most_pairs() -> None:
    """Sanity check of the harness: documented differences are the exception."""
    pairs = [(f, _metadata(v)) for f in LEAVES for _, v in VALUES]
    differ = sum(_documented(f, md) != bool(_leaf_reference(f, md) is True) for f, md in pairs)
    assert 0 < differ < len(pairs) // 10


@pytest.mark.parametrize("vector", [True, False], ids=["search", "metadata_only"])
@pytest.mark.parametrize("leaf", LEAVES, ids=lambda f: f"{f.operator.name}-{f.value!r}")
def test_every_operator_matches_reference(store: ValoriVectorStore, leaf: MetadataFilter, vector: bool) -> None:
    filters = MetadataFilters(filters=[leaf])
    assert _matches(store, filters, vector) == _expected_ids(filters)


def _leaf(op: FilterOperator, value: Any) -> MetadataFilter:
    return MetadataFilter(key=KEY, operator=op, value=value)


COMBOS = [
    [_leaf(FilterOperator.GT, 0), _leaf(FilterOperator.LT, 2)],
    [_leaf(FilterOperator.EQ, "a"), _leaf(FilterOperator.CONTAINS, "a")],
    [_leaf(FilterOperator.NE, 1), _leaf(FilterOperator.IS_EMPTY, None)],
    [_leaf(FilterOperator.NIN, ["a"]), _leaf(FilterOperator.TEXT_MATCH, "b"), _leaf(FilterOperator.ANY, ["c"])],
    [_leaf(FilterOperator.IN, [1, 2]), _leaf(FilterOperator.EQ, "1")],
]


@pytest.mark.parametrize("vector", [True, False], ids=["search", "metadata_only"])
@pytest.mark.parametrize("condition", list(FilterCondition), ids=lambda c: c.name)
@pytest.mark.parametrize("leaves", COMBOS, ids=lambda ls: "+".join(f.operator.name for f in ls))
def test_every_condition_matches_reference(store, leaves, condition, vector) -> None:
    """Flat filters: the composition rule equals the reference evaluator itself wherever
    no leaf hits a documented difference, and the store follows the composition."""
    filters = MetadataFilters(filters=leaves, condition=condition)
    reference = build_metadata_filter_fn(lambda label: _metadata(dict(VALUES)[label]), filters)
    checked = 0
    for label, value in VALUES:
        md = _metadata(value)
        if all(_documented(f, md) is _leaf_reference(f, md) for f in leaves):
            assert reference(label) == _expected(filters, md), label
            checked += 1
    assert checked >= 5
    assert _matches(store, filters, vector) == _expected_ids(filters)


NESTED = [
    MetadataFilters(
        filters=[
            MetadataFilters(filters=COMBOS[0], condition=FilterCondition.AND),
            MetadataFilters(filters=[_leaf(FilterOperator.TEXT_MATCH_INSENSITIVE, "A")], condition=FilterCondition.NOT),
        ],
        condition=FilterCondition.OR,
    ),
    MetadataFilters(
        filters=[
            _leaf(FilterOperator.IS_EMPTY, None),
            MetadataFilters(
                filters=[_leaf(FilterOperator.EQ, 1), MetadataFilters(filters=COMBOS[3], condition=FilterCondition.OR)],
                condition=FilterCondition.OR,
            ),
        ],
        condition=FilterCondition.NOT,
    ),
    MetadataFilters(filters=[MetadataFilters(filters=[]), _leaf(FilterOperator.GTE, 1)], condition=FilterCondition.AND),
    MetadataFilters(filters=[MetadataFilters(filters=[], condition=FilterCondition.NOT)], condition=FilterCondition.AND),
    MetadataFilters(filters=[], condition=FilterCondition.NOT),
]


@pytest.mark.parametrize("vector", [True, False], ids=["search", "metadata_only"])
@pytest.mark.parametrize("filters", NESTED, ids=[f"nested{i}" for i in range(len(NESTED))])
def test_nested_filters(store, filters, vector) -> None:
    assert _matches(store, filters, vector) == _expected_ids(filters)


def test_empty_filters_restrict_nothing(store) -> None:
    everything = {label for label, _ in VALUES}
    for condition in FilterCondition:
        assert _matches(store, MetadataFilters(filters=[], condition=condition), True) == everything


def _no_type_error(fn: Any, node_id: str) -> bool:
    try:
        return fn(node_id)
    except TypeError:
        return False


def test_bool_values_are_not_numbers() -> None:
    """Deliberately stricter than the reference, where True == 1 and True > 0."""
    s = ValoriVectorStore(dim=2)
    s.add([
        TextNode(id_="t", text="t", metadata={KEY: True}, embedding=[1.0, 0.0]),
        TextNode(id_="f", text="f", metadata={KEY: False}, embedding=[1.0, 0.0]),
        TextNode(id_="i1", text="i1", metadata={KEY: 1}, embedding=[1.0, 0.0]),
        TextNode(id_="l", text="l", metadata={KEY: [True, 0]}, embedding=[1.0, 0.0]),
    ])
    cases = [
        (_leaf(FilterOperator.EQ, 1), {"i1"}, {"t", "i1"}),
        (_leaf(FilterOperator.EQ, 0), set(), {"f"}),
        (_leaf(FilterOperator.GT, 0), {"i1"}, {"t", "i1"}),
        (_leaf(FilterOperator.IN, [1, 2]), {"i1"}, {"t", "i1"}),
        (_leaf(FilterOperator.NE, 1), {"t", "f", "l"}, {"f", "l"}),
        (_leaf(FilterOperator.CONTAINS, 1), set(), {"l"}),
        (_leaf(FilterOperator.ANY, [1]), set(), {"l"}),
    ]
    for leaf, ours, reference in cases:
        filters = MetadataFilters(filters=[leaf])
        md = {"t": True, "f": False, "i1": 1, "l": [True, 0]}
        ref_fn = build_metadata_filter_fn(lambda i: {KEY: md[i]}, filters)
        assert {i for i in md if _no_type_error(ref_fn, i)} == reference, leaf  # the reference really differs
        assert _matches(s, filters, True) == ours, leaf


def test_k_results_when_k_match() -> None:
    """Filters apply before ranking: top-k among matching nodes, never a short list."""
    s = ValoriVectorStore(dim=2)
    s.add([
        TextNode(id_=f"n{i:03d}", text=str(i), metadata={"even": i % 2 == 0}, embedding=[1.0, i / 100])
        for i in range(200)
    ])
    f = MetadataFilters(filters=[MetadataFilter(key="even", value=1, operator=FilterOperator.NE)])
    # every node has "even" (a bool), so != 1 holds for all: strict, True is not 1
    q = VectorStoreQuery(query_embedding=[0.0, 1.0], similarity_top_k=7, filters=f)
    assert len(s.query(q).ids) == 7
    odd_only = MetadataFilters(filters=[MetadataFilter(key="even", operator=FilterOperator.IS_EMPTY, value=None)],
                               condition=FilterCondition.NOT)
    res = s.query(VectorStoreQuery(query_embedding=[0.0, 1.0], similarity_top_k=5, node_ids=["n001", "n002", "n003"],
                                   filters=odd_only))
    assert res.ids == ["n003", "n002", "n001"]


@pytest.mark.parametrize(
    ("op", "value"),
    [
        (FilterOperator.IN, "a"), (FilterOperator.NIN, 1), (FilterOperator.ANY, "a"), (FilterOperator.ALL, 2),
        (FilterOperator.GT, ["a"]), (FilterOperator.TEXT_MATCH, 1), (FilterOperator.TEXT_MATCH_INSENSITIVE, ["a"]),
        (FilterOperator.EQ, None), (FilterOperator.NE, None), (FilterOperator.CONTAINS, None),
    ],
    ids=lambda v: v.name if isinstance(v, FilterOperator) else repr(v),
)
def test_wrong_operand_shapes_raise(store, op, value) -> None:
    filters = MetadataFilters(filters=[MetadataFilter(key=KEY, operator=op, value=value)])
    with pytest.raises(UnsupportedFilterError) as info:
        store.query(VectorStoreQuery(query_embedding=[1.0, 0.0], filters=filters))
    assert isinstance(info.value, ValueError) and op.name in str(info.value)


def test_combinations_cover_every_condition_pair() -> None:
    assert len(list(itertools.product(COMBOS, FilterCondition))) == len(COMBOS) * 3
