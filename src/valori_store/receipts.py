"""Public alias of :mod:`valori_store.history.receipts` (the documented import path)."""

from valori_store.history.receipts import *  # noqa: F403
from valori_store.history.receipts import __all__  # noqa: F401
