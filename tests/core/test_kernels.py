"""numba kernels vs the NumPy/Python-int spec: bit-identical, whatever the execution mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from valori_store import kernels, spec
from valori_store.kernels import (
    candidate_thresholds,
    dot_keys,
    dot_keys_batch,
    isqrt,
    l2_keys,
    l2_keys_batch,
    normalize_rows,
    select_candidates,
)

NO_MASK = np.zeros(0, dtype=np.uint8)
PROBE = Path(__file__).with_name("kernel_probe.py")
SRC = Path(__file__).resolve().parents[2] / "src"

int32_rows = hnp.arrays(
    np.int32,
    st.tuples(st.integers(1, 12), st.integers(1, 24)),
    elements=st.one_of(
        st.integers(-(2**31), 2**31 - 1), st.sampled_from([0, 1, -1, 2**31 - 1, -(2**31), 2**23, -(2**23) - 1])
    ),
)


@given(int32_rows)
@settings(max_examples=300, deadline=None)
def test_normalize_kernel_matches_spec(rows: np.ndarray) -> None:
    out, zero = normalize_rows(rows)
    for i, row in enumerate(rows.tolist()):
        if not any(row):
            assert zero[i] == 1
        else:
            assert zero[i] == 0
            assert out[i].tolist() == spec.normalize_row(row)


@given(st.integers(0, 2**62 - 1))
@settings(max_examples=500, deadline=None)
def test_isqrt_is_exact(n: int) -> None:
    import math

    assert isqrt(n) == math.isqrt(n)


def test_isqrt_edges() -> None:
    import math

    for n in [0, 1, 2, 3, 4, 15, 16, 17, 2**62 - 1, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1, 2**61]:
        assert isqrt(n) == math.isqrt(n)


def _python_keys(metric: str, rows: np.ndarray, q: np.ndarray) -> list[int]:
    return [spec.rank_key(metric, spec.raw_score(metric, q.tolist(), r)) for r in rows.tolist()]


@given(st.data())
@settings(max_examples=200, deadline=None)
def test_score_kernels_match_python_ints_within_the_proven_bound(data: st.DataObject) -> None:
    dim = data.draw(st.integers(1, 40))
    n = data.draw(st.integers(1, 30))
    # the largest magnitude the int64 proof admits for this dim (both metrics)
    limit = int(((2**63 - 1) // dim) ** 0.5) // 2
    elems = st.integers(-limit, limit)
    rows = data.draw(hnp.arrays(np.int64, (n, dim), elements=elems)).astype(np.int32) if limit < 2**31 else None
    if rows is None:
        rows = data.draw(hnp.arrays(np.int32, (n, dim)))
    q = data.draw(hnp.arrays(np.int32, (dim,), elements=st.integers(max(-limit, -(2**31)), min(limit, 2**31 - 1))))
    qmax = int(np.abs(q.astype(np.int64)).max())
    rmax = int(np.abs(rows.astype(np.int64)).max())
    for metric, kernel, batch in (("dot", dot_keys, dot_keys_batch), ("l2", l2_keys, l2_keys_batch)):

        if not spec.get_metric(metric).fits_int64(dim, qmax, rmax):
            continue
        expected = _python_keys(metric, rows, q)
        assert kernel(rows, n, q).tolist() == expected
        tile = np.stack([q, q[::-1], q, np.zeros_like(q)])  # a full query tile of four
        got = batch(rows, n, tile)
        assert got[0].tolist() == expected and got[2].tolist() == expected
        assert got[1].tolist() == _python_keys(metric, rows, q[::-1].copy())


def test_extreme_values_at_the_bound() -> None:
    # dim 2 at full int32 magnitude: dot partial sums reach 2**63 - 2**33, just inside int64
    rows = np.array([[-(2**31), -(2**31)], [2**31 - 1, -(2**31)]], dtype=np.int32)
    q = np.array([-(2**31), -(2**31) + 1], dtype=np.int32)

    assert not spec.get_metric("dot").fits_int64(2, 2**31, 2**31)  # the proof is conservative here
    assert dot_keys(rows, 2, q).tolist() == _python_keys("dot", rows, q)


@pytest.mark.parametrize("n", [1, 2, 3, 2047, 2048, 2049, 4101])
def test_batched_kernels_equal_single_query_kernels(n: int) -> None:
    """Register blocking (2 rows x 4 queries, odd leftovers, chunk edges) changes no bit."""
    rng = np.random.Generator(np.random.PCG64(n))
    rows = rng.integers(-(2**20), 2**20, size=(n, 9)).astype(np.int32)
    qs = rng.integers(-(2**20), 2**20, size=(8, 9)).astype(np.int32)
    dots = dot_keys_batch(rows, n, qs)
    l2s = l2_keys_batch(rows, n, qs)
    for i, q in enumerate(qs):
        assert dots[i].tolist() == dot_keys(rows, n, q).tolist()
        assert l2s[i].tolist() == l2_keys(rows, n, q).tolist()


def _reference_candidates(keys: np.ndarray, mask: np.ndarray | None, k: int) -> list[int]:
    allowed = [i for i in range(len(keys)) if mask is None or mask[i]]
    if len(allowed) <= k:
        return allowed
    kth = sorted((int(keys[i]) for i in allowed), reverse=True)[k - 1]
    return [i for i in allowed if keys[i] >= kth]


@given(
    hnp.arrays(np.int64, st.integers(0, 60), elements=st.integers(-3, 3)),
    st.integers(1, 70),
    st.booleans(),
    st.randoms(),
)
@settings(max_examples=300, deadline=None)
def test_select_candidates_keeps_every_tie_at_the_kth_place(keys, k, use_mask, rnd) -> None:
    mask = np.array([rnd.random() < 0.6 for _ in keys], dtype=np.uint8) if use_mask else None
    got = select_candidates(keys, NO_MASK if mask is None else mask, k).tolist()
    assert got == _reference_candidates(keys, mask, k)
    if len(keys):
        th = candidate_thresholds(keys[None, :].copy(), NO_MASK if mask is None else mask, k)[0]
        assert [i for i in range(len(keys)) if (mask is None or mask[i]) and keys[i] >= th] == got


def test_no_kernel_uses_fastmath() -> None:
    from valori_store.kernels import options

    assert options.SERIAL["fastmath"] is False and options.PARALLEL["fastmath"] is False
    dispatchers = [
        obj
        for mod in (kernels.normalize, kernels.scores, kernels.select)
        for obj in vars(mod).values()
        if isinstance(obj, numba.core.registry.CPUDispatcher)
    ]
    assert len(dispatchers) >= 10
    for d in dispatchers:
        assert not d.targetoptions.get("fastmath"), d.py_func.__name__
        assert d.targetoptions.get("nogil"), f"{d.py_func.__name__} must release the GIL"
    # and nothing under src/ turns it on another way
    for path in SRC.rglob("*.py"):
        assert "fastmath=True" not in path.read_text().replace(" ", ""), path


def test_one_thread_and_all_threads_agree() -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    rows = rng.integers(-(2**16), 2**16, size=(5000, 64)).astype(np.int32)
    qs = rng.integers(-(2**16), 2**16, size=(12, 64)).astype(np.int32)
    before = numba.get_num_threads()
    outs = []
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            outs.append(
                (
                    normalize_rows(rows)[0].tobytes(),
                    dot_keys_batch(rows, len(rows), qs).tobytes(),
                    np.stack([l2_keys(rows, len(rows), q) for q in qs]).tobytes(),
                )
            )
    finally:
        numba.set_num_threads(before)
    assert all(o == outs[0] for o in outs)


def _run_probe(extra_env: dict[str, str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), **extra_env}
    out = subprocess.run(
        [sys.executable, str(PROBE)], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout.splitlines()


@pytest.mark.slow
def test_jit_off_one_thread_and_default_give_identical_outputs() -> None:
    """With NUMBA_DISABLE_JIT=1 the kernels run as Python on numpy scalars: any overflow
    or JIT-specific behaviour would show up as a difference."""
    default = _run_probe({})
    one_thread = _run_probe({"NUMBA_NUM_THREADS": "1"})
    no_jit = _run_probe({"NUMBA_DISABLE_JIT": "1"})
    assert len(default) == 18  # one line per probe output
    assert default == one_thread
    assert default == no_jit


def test_probe_outputs_match_the_python_int_spec() -> None:
    """The probe's inputs scored by the spec (Python ints) equal the kernels' outputs."""
    sys.path.insert(0, str(PROBE.parent))
    try:
        import kernel_probe
    finally:
        sys.path.pop(0)
    rows, queries = kernel_probe.inputs()
    for metric, kernel in (("dot", dot_keys), ("l2", l2_keys)):
        for q in queries:
            assert kernel(rows, len(rows), q).tolist() == _python_keys(metric, rows, q)
    assert normalize_rows(rows)[0].tolist() == spec.normalize(rows).tolist()


def test_serial_twins_equal_parallel_kernels() -> None:
    from valori_store.kernels import BAD_VALUE, convert_rows, convert_rows_serial, normalize_rows_serial

    rng = np.random.Generator(np.random.PCG64(77))
    rows = rng.integers(-(2**31), 2**31 - 1, size=(3000, 17)).astype(np.int32)
    rows[::7] >>= 9
    assert np.array_equal(normalize_rows_serial(rows)[0], normalize_rows(rows)[0])
    x = rng.normal(scale=300.0, size=(3000, 17))
    x[5, 3] = np.nan
    x[9, 0] = 1e9
    outs = []
    for kernel in (convert_rows_serial, convert_rows):
        raw, stored, rowmax = np.zeros((3000, 17), np.int32), np.zeros((3000, 17), np.int32), np.zeros(3000, np.int64)
        status = kernel(x, True, raw, stored, rowmax)
        assert status[5] == BAD_VALUE and status[9] == BAD_VALUE
        ok = status == 0
        outs.append((status.tolist(), raw[ok].tolist(), stored[ok].tolist(), rowmax[ok].tolist()))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("chunk", [1, 3, 256, 2048, 10**6])
def test_scan_chunking_changes_no_key(chunk: int) -> None:
    rng = np.random.Generator(np.random.PCG64(chunk))
    rows = rng.integers(-(2**20), 2**20, size=(1001, 13)).astype(np.int32)
    q = rng.integers(-(2**20), 2**20, size=13).astype(np.int32)
    assert dot_keys(rows, 1001, q, chunk).tolist() == _python_keys("dot", rows, q)
    assert l2_keys(rows, 1001, q, chunk).tolist() == _python_keys("l2", rows, q)


def test_serial_twins_have_their_own_cache_entries(tmp_path) -> None:
    """numba's cache key ignores compile flags: a twin sharing its parallel sibling's name
    would load the sibling's machine code (a parallel kernel silently running serially)."""
    code = (
        "import numpy as np\n"
        "from valori_store.kernels import normalize_rows, normalize_rows_serial, convert_rows, convert_rows_serial\n"
        "from valori_store.kernels.scores import dot_keys, dot_keys_serial, l2_keys, l2_keys_serial\n"
        "x = np.ones((3, 4)); q = np.ones((3, 4), np.int32); o = np.zeros((3, 4), np.int32); m = np.zeros(3, np.int64)\n"
        "for k in (normalize_rows_serial, normalize_rows): k(q)\n"
        "for k in (convert_rows_serial, convert_rows): k(x, True, o, o.copy(), m)\n"
        "for k in (dot_keys_serial, dot_keys, l2_keys_serial, l2_keys): k(q, 3, q[0], 2)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "NUMBA_CACHE_DIR": str(tmp_path)}
    env.pop("NUMBA_DISABLE_JIT", None)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    names = {p.name.split("-")[0] for p in tmp_path.rglob("*.nbi")}
    for module, kernel in (("normalize", "normalize_rows"), ("convert", "convert_rows"), ("scores", "dot_keys"),
                           ("scores", "l2_keys")):
        assert f"{module}.{kernel}" in names and f"{module}.{kernel}_serial" in names, sorted(names)
