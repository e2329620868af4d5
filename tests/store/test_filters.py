"""Tests of the metadata filter language (valori_store.filters)."""

from __future__ import annotations

import copy
import json
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from valori_store.errors import FilterError, InputError
from valori_store.filters import FIELD_OPERATORS, MAX_DEPTH, canonical_filter, compile_filter, filter_mask


def matches(spec: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """Compile ``spec`` and evaluate it on one metadata dict."""
    pred = compile_filter(spec)
    assert pred is not None
    result = pred(metadata)
    assert type(result) is bool
    return result


# --------------------------------------------------------------------------- no filter


def test_none_and_empty_filter_mean_no_filter() -> None:
    assert compile_filter(None) is None
    assert compile_filter({}) is None
    assert canonical_filter(None) == b"null"
    assert canonical_filter({}) == b"null"
    mask = filter_mask(None, [{"a": 1}, {}, {"b": None}])
    assert mask.dtype == np.bool_
    assert mask.tolist() == [True, True, True]


def test_empty_subfilters() -> None:
    assert matches({"$and": [{}]}, {})
    assert matches({"$or": [{}, {"a": 1}]}, {})
    assert not matches({"$not": {}}, {"a": 1})


# --------------------------------------------------------------------------- equality


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        (1, 1, True),
        (1, 1.0, True),
        (1.0, 1, True),
        (0, -0.0, True),
        (1, True, False),
        (True, 1, False),
        (0, False, False),
        (False, 0, False),
        (True, True, True),
        (False, False, True),
        (True, False, False),
        (1, "1", False),
        ("1", 1, False),
        ("a", "a", True),
        ("a", "A", False),
        (None, None, True),
        (None, 0, False),
        (None, "", False),
        (None, False, False),
        (0, None, False),
        ("", None, False),
        (2**53 + 1, float(2**53), False),  # exact int/float comparison, no rounding
        (2**53, float(2**53), True),
        (0.1, 0.1, True),
        (0.1, 0.10000000000000002, False),
        ([1, 2], [1, 2], True),
        ([1, 2], [1.0, 2.0], True),
        ([1, 2], [2, 1], False),
        ([1], [True], False),
        ([True], [1], False),
        ([1], [1, 1], False),
        ([], [], True),
        ([], {}, False),
        ({}, {}, True),
        ({}, [], False),
        ({"x": 1}, {"x": 1.0}, True),
        ({"x": 1}, {"x": True}, False),
        ({"x": 1}, {"x": 1, "y": 2}, False),
        ({"x": 1, "y": 2}, {"x": 1}, False),
        ({"x": None}, {"y": None}, False),
        ({"x": [1, {"y": "z"}]}, {"x": [1, {"y": "z"}]}, True),
        ({"x": [1, {"y": "z"}]}, {"x": [1, {"y": "Z"}]}, False),
        ([1, 2], 1, False),
        ("ab", ["ab"], False),
    ],
)
def test_strict_equality(operand: Any, value: Any, expected: bool) -> None:
    assert matches({"k": {"$eq": operand}}, {"k": value}) is expected
    assert matches({"k": operand}, {"k": value}) is expected
    assert matches({"k": {"$ne": operand}}, {"k": value}) is (not expected)
    assert matches({"k": {"$in": ["zzz", operand]}}, {"k": value}) is expected
    assert matches({"k": {"$nin": ["zzz", operand]}}, {"k": value}) is (not expected)


def test_shorthand_dict_value_is_literal_equality() -> None:
    assert matches({"k": {"x": 1}}, {"k": {"x": 1}})
    assert not matches({"k": {"x": 1}}, {"k": {"x": 2}})
    assert matches({"k": {}}, {"k": {}})
    assert not matches({"k": {}}, {"k": []})
    # A literal dict that has "$" keys needs an explicit $eq.
    assert matches({"k": {"$eq": {"$gt": 1}}}, {"k": {"$gt": 1}})
    assert not matches({"k": {"$eq": {"$gt": 1}}}, {"k": 5})


def test_several_keys_are_anded() -> None:
    spec = {"a": 1, "b": "x"}
    assert matches(spec, {"a": 1, "b": "x", "c": 0})
    assert not matches(spec, {"a": 1, "b": "y"})
    assert not matches(spec, {"a": 2, "b": "x"})
    assert not matches(spec, {"a": 1})


def test_dotted_keys_are_literal_top_level_keys() -> None:
    assert matches({"a.b": 1}, {"a.b": 1})
    assert not matches({"a.b": 1}, {"a": {"b": 1}})


