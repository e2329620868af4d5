"""The one place that holds numba compilation flags.

``fastmath`` is forbidden everywhere (a test walks every kernel and checks); integer
kernels need no float reassociation to vectorise. ``nogil`` lets threaded searches use
all cores; ``cache`` keeps warm start-up fast.
"""

from __future__ import annotations

import types
from typing import Any

from numba import njit

#: Serial kernels.
SERIAL: dict[str, bool] = {"nogil": True, "cache": True, "fastmath": False}
#: Kernels that split rows or queries across numba threads with ``prange``.
PARALLEL: dict[str, bool] = {**SERIAL, "parallel": True}

#: Rows per parallel work item: fixed, so the split never depends on the thread count.
ROW_CHUNK = 2048


def serial_twin(kernel: Any) -> Any:
    """The serial compilation of a parallel kernel (``prange`` runs as ``range``).

    numba's on-disk cache keys a function by module, qualname, line and bytecode, not by
    compile flags: a twin compiled from the very same Python function would share the
    original's cache entries and load its parallel machine code (or hand it the serial
    one). The twin is therefore a copy of the function under its own qualname.
    """
    fn = getattr(kernel, "py_func", kernel)  # a plain function when NUMBA_DISABLE_JIT=1
    twin = types.FunctionType(fn.__code__, fn.__globals__, fn.__name__ + "_serial", fn.__defaults__, fn.__closure__)
    twin.__qualname__ = fn.__qualname__ + "_serial"
    twin.__module__ = fn.__module__
    twin.__doc__ = fn.__doc__
    return njit(**SERIAL)(twin)
