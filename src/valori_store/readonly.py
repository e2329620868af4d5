"""Read-only access to store directories and snapshots (the documented import path)."""

from valori_store.api import ReadOnlyStore, open_readonly
from valori_store.errors import ReadOnlyError

__all__ = ["ReadOnlyError", "ReadOnlyStore", "open_readonly"]