# --------------------------------------------------------------------------- ordering


@pytest.mark.parametrize(
    ("op", "operand", "value", "expected"),
    [
        ("$gt", 5, 6, True),
        ("$gt", 5, 5, False),
        ("$gt", 5, 5.5, True),
        ("$gt", 5.5, 5, False),
        ("$gte", 5, 5.0, True),
        ("$gte", 5, 4, False),
        ("$lt", 5, 4, True),
        ("$lt", 5, 5, False),
        ("$lt", 0, -0.5, True),
        ("$lte", 5, 5, True),
        ("$lte", 5, 6, False),
        ("$gt", float(2**53), 2**53 + 1, True),  # exact: the int is larger
        ("$lt", 2**53 + 1, float(2**53), True),
        ("$gt", 0, True, False),  # bool is not a number
        ("$gte", 0, False, False),
        ("$lt", 5, "4", False),  # kinds differ
        ("$lt", "5", 4, False),
        ("$gt", 0, None, False),
        ("$gt", 0, [1], False),
        ("$gt", 0, {"x": 1}, False),
        ("$gt", "b", "c", True),
        ("$gt", "b", "b", False),
        ("$gte", "b", "b", True),
        ("$lt", "b", "a", True),
        ("$lt", "b", "B", True),  # code point order: "B" < "b"
        ("$gt", "é", "z", False),  # "z" < "é" (U+00E9)
        ("$lte", "b", "ba", False),
        ("$lt", "b", "", True),
        ("$gt", "a", None, False),
        ("$gt", "a", ["b"], False),
    ],
)
def test_ordering(op: str, operand: Any, value: Any, expected: bool) -> None:
    assert matches({"k": {op: operand}}, {"k": value}) is expected


def test_range_by_two_operators() -> None:
    spec = {"year": {"$gte": 1950, "$lt": 1970}}
    got = [y for y in range(1940, 1980) if matches(spec, {"year": y})]
    assert got == list(range(1950, 1970))


# --------------------------------------------------------------------------- $in / $nin


def test_in_and_nin() -> None:
    assert matches({"k": {"$in": [1, "a", None]}}, {"k": "a"})
    assert matches({"k": {"$in": [1, "a", None]}}, {"k": None})
    assert matches({"k": {"$in": [1, "a", None]}}, {"k": 1.0})
    assert not matches({"k": {"$in": [1, "a", None]}}, {"k": True})
    assert not matches({"k": {"$in": [True]}}, {"k": 1})
    assert matches({"k": {"$in": [False]}}, {"k": False})
    assert not matches({"k": {"$in": [False]}}, {"k": 0})
    assert not matches({"k": {"$in": []}}, {"k": 1})
    assert matches({"k": {"$nin": []}}, {"k": 1})
    assert matches({"k": {"$in": [[1, 2], {"x": 1}]}}, {"k": [1.0, 2]})
    assert matches({"k": {"$in": [[1, 2], {"x": 1}]}}, {"k": {"x": 1}})
    assert not matches({"k": {"$in": [[1, 2], {"x": 1}]}}, {"k": [True, 2]})
    assert not matches({"k": {"$in": [[1, 2]]}}, {"k": 1})  # no unwrapping of lists
    assert matches({"k": {"$nin": ["a", "b"]}}, {"k": "c"})
    assert not matches({"k": {"$nin": ["a", "b"]}}, {"k": "b"})
    assert matches({"k": {"$nin": [1]}}, {"k": True})


# --------------------------------------------------------------------------- $exists


def test_exists() -> None:
    assert matches({"k": {"$exists": True}}, {"k": None})
    assert matches({"k": {"$exists": True}}, {"k": False})
    assert not matches({"k": {"$exists": True}}, {"j": 1})
    assert matches({"k": {"$exists": False}}, {"j": 1})
    assert not matches({"k": {"$exists": False}}, {"k": None})
    assert matches({"k": {"$exists": True, "$gt": 1}}, {"k": 2})
    assert not matches({"k": {"$exists": True, "$gt": 1}}, {"k": 0})
    # $exists: false beside another operator can never match (the other one needs the key).
    assert not matches({"k": {"$exists": False, "$ne": 1}}, {})
    assert not matches({"k": {"$exists": False, "$ne": 1}}, {"k": 2})


# --------------------------------------------------------------------------- $contains


