"""Read-only access to store directories and snapshots (the documented import path).

``open_readonly`` gives a store whose every mutation raises ``ReadOnlyError``; ``read_log``
and ``recover_readonly`` read a directory's log and head state without locking or
changing anything (:mod:`valori_store.storage.recovery`).
"""

from valori_store.api import ReadOnlyStore, open_readonly
from valori_store.errors import ReadOnlyError
from valori_store.storage.recovery import LogView, Recovered, read_log, recover_readonly

__all__ = ["LogView", "ReadOnlyError", "ReadOnlyStore", "Recovered", "open_readonly", "read_log", "recover_readonly"]
