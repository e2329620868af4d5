"""The conversion kernel (Q16.16 + cosine normalisation + row maxima, written in place,
optionally keeping the raw Q16.16 rows) against the spec, row by row: same integers, same
errors, whatever the execution mode."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from valori_store import spec
from valori_store.errors import VectorError, ZeroVectorError
from valori_store.kernels.convert import BAD_VALUE, OK, ZERO_VECTOR, convert_rows, convert_rows_serial
from valori_store.state import convert as conversion

float_rows = hnp.arrays(
    st.sampled_from([np.float64, np.float32]),
    st.tuples(st.integers(1, 8), st.integers(1, 12)),
    elements=st.floats(allow_nan=True, allow_infinity=True, width=32)
    | st.floats(min_value=-40000, max_value=40000, width=32)
    | st.sampled_from([0.0, -0.0, 0.5 / 65536, 1.5 / 65536, -2.5 / 65536, 32767.99998, -32768.0, 32768.0, 1e-9]),
)


def _expected_row(row: np.ndarray, metric: str) -> tuple[int, list[int] | None]:
    """(status, stored row) of one float row by the spec alone."""
    try:
        q = spec.quantize(row.reshape(1, -1), row.shape[0])[0].tolist()
    except VectorError:
        return BAD_VALUE, None
    if metric != "cosine":
        return OK, q
    try:
        return OK, spec.normalize_row(q)
    except ZeroVectorError:
        return ZERO_VECTOR, None


def ingest_rows(x: np.ndarray, cosine: bool, out: np.ndarray, rowmax: np.ndarray) -> np.ndarray:
    """The kernel as ingest calls it: no raw rows kept."""
    return convert_rows(x, cosine, np.zeros((0, x.shape[1]), np.int32), out, rowmax)


@pytest.mark.parametrize("kernel", [convert_rows, convert_rows_serial], ids=["parallel", "serial"])
@pytest.mark.parametrize("keep_raw", [True, False], ids=["raw", "no-raw"])
@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@given(x=float_rows)
@settings(max_examples=100, deadline=None)
def test_conversion_kernel_matches_spec_row_by_row(kernel, keep_raw: bool, metric: str, x: np.ndarray) -> None:
    out = np.full(x.shape, 12345, dtype=np.int32)  # garbage: every OK row must be overwritten
    raw = np.full(x.shape if keep_raw else (0, x.shape[1]), -99, dtype=np.int32)
    rowmax = np.full(len(x), -7, dtype=np.int64)
    status = kernel(x, metric == "cosine", raw, out, rowmax)
    for i, row in enumerate(x):
        want_status, want = _expected_row(row, metric)
        assert status[i] == want_status, (i, row)
        if want is not None:
            assert out[i].tolist() == want
            assert rowmax[i] == max(abs(v) for v in want)
        if keep_raw and want_status != BAD_VALUE:
            assert raw[i].tolist() == spec.quantize(row.reshape(1, -1), row.shape[0])[0].tolist()


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_stored_rows_equal_quantize_then_normalise_on_a_large_batch(metric: str) -> None:
    rng = np.random.Generator(np.random.PCG64(11))
    x = rng.normal(scale=50.0, size=(4000, 33))
    x[::9] *= 1e-6  # tiny rows: rescaling to 23 bits shifts left
    x[1::13] = np.round(x[1::13] * 65536) / 65536 + 0.5 / 65536  # exact halves: ties to even
    rows, rowmax = conversion.stored_rows(x, spec.get_metric(metric))
    raw = spec.quantize(x, 33)
    expected = spec.normalize(raw) if metric == "cosine" else raw
    assert np.array_equal(rows, expected)
    assert np.array_equal(rowmax, np.abs(expected.astype(np.int64)).max(axis=1))


def test_errors_name_the_first_bad_value_before_any_zero_vector() -> None:
    x = np.ones((500, 4))
    x[3] = 0.0  # a zero vector first ...
    x[400, 2] = np.inf  # ... but value errors win, as in the spec
    out, rowmax = np.zeros((500, 4), np.int32), np.zeros(500, np.int64)
    with pytest.raises(VectorError, match=r"\(400, 2\)"):
        conversion.stored_rows_into(x, spec.get_metric("cosine"), out, rowmax)
    x[400, 2] = 1.0
    with pytest.raises(ZeroVectorError, match="#3"):
        conversion.stored_rows_into(x, spec.get_metric("cosine"), out, rowmax)
    conversion.stored_rows_into(x, spec.get_metric("dot"), out, rowmax)  # a zero vector is fine for dot
    assert rowmax[3] == 0 and rowmax[0] == 65536


def test_one_thread_and_all_threads_write_the_same_rows() -> None:
    rng = np.random.Generator(np.random.PCG64(3))
    x = rng.normal(size=(3001, 48)).astype(np.float32)
    before = numba.get_num_threads()
    outs = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            out, rowmax = np.zeros((3001, 48), np.int32), np.zeros(3001, np.int64)
            status = ingest_rows(x, True, out, rowmax)
            outs.append((status.tobytes(), out.tobytes(), rowmax.tobytes()))
    finally:
        numba.set_num_threads(before)
    assert all(o == outs[0] for o in outs)


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
@given(x=float_rows)
@settings(max_examples=150, deadline=None)
def test_query_forms_equal_the_spec_or_raise_its_error(metric: str, x: np.ndarray) -> None:
    try:
        raw = spec.quantize(x, x.shape[1])
        stored = spec.normalize(raw) if metric == "cosine" else raw
    except VectorError as exc:
        with pytest.raises(type(exc)) as info:
            conversion.query_forms(x, x.shape[1], spec.get_metric(metric))
        if not isinstance(exc, ZeroVectorError):  # the spec's zero-vector message names no row
            assert str(info.value) == str(exc)
        return
    got_raw, got_stored = conversion.query_forms(x, x.shape[1], spec.get_metric(metric))
    assert got_raw.tolist() == raw.tolist() and got_stored.tolist() == stored.tolist()
    assert got_stored.flags.c_contiguous


def test_query_forms_are_the_same_for_every_input_shape_and_layout() -> None:
    rng = np.random.Generator(np.random.PCG64(21))
    base = rng.normal(size=(3, 10))
    want = conversion.query_forms(base, 10, spec.get_metric("cosine"))
    variants = [base.copy(), np.asfortranarray(base), base.tolist(),
                np.hstack([base, base])[:, :10]]  # Fortran order, a list, a strided view
    for v in variants:
        got = conversion.query_forms(v, 10, spec.get_metric("cosine"))
        assert [a.tolist() for a in got] == [a.tolist() for a in want]
    one = conversion.query_forms(base[1], 10, spec.get_metric("cosine"))  # a single 1-D vector
    assert one[0].tolist() == want[0][1:2].tolist() and one[1].tolist() == want[1][1:2].tolist()