@pytest.mark.parametrize(
    ("operand", "value", "expected"),
    [
        ("b", ["a", "b"], True),
        ("c", ["a", "b"], False),
        ("b", "abc", True),
        ("", "abc", True),
        ("", "", True),
        ("d", "abc", False),
        ("ab", ["abc"], False),  # list elements are compared, not searched
        (1, [1, 2], True),
        (1, [1.0], True),
        (1, [True], False),
        (True, [1], False),
        (True, [True], True),
        (None, [None], True),
        (None, [], False),
        ("1", [1], False),
        ([1], [[1], 2], True),
        ([1], [1], False),
        ({"x": 1}, [{"x": 1}], True),
        (1, "1", False),  # substring only for a str operand
        ("a", {"a": 1}, False),  # dicts are not searched
        ("a", None, False),
        (1, 1, False),
    ],
)
def test_contains(operand: Any, value: Any, expected: bool) -> None:
    assert matches({"k": {"$contains": operand}}, {"k": value}) is expected


# --------------------------------------------------------------------------- missing keys

ALL_OPERATOR_CASES: list[tuple[str, Any]] = [
    ("$eq", 1),
    ("$eq", None),
    ("$ne", 1),
    ("$ne", None),
    ("$gt", 0),
    ("$gte", "a"),
    ("$lt", 10),
    ("$lte", "z"),
    ("$in", [1, None]),
    ("$nin", [1]),
    ("$nin", []),
    ("$exists", True),
    ("$contains", "a"),
    ("$contains", None),
    ("$icontains", "a"),
    ("$any", [1]),
    ("$all", []),
    ("$empty", False),
]


@pytest.mark.parametrize(("op", "operand"), ALL_OPERATOR_CASES)
def test_missing_key_is_false_for_every_field_operator(op: str, operand: Any) -> None:
    assert not matches({"k": {op: operand}}, {})
    assert not matches({"k": {op: operand}}, {"other": 1, "K": 1})


def test_missing_key_exists_false_is_true() -> None:
    assert matches({"k": {"$exists": False}}, {})
    assert matches({"k": {"$exists": False}}, {"other": None})


def test_missing_key_is_empty() -> None:
    assert matches({"k": {"$empty": True}}, {})
    assert matches({"k": {"$empty": True, "$exists": False}}, {})
    assert not matches({"k": {"$empty": True, "$ne": 1}}, {})  # $ne is false on a missing key
    assert not matches({"k": {"$empty": True, "$exists": True}}, {})


def test_all_operators_covered_by_missing_key_cases() -> None:
    assert {op for op, _ in ALL_OPERATOR_CASES} == set(FIELD_OPERATORS)


MISSING_KEY_TABLE = [  # docs/filters.md, "Missing keys": records {"k": 1}, {"k": 2}, {"k": None}, {}
    ({"k": 1}, [True, False, False, False]),
    ({"k": {"$ne": 1}}, [False, True, True, False]),
    ({"k": {"$nin": [1]}}, [False, True, True, False]),
    ({"$not": {"k": 1}}, [False, True, True, True]),
    ({"k": {"$gt": 0}}, [True, True, False, False]),
    ({"k": {"$in": [1, None]}}, [True, False, True, False]),
    ({"k": {"$contains": 1}}, [False, False, False, False]),
    ({"k": {"$exists": True}}, [True, True, True, False]),
    ({"k": {"$exists": False}}, [False, False, False, True]),
    ({"k": None}, [False, False, True, False]),
    ({"k": {"$empty": True}}, [False, False, True, True]),
    ({"k": {"$empty": False}}, [True, True, False, False]),
]


@pytest.mark.parametrize(("spec", "expected"), MISSING_KEY_TABLE)
def test_documented_missing_key_table(spec: dict[str, Any], expected: list[bool]) -> None:
    records: list[dict[str, Any]] = [{"k": 1}, {"k": 2}, {"k": None}, {}]
    assert filter_mask(compile_filter(spec), records).tolist() == expected


def test_not_gives_the_complement_including_missing_keys() -> None:
    records = [{"k": 1}, {"k": 2}, {}, {"k": None}]
    ne = filter_mask(compile_filter({"k": {"$ne": 1}}), records).tolist()
    not_eq = filter_mask(compile_filter({"$not": {"k": 1}}), records).tolist()
    nin = filter_mask(compile_filter({"k": {"$nin": [1]}}), records).tolist()
    assert ne == [False, True, False, True]
    assert nin == ne
    assert not_eq == [False, True, True, True]


