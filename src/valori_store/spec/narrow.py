"""The narrow scan: an int8 copy of the stored rows whose keys bound the exact keys.

Normative reference (NumPy and Python integers); :mod:`valori_store.kernels.narrow` must
equal it bit for bit. The proof that a search through it returns exactly the full scan's
top-k is in docs/spec.md ("The narrow scan").

For a stored row ``x`` (int32, max|x_i| = m) the *shift* ``s`` is the least ``s >= 0`` with
``(m + h(s)) >> s <= 127``, where ``h(s) = 2**s >> 1`` (0 for s = 0, else 2**(s-1)); the
narrow row is ``y_i = (x_i + h(s)) >> s`` (floor division by 2**s), so every ``y_i`` lies
in [-128, 127] and the residual ``r_i = x_i - 2**s * y_i`` lies in [-h(s), h(s)] (exactly
[-h, h - 1] for s >= 1, and 0 for s = 0). Each row also keeps ``x2 = sum x_i**2``.

For a query ``q`` (the stored-form int32 query) with ``L1 = sum |q_i|``:

* the narrow dot ``D = 2**s * sum q_i y_i`` satisfies ``|sum q_i x_i - D| <= h(s) * L1``
  (``sum q_i x_i = D + sum q_i r_i`` and ``|r_i| <= h(s)``);
* dot / cosine key ``K = sum q_i x_i``: ``K`` lies in ``[D - B, D + B]`` with ``B = h(s) * L1``;
* l2 key ``K = -sum (x_i - q_i)**2 = 2 * sum q_i x_i - x2 - q2`` (``q2 = sum q_i**2``): ``K``
  lies in ``[2 (D - B) - x2 - q2, 2 (D + B) - x2 - q2]``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["NARROW_MAX", "key_bounds", "narrow_rows", "shift_of"]

#: Largest |narrow value| before rounding pushes a row to the next shift.
NARROW_MAX = 127


def shift_of(m: int) -> int:
    """The shift of a row whose max |value| is ``m``."""
    s = 0
    while (m + ((1 << s) >> 1)) >> s > NARROW_MAX:
        s += 1
    return s


def narrow_rows(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(narrow rows int8 (n, d), shifts uint8 (n,), x2 int64 (n,)) of int32 rows (n, d)."""
    n = matrix.shape[0]
    y = np.zeros(matrix.shape, dtype=np.int8)
    shifts = np.zeros(n, dtype=np.uint8)
    x2 = np.zeros(n, dtype=np.int64)
    for i in range(n):
        row = [int(v) for v in matrix[i]]
        s = shift_of(max((abs(v) for v in row), default=0))
        h = (1 << s) >> 1
        y[i] = [(v + h) >> s for v in row]
        shifts[i] = s
        x2[i] = sum(v * v for v in row)  # Python ints: exact (callers check the int64 bound)
    return y, shifts, x2


def key_bounds(y: np.ndarray, shifts: np.ndarray, x2: np.ndarray, query: np.ndarray, distance: bool
               ) -> tuple[list[int], list[int]]:
    """(lower, upper) bounds of every row's exact key against ``query``, Python ints."""
    q = [int(v) for v in query]
    l1 = sum(abs(v) for v in q)
    q2 = sum(v * v for v in q)
    lower, upper = [], []
    for i in range(y.shape[0]):
        s = int(shifts[i])
        d = sum(a * int(b) for a, b in zip(q, y[i])) << s
        b = ((1 << s) >> 1) * l1
        if distance:
            lower.append(2 * (d - b) - int(x2[i]) - q2)
            upper.append(2 * (d + b) - int(x2[i]) - q2)
        else:
            lower.append(d - b)
            upper.append(d + b)
    return lower, upper
