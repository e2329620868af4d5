"""Public alias of :mod:`valori_store.history.readonly` (the documented import path)."""

from valori_store.history.readonly import *  # noqa: F403
from valori_store.history.readonly import __all__  # noqa: F401