# --------------------------------------------------------------------------- logical operators


def test_and_or_not() -> None:
    assert matches({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 2})
    assert not matches({"$and": [{"a": 1}, {"b": 2}]}, {"a": 1, "b": 3})
    assert matches({"$or": [{"a": 1}, {"b": 2}]}, {"a": 0, "b": 2})
    assert not matches({"$or": [{"a": 1}, {"b": 2}]}, {"a": 0, "b": 0})
    assert matches({"$or": [{"a": 1}]}, {"a": 1})
    assert matches({"$not": {"a": 1}}, {"a": 2})
    assert not matches({"$not": {"a": 1}}, {"a": 1})


def test_logical_beside_field_keys_is_anded() -> None:
    spec = {"genre": "jazz", "$or": [{"year": {"$lt": 1960}}, {"live": True}], "$not": {"tags": {"$contains": "x"}}}
    assert matches(spec, {"genre": "jazz", "year": 1950, "tags": []})
    assert matches(spec, {"genre": "jazz", "year": 1990, "live": True})
    assert not matches(spec, {"genre": "rock", "year": 1950})
    assert not matches(spec, {"genre": "jazz", "year": 1990, "live": 1})
    assert not matches(spec, {"genre": "jazz", "year": 1950, "tags": ["x"]})


def test_nested_combinations() -> None:
    spec = {
        "$or": [
            {"$and": [{"a": {"$gte": 1}}, {"$not": {"b": {"$in": ["x", "y"]}}}]},
            {"$not": {"$or": [{"c": {"$exists": True}}, {"a": {"$lt": 0}}]}},
        ]
    }
    assert matches(spec, {"a": 1, "b": "z", "c": 0})  # first branch
    assert not matches(spec, {"a": 1, "b": "x", "c": 0})  # first fails, c exists
    assert matches(spec, {"a": 0.5, "b": "x"})  # second branch: no c and a >= 0
    assert not matches(spec, {"a": -1, "b": "x"})  # a < 0
    assert matches(spec, {})  # second branch: nothing exists
    assert not matches({"$not": {"$not": {"a": 1}}}, {"a": 2})
    assert matches({"$not": {"$not": {"a": 1}}}, {"a": 1})


def test_several_operators_in_one_dict_are_anded() -> None:
    spec = {"k": {"$gt": 1, "$lt": 5, "$ne": 3, "$nin": [4]}}
    got = [v for v in range(7) if matches(spec, {"k": v})]
    assert got == [2]


# --------------------------------------------------------------------------- malformed filters


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ([{"a": 1}], "invalid filter:"),
        ("a == 1", "invalid filter:"),
        ({1: 2}, "invalid filter:"),
        ({("a",): 2}, "invalid filter:"),
        ({"$and": []}, "$and"),
        ({"$or": []}, "$or"),
        ({"$and": {"a": 1}}, "$and"),
        ({"$or": "a"}, "$or"),
        ({"$not": [{"a": 1}]}, "$not"),
        ({"$not": None}, "$not"),
        ({"$and": [{"a": 1}, 5]}, "$and[1]"),
        ({"$and": [{}, {"year": {"$gtt": 1}}]}, "$and[1].year.$gtt"),
        ({"$nor": [{"a": 1}]}, "$nor"),
        ({"$eq": 1}, "$eq"),
        ({"a": {"$regex": "x"}}, "a.$regex"),
        ({"a": {"$and": [{"b": 1}]}}, "a.$and"),
        ({"a": {"$not": {"$eq": 1}}}, "a.$not"),
        ({"a": {"$in": 3}}, "a.$in"),
        ({"a": {"$in": "abc"}}, "a.$in"),
        ({"a": {"$in": (1, 2)}}, "a.$in"),
        ({"a": {"$nin": None}}, "a.$nin"),
        ({"a": {"$exists": 1}}, "a.$exists"),
        ({"a": {"$exists": "yes"}}, "a.$exists"),
        ({"a": {"$gt": [1]}}, "a.$gt"),
        ({"a": {"$gte": {"x": 1}}}, "a.$gte"),
        ({"a": {"$lt": None}}, "a.$lt"),
        ({"a": {"$lte": True}}, "a.$lte"),
        ({"a": {"$gt": 1, "x": 2}}, "invalid filter at a:"),
        ({"a": float("nan")}, "invalid filter at a:"),
        ({"a": {"$gt": float("inf")}}, "a.$gt"),
        ({"a": {"$eq": [1, -math.inf]}}, "a.$eq[1]"),
        ({"a": {"$in": [1, float("nan")]}}, "a.$in[1]"),
        ({"a": {"$eq": {"x": {"y": float("nan")}}}}, "a.$eq.x.y"),
        ({"a": {"$eq": {1: "x"}}}, "invalid filter at a.$eq:"),
        ({"a": (1, 2)}, "invalid filter at a:"),
        ({"a": {1, 2}}, "invalid filter at a:"),
        ({"a": b"bytes"}, "invalid filter at a:"),
        ({"a": object()}, "invalid filter at a:"),
        ({"a": np.int64(3)}, "invalid filter at a:"),
        ({"a": "\ud800"}, "invalid filter at a:"),
        ({"\ud800": 1}, "invalid filter:"),
        ({"$or": [{"a": 1}, {"b": {"$contains": float("nan")}}]}, "$or[1].b.$contains"),
        ({"a b": {"$exists": None}}, '["a b"].$exists'),
    ],
)
def test_malformed_filters_raise(spec: Any, where: str) -> None:
    for fn in (compile_filter, canonical_filter):
        with pytest.raises(FilterError) as info:
            fn(spec)
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, InputError)
        assert where in str(info.value), str(info.value)


