"""The one place that holds numba compilation flags.

``fastmath`` is forbidden everywhere (a test walks every kernel and checks); integer
kernels need no float reassociation to vectorise. ``nogil`` lets threaded searches use
all cores; ``cache`` keeps warm start-up fast.
"""

from __future__ import annotations

#: Serial kernels.
SERIAL: dict[str, bool] = {"nogil": True, "cache": True, "fastmath": False}
#: Kernels that split rows or queries across numba threads with ``prange``.
PARALLEL: dict[str, bool] = {**SERIAL, "parallel": True}

#: Rows per parallel work item: fixed, so the split never depends on the thread count.
ROW_CHUNK = 2048
