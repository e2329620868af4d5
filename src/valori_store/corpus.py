"""Public alias of :mod:`valori_store.builtin.corpus` (the documented import path)."""

from valori_store.builtin.corpus import *  # noqa: F403
from valori_store.builtin.corpus import __all__  # noqa: F401