def test_error_messages_say_what_to_do() -> None:
    with pytest.raises(FilterError, match=r"did you mean '\$gt'"):
        compile_filter({"year": {"$gtt": 1}})
    with pytest.raises(FilterError, match="top level"):
        compile_filter({"year": {"$or": [1, 2]}})
    with pytest.raises(FilterError, match="non-empty list"):
        compile_filter({"$and": []})
    with pytest.raises(FilterError, match=r"\$eq"):
        compile_filter({"a": {"$gt": 1, "x": 2}})
    with pytest.raises(FilterError, match="use a list"):
        compile_filter({"a": (1, 2)})


def test_too_deep_is_a_filter_error_not_recursion_error() -> None:
    spec: dict[str, Any] = {"a": 1}
    for _ in range(MAX_DEPTH + 5):
        spec = {"$not": spec}
    with pytest.raises(FilterError, match="levels deep"):
        compile_filter(spec)
    value: Any = 1
    for _ in range(MAX_DEPTH + 5):
        value = [value]
    with pytest.raises(FilterError, match="levels deep"):
        compile_filter({"a": value})
    ok: dict[str, Any] = {"a": 1}
    for _ in range(MAX_DEPTH // 2):
        ok = {"$not": ok}
    assert compile_filter(ok) is not None


# --------------------------------------------------------------------------- canonical form


@pytest.mark.parametrize(
    "variants",
    [
        [{"a": 1}, {"a": {"$eq": 1}}, {"a": 1.0}, {"a": {"$eq": 1.0}}],
        [{"a": 1, "b": "x"}, {"b": "x", "a": 1}, {"b": {"$eq": "x"}, "a": {"$eq": 1}}],
        [{"a": {"$gt": 1, "$lt": 5}}, {"a": {"$lt": 5, "$gt": 1}}, {"a": {"$lt": 5.0, "$gt": 1}}],
        [{"a": {"x": 1, "y": [True, None]}}, {"a": {"$eq": {"y": [True, None], "x": 1}}}],
        [{"$or": [{"a": 1}, {"b": 2}], "c": 3}, {"c": {"$eq": 3}, "$or": [{"a": {"$eq": 1}}, {"b": 2.0}]}],
        [{"$not": {"a": [1, 2]}}, {"$not": {"a": {"$eq": [1.0, 2]}}}],
    ],
)
def test_canonical_equal_for_equivalent_forms(variants: list[dict[str, Any]]) -> None:
    first = canonical_filter(variants[0])
    for v in variants[1:]:
        assert canonical_filter(v) == first


def test_canonical_exact_bytes() -> None:
    assert canonical_filter({"b": 1, "a": "é"}) == '{"a":{"$eq":"é"},"b":{"$eq":1}}'.encode()
    assert canonical_filter({"a": {"$in": [2.5, None, True]}}) == b'{"a":{"$in":[2.5,null,true]}}'
    assert canonical_filter({"$and": [{"a": -0.0}]}) == b'{"$and":[{"a":{"$eq":0}}]}'
    assert canonical_filter({"a": 1e300}) == b'{"a":{"$eq":' + str(int(1e300)).encode() + b"}}"


def test_canonical_distinguishes_different_filters() -> None:
    distinct = [
        {"a": 1},
        {"a": True},
        {"a": "1"},
        {"a": None},
        {"a": [1]},
        {"a": {"$ne": 1}},
        {"b": 1},
        {"a": {"$in": [1, 2]}},
        {"a": {"$in": [2, 1]}},  # list order is kept as written
        {"$and": [{"a": 1}, {"b": 2}]},
        {"$and": [{"b": 2}, {"a": 1}]},
        {"a": 1, "b": 2},
        {"a": 1.5},
    ]
    encoded = [canonical_filter(s) for s in distinct]
    assert len(set(encoded)) == len(distinct)


def test_canonical_roundtrip_and_no_mutation() -> None:
    spec = {"a": {"$in": [1, [2]]}, "$or": [{"b": {"x": 1}}]}
    before = copy.deepcopy(spec)
    pred = compile_filter(spec)
    canon = canonical_filter(spec)
    assert spec == before
    assert canonical_filter(json.loads(canon)) == canon
    # The predicate holds its own copy of the operands.
    spec["a"]["$in"][1].append(3)  # type: ignore[index]
    assert pred is not None and pred({"a": [2], "b": {"x": 1}})


# --------------------------------------------------------------------------- filter_mask / robustness


def test_filter_mask() -> None:
    records = [{"a": i, "b": "x" if i % 3 == 0 else "y"} for i in range(10)]
    mask = filter_mask(compile_filter({"a": {"$gte": 4}, "b": "x"}), records)
    assert mask.dtype == np.bool_ and mask.shape == (10,)
    assert np.flatnonzero(mask).tolist() == [6, 9]
    empty = filter_mask(compile_filter({"a": 1}), [])
    assert empty.dtype == np.bool_ and empty.shape == (0,)
    assert filter_mask(None, []).shape == (0,)


WEIRD_VALUES: list[Any] = [
    float("nan"), float("inf"), -float("inf"), (1, 2), {1, 2}, b"x", object(), np.float64(2.0),
    np.int64(2), np.bool_(True), np.array([1, 2]), 10**400, [float("nan")], {"x": float("nan")},
    {1: "x"}, "\ud800", [[[[[1]]]]], {"k": {"k": {"k": None}}},
]

PROBE_FILTERS: list[dict[str, Any]] = [
    {"k": {op: operand}} for op, operand in ALL_OPERATOR_CASES
] + [
    {"k": {"$exists": False}},
    {"k": [1, 2]},
    {"k": {"x": 1}},
    {"k": {"$contains": [1]}},
    {"k": {"$in": [[1], {"x": None}, 2.5, "a", True]}},
    {"k": {"$gt": 1.5}},
    {"k": {"$lt": "m"}},
]


@pytest.mark.parametrize("value", WEIRD_VALUES, ids=lambda v: type(v).__name__)
def test_evaluation_never_raises(value: Any) -> None:
    for spec in PROBE_FILTERS:
        pred = compile_filter(spec)
        assert pred is not None
        assert isinstance(pred({"k": value}), (bool, np.bool_))


def test_numpy_float_metadata_still_compares_by_value() -> None:
    assert matches({"k": {"$gt": 1}}, {"k": np.float64(2.0)})
    assert matches({"k": 2}, {"k": np.float64(2.0)})
    assert not matches({"k": True}, {"k": np.bool_(True)})


# --------------------------------------------------------------------------- property tests
# An independent reference: recursion over the raw spec, with exact tags (Fraction for
# numbers) instead of the module's normalisation and specialised closures.


def ref_tag(v: Any) -> Any:
    if v is None:
        return ("null",)
    if isinstance(v, bool):
        return ("bool", v)
    if isinstance(v, (int, float)):
        return ("num", Fraction(v))
    if isinstance(v, str):
        return ("str", v)
    if isinstance(v, list):
        return ("list", tuple(ref_tag(x) for x in v))
    return ("dict", tuple(sorted((k, ref_tag(x)) for k, x in v.items())))


def ref_kind(v: Any) -> str:
    return ref_tag(v)[0]


def ref_op(op: str, arg: Any, present: bool, v: Any) -> bool:
    if op == "$exists":
        return present == arg
    if op == "$empty":
        empty = not present or ref_tag(v) in [("null",), ("str", ""), ("list", ()), ("dict", ())]
        return empty == arg
    if not present:
        return False
    if op == "$icontains":
        return ref_kind(v) == "str" and arg.lower() in v.lower()
    if op in ("$any", "$all"):
        if ref_kind(v) != "list":
            return False
        held = [ref_tag(x) for x in v]
        hits = [ref_tag(a) in held for a in arg]
        return any(hits) if op == "$any" else all(hits)
    if op == "$eq":
        return ref_tag(v) == ref_tag(arg)
    if op == "$ne":
        return ref_tag(v) != ref_tag(arg)
    if op == "$in":
        return ref_tag(v) in [ref_tag(a) for a in arg]
    if op == "$nin":
        return ref_tag(v) not in [ref_tag(a) for a in arg]
    if op == "$contains":
        if ref_kind(v) == "list":
            return any(ref_tag(x) == ref_tag(arg) for x in v)
        return ref_kind(v) == "str" and ref_kind(arg) == "str" and arg in v
    if ref_kind(v) != ref_kind(arg):
        return False
    a, b = ref_tag(v)[1], ref_tag(arg)[1]
    return {"$gt": a > b, "$gte": a >= b, "$lt": a < b, "$lte": a <= b}[op]


def ref_eval(spec: dict[str, Any], md: dict[str, Any]) -> bool:
    for key, cond in spec.items():
        if key == "$and":
            ok = all(ref_eval(s, md) for s in cond)
        elif key == "$or":
            ok = any(ref_eval(s, md) for s in cond)
        elif key == "$not":
            ok = not ref_eval(cond, md)
        else:
            is_ops = isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond)
            ops = cond if is_ops else {"$eq": cond}
            ok = all(ref_op(op, arg, key in md, md.get(key)) for op, arg in ops.items())
        if not ok:
            return False
    return True


