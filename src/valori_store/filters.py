"""Public alias of :mod:`valori_store.query.filters` (the documented import path)."""

from valori_store.query.filters import *  # noqa: F403
from valori_store.query.filters import __all__  # noqa: F401
