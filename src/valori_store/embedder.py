"""Public alias of :mod:`valori_store.builtin.embedder` (the documented import path)."""

from valori_store.builtin.embedder import *  # noqa: F403
from valori_store.builtin.embedder import __all__  # noqa: F401