KEYS = ["a", "b"]
# A small shared pool, so that filter operands and record values collide often and the
# strictness corners (True vs 1, 1 vs 1.0, "1" vs 1, big int vs float) are hit constantly.
SCALAR_POOL = [None, True, False, 0, 1, 1.0, -0.0, 2, 2.5, 2**53 + 1, float(2**53),
               "", "1", "a", "ab", "b", "B", "é"]
scalars = st.one_of(st.sampled_from(SCALAR_POOL), st.sampled_from(SCALAR_POOL),
                    st.integers(-3, 3), st.text(alphabet="abé", max_size=2))
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(["x", "y"]), inner, max_size=2),
    ),
    max_leaves=4,
)
metadatas = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=2)
orderable = st.one_of(
    st.sampled_from([v for v in SCALAR_POOL if isinstance(v, (int, float, str)) and not isinstance(v, bool)]),
    st.integers(-3, 3),
    st.floats(-3, 3, allow_nan=False),
)


def operator_entry() -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        st.tuples(st.sampled_from(["$eq", "$ne", "$contains"]), st.one_of(scalars, json_values)),
        st.tuples(st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), orderable),
        st.tuples(st.sampled_from(["$in", "$nin"]), st.lists(st.one_of(scalars, json_values), max_size=4)),
        st.tuples(st.sampled_from(["$exists", "$empty"]), st.booleans()),
        st.tuples(st.just("$icontains"), st.text(alphabet="aAbBéÉß", max_size=2)),
        st.tuples(st.sampled_from(["$any", "$all"]), st.lists(st.one_of(scalars, json_values), max_size=3)),
    )


