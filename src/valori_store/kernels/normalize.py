"""Integer cosine normalisation kernel; matches :func:`valori_store.spec.normalize_row`."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, SERIAL, serial_twin
from valori_store.spec import NORM_BITS, SCALE


@njit(**SERIAL)
def bit_length(v: int) -> int:
    """Number of bits of a non-negative int64."""
    b = 0
    while v > 0:
        v >>= 1
        b += 1
    return b


@njit(**SERIAL)
def isqrt(n: int) -> int:
    """floor(sqrt(n)) for 0 <= n < 2**62, by integer Newton iteration from above."""
    if n <= 0:
        return 0
    x = np.int64(1) << ((bit_length(n) + 1) // 2)  # >= sqrt(n)
    while True:
        y = (x + n // x) >> 1
        if y >= x:
            return x
        x = y


@njit(**SERIAL)
def _rescaled(v: np.int64, shift_left: int, shift_right: int) -> np.int64:
    """Step 2 of the spec: rescale one component to at most 23 significant bits."""
    a = v if v >= 0 else -v
    if shift_right > 0:
        a = (a + (np.int64(1) << (shift_right - 1))) >> shift_right
    else:
        a = a << shift_left
    return a if v >= 0 else -a


@njit(**SERIAL)
def _div_setup(den: int) -> tuple[int, int]:
    """Shift k and multiplier M = floor(2**k / den) for exact division by ``den``.

    In :func:`normalize_rows`, ``max|r| >= 2**22`` so ``den = 2 * isqrt(S) >= 2**23``, and
    the numerators are ``num = |r| * 2**17 + R < 2**41``. With ``k = 21 + bit_length(den)``,
    ``2**21 < M <= 2**22``, so ``num * M < 2**63`` (no overflow), and
    ``0 <= num/den - num*M/2**k < num / 2**k <= 2**-4``. Hence ``(num * M) >> k`` is
    ``floor(num/den)`` or one less, and a single integer correction makes it exact.
    """
    k = 21 + bit_length(den)
    return k, (np.int64(1) << k) // den


@njit(**SERIAL)
def normalize_row_into(q: np.ndarray, out: np.ndarray) -> np.int64:
    """Normalise one int32 row ``q`` into ``out`` (which may be ``q`` itself).

    Returns max |out_j| (int64), or -1 for a zero vector (``out`` then untouched). Each
    ``out[j]`` is written only after the last read of ``q[j]``, so in-place is exact.
    """
    d = q.shape[0]
    m = np.int64(0)
    for j in range(d):
        v = np.int64(q[j])
        a = v if v >= 0 else -v
        if a > m:
            m = a
    if m == 0:
        return np.int64(-1)
    two_scale = np.int64(SCALE) << 1
    b = bit_length(m)
    left = NORM_BITS - b if b <= NORM_BITS else 0
    right = b - NORM_BITS if b > NORM_BITS else 0
    total = np.int64(0)
    for j in range(d):
        r = _rescaled(np.int64(q[j]), left, right)
        total += r * r
    root = isqrt(total)
    den = 2 * root
    # exact floor(num / den) without a per-element division (see _div_setup)
    k, mult = _div_setup(den)
    top = np.int64(0)
    for j in range(d):
        r = _rescaled(np.int64(q[j]), left, right)
        a = r if r >= 0 else -r
        num = a * two_scale + root
        est = (num * mult) >> k
        est += np.int64((est + 1) * den <= num)
        if est > top:
            top = est
        out[j] = est if r >= 0 else -est
    return top


@njit(**PARALLEL)
def normalize_rows(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalise each int32 row; returns (int32 rows, uint8 flags where 1 = zero vector)."""
    n, d = q.shape
    out = np.zeros((n, d), dtype=np.int32)
    zero = np.zeros(n, dtype=np.uint8)
    for i in prange(n):
        if normalize_row_into(q[i], out[i]) < 0:
            zero[i] = 1
    return out, zero


#: Serial twin for a handful of rows (queries); ``prange`` runs as ``range``.
normalize_rows_serial = serial_twin(normalize_rows)
