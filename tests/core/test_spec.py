"""The numeric spec: Q16.16 conversion, rounding, rejection, reported scores."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from valori_store import DimensionError, RangeError, VectorError, ZeroVectorError, spec


def q_reference(v: float) -> int:
    """Round v * 2**16 half to even using exact rationals (independent of numpy)."""
    x = Fraction(v) * 65536
    floor = math.floor(x)
    frac = x - floor
    if frac > Fraction(1, 2) or (frac == Fraction(1, 2) and floor % 2 == 1):
        return floor + 1
    return floor


@given(st.lists(st.floats(min_value=-32768, max_value=32767.99998, allow_nan=False), min_size=1, max_size=16))
@settings(max_examples=300, deadline=None)
def test_quantize_matches_exact_rational_rounding(values: list[float]) -> None:
    got = spec.quantize(np.array(values), len(values))[0].tolist()
    assert got == [q_reference(v) for v in values]


def test_half_way_values_round_to_even() -> None:
    half = 2.0**-17  # exactly half a Q16.16 step
    got = spec.quantize([half, 3 * half, -half, -3 * half, 5 * half], 5)[0].tolist()
    assert got == [0, 2, 0, -2, 2]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32, np.int64])
def test_every_input_dtype_converts_exactly(dtype: type) -> None:
    values = np.array([1, -2, 3, 0], dtype=dtype)
    if np.issubdtype(dtype, np.floating):
        values = values / dtype(8)
    expected = [q_reference(float(v)) for v in values]
    assert spec.quantize(values, 4)[0].tolist() == expected


def test_python_lists_and_ints_accepted() -> None:
    assert spec.quantize([[1, 0.5]], 2).tolist() == [[65536, 32768]]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_rejected_with_index(bad: float) -> None:
    with pytest.raises(VectorError, match=r"index \(0, 1\)"):
        spec.quantize([[0.0, bad, 1.0]], 3)


@pytest.mark.parametrize("bad", [32768.0, -32768.00001, 1e300, 40000])
def test_out_of_range_rejected_never_saturated(bad: float) -> None:
    with pytest.raises(RangeError, match="range"):
        spec.quantize([[0.0, bad]], 2)


def test_range_edges() -> None:
    top = 32768 - 2.0**-16
    assert spec.quantize([[top, -32768.0]], 2).tolist() == [[2**31 - 1, -(2**31)]]


def test_wrong_dimension_and_types() -> None:
    with pytest.raises(DimensionError):
        spec.quantize([[1.0, 2.0]], 3)
    with pytest.raises(VectorError):
        spec.quantize([["a", "b"]], 2)
    with pytest.raises(VectorError):
        spec.quantize([[1.0, 2.0], [1.0]], 2)
    with pytest.raises(VectorError):
        spec.quantize(np.array([[True, False]]), 2)


def test_normalize_row_examples() -> None:
    # (3, 4) -> (0.6, 0.8) exactly representable after rounding
    assert spec.normalize_row([3 * 65536, 4 * 65536]) == [round(0.6 * 65536), round(0.8 * 65536)]
    assert spec.normalize_row([5, 0, 0]) == [65536, 0, 0]
    assert spec.normalize_row([-7]) == [-65536]
    with pytest.raises(ZeroVectorError):
        spec.normalize_row([0, 0])


@given(st.lists(st.integers(min_value=-(2**31), max_value=2**31 - 1), min_size=1, max_size=40))
@settings(max_examples=300, deadline=None)
def test_normalized_rows_are_unit_within_rounding(q: list[int]) -> None:
    if not any(q):
        return
    n = spec.normalize_row(q)
    assert max(abs(v) for v in n) <= 65536
    norm2 = sum(v * v for v in n)
    # each component is off by at most 1/2 plus the rescaling error: a loose exact bound
    assert abs(math.sqrt(norm2) - 65536) <= len(q) + 2
    # direction is preserved: signs agree wherever the component is large enough to survive
    for a, b in zip(q, n):
        assert a == 0 or b == 0 or (a > 0) == (b > 0)


def test_reported_scores_are_one_rounding_of_exact_integers() -> None:
    assert spec.reported_score("cosine", 1 << 32) == 1.0
    assert spec.reported_score("dot", -(3 << 31)) == -1.5
    raw = (1 << 60) + 1  # not representable: one correct rounding of the exact quotient
    assert spec.reported_score("dot", raw) == float(Fraction(raw, 1 << 32))
    assert spec.reported_score("l2", 4 << 32) == -2.0
    assert spec.reported_score("l2", 0) == 0.0
    assert math.copysign(1.0, spec.reported_score("l2", 0)) == 1.0  # +0.0, not -0.0


def test_reference_top_k_orders_by_score_then_id_bytes() -> None:
    m = np.array([[1, 0], [1, 0], [0, 1], [1, 0]], dtype=np.int32)
    ids = ["b", "a", "z", "\u00e9"]  # 'é' sorts after ascii by UTF-8 bytes
    out = spec.top_k("dot", [1, 0], m, ids, 3)
    assert [i for i, _ in out] == ["a", "b", "\u00e9"]


@given(
    hnp.arrays(
        st.sampled_from([np.float16, np.float32, np.float64]),
        st.tuples(st.integers(1, 6), st.integers(1, 9)),
        elements=st.floats(allow_nan=True, allow_infinity=True, width=16)
        | st.floats(min_value=-40000, max_value=40000, width=32)
        | st.sampled_from([0.5 / 65536, 1.5 / 65536, -2.5 / 65536, 32767.99998, -32768.0, 32768.0]),
    )
)
@settings(max_examples=400, deadline=None)
def test_fused_quantize_kernel_matches_spec(x: np.ndarray) -> None:
    """The store's fused kernel gives the spec's integers, or the spec's very error."""
    from valori_store.state.convert import query_forms

    def _quantize_fast(x: np.ndarray, dim: int) -> np.ndarray:
        return query_forms(x, dim, spec.get_metric("dot"))[0]

    try:
        expected = spec.quantize(x, x.shape[1])
    except VectorError as exc:
        with pytest.raises(type(exc)) as info:
            _quantize_fast(x, x.shape[1])
        assert str(info.value) == str(exc)
        return
    assert _quantize_fast(x, x.shape[1]).tolist() == expected.tolist()