conditions = st.one_of(
    json_values,
    st.lists(operator_entry(), min_size=1, max_size=3).map(dict),
)
field_filters = st.dictionaries(st.sampled_from(KEYS), conditions, max_size=3)


def _extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    logical = st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$and": xs}),
        st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"$or": xs}),
        inner.map(lambda x: {"$not": x}),
    )
    return st.tuples(logical, field_filters).map(lambda t: {**t[1], **t[0]})


filters = st.recursive(field_filters, _extend, max_leaves=8)


POOL_OPERANDS: list[Any] = SCALAR_POOL + [[v] for v in SCALAR_POOL] + [
    [], {}, [1, "a"], [True, None], {"x": 1}, {"x": True}, {"x": 1, "y": "a"}, {"y": [1.0]},
]
POOL_PROBES: list[dict[str, Any]] = [{"a": v} for v in POOL_OPERANDS] + [
    {"a": [v, "zz"]} for v in SCALAR_POOL] + [{"a": {"x": 1.0, "y": "a"}}, {"a": [[1]]}, {"a": "xaby"}, {"a": "XABY"}, {"a": "É"}, {}, {"b": 1}]


@pytest.mark.parametrize("op", FIELD_OPERATORS)
def test_every_operator_on_the_pool_matches_reference(op: str) -> None:
    """Exhaustive differential check: every pool operand against every pool record."""
    if op in ("$exists", "$empty"):
        operands: list[Any] = [True, False]
    elif op == "$icontains":
        operands = ["", "a", "A", "ab", "AB", "É", "é", "X"]
    elif op in ("$any", "$all"):
        operands = [[v] for v in POOL_OPERANDS] + [[], [1, "a"], ["zz", 1.0], [[1], None]]
    elif op in ("$in", "$nin"):
        operands = [[v] for v in POOL_OPERANDS] + [[], SCALAR_POOL, [[1], {"x": 1}, "a"]]
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        operands = [v for v in SCALAR_POOL if isinstance(v, (int, float, str)) and not isinstance(v, bool)]
    else:
        operands = POOL_OPERANDS
    checked = 0
    for operand in operands:
        spec = {"a": {op: operand}}
        got = filter_mask(compile_filter(spec), POOL_PROBES).tolist()
        expected = [ref_eval(spec, md) for md in POOL_PROBES]
        assert got == expected, spec
        checked += sum(expected)
    assert checked > 0  # the pool does produce matches


@settings(max_examples=300, deadline=None)
@given(entry=operator_entry(), values=st.lists(json_values, min_size=1, max_size=20))
def test_single_operator_matches_reference(entry: tuple[str, Any], values: list[Any]) -> None:
    op, operand = entry
    spec = {"a": {op: operand}}
    # Every pool value, bare and wrapped, is probed besides the drawn ones.
    probes = SCALAR_POOL + [[v] for v in SCALAR_POOL] + [{"x": v} for v in SCALAR_POOL] + values
    records = [{"a": v} for v in probes] + [{}, {"b": operand}]
    expected = [ref_eval(spec, md) for md in records]
    assert filter_mask(compile_filter(spec), records).tolist() == expected
    shorthand = {"a": operand}
    assert filter_mask(compile_filter(shorthand), records).tolist() == [ref_eval(shorthand, md) for md in records]


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=filters, records=st.lists(metadatas, min_size=1, max_size=12))
def test_matches_reference_evaluator(spec: dict[str, Any], records: list[dict[str, Any]]) -> None:
    pred = compile_filter(spec)
    expected = [ref_eval(spec, md) for md in records]
    assert filter_mask(pred, records).tolist() == expected
    # The canonical form means the same filter.
    canon = compile_filter(json.loads(canonical_filter(spec)))
    assert filter_mask(canon, records).tolist() == expected


def rewrite(spec: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    """An equivalent spelling: shuffled keys, shorthand toggled, integral floats toggled."""

    def value(v: Any) -> Any:
        if isinstance(v, bool) or v is None or isinstance(v, str):
            return v
        if isinstance(v, (int, float)):
            if float(v).is_integer() and abs(v) < 2**53 and data.draw(st.booleans()):
                return float(v) if isinstance(v, int) else int(v)
            return v
        if isinstance(v, list):
            return [value(x) for x in v]
        return shuffled({k: value(x) for k, x in v.items()})

    def shuffled(d: dict[str, Any]) -> dict[str, Any]:
        keys = data.draw(st.permutations(list(d)))
        return {k: d[k] for k in keys}

    out: dict[str, Any] = {}
    for key, cond in spec.items():
        if key in ("$and", "$or"):
            out[key] = [rewrite(s, data) for s in cond]
        elif key == "$not":
            out[key] = rewrite(cond, data)
        elif isinstance(cond, dict) and cond and all(k.startswith("$") for k in cond):
            ops = {op: (value(arg) if op != "$exists" else arg) for op, arg in cond.items()}
            if list(ops) == ["$eq"] and not isinstance(ops["$eq"], dict) and data.draw(st.booleans()):
                out[key] = ops["$eq"]  # back to shorthand
            else:
                out[key] = shuffled(ops)
        elif data.draw(st.booleans()):
            out[key] = {"$eq": value(cond)}
        else:
            out[key] = value(cond)
    return shuffled(out)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=filters, data=st.data())
def test_canonical_is_invariant_under_rewriting(spec: dict[str, Any], data: st.DataObject) -> None:
    other = rewrite(spec, data)
    assert canonical_filter(other) == canonical_filter(spec)
    assert canonical_filter(spec).decode("utf-8")  # valid UTF-8
