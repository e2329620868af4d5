"""The public store class: the core :class:`~valori_store.store.facade.Store` plus history.

:class:`ValoriStore` adds what needs the history layer (sessions, receipt verification,
log verification) to the core store, one line each; :class:`ReadOnlyStore` is the same for
stores opened read-only (:func:`open_readonly`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from valori_store.history import receipt_check, sessions
from valori_store.history.verify import VerifyReport, verify_log_bytes
from valori_store.query.receipt import Receipt
from valori_store.store.facade import StateView, Store

__all__ = ["ReadOnlyStore", "StateView", "ValoriStore", "open_readonly"]


class ValoriStore(Store):
    """A deterministic vector store (see :class:`~valori_store.store.facade.Store`), with
    sessions, receipt verification and log verification."""

    def session(self, name: str) -> sessions.Session:
        """Resume the session ``name``, or start it (see :mod:`valori_store.history.sessions`)."""
        return sessions.open_session(self, name)

    def sessions(self) -> list[sessions.SessionInfo]:
        """Every session of this store, in the order they were started."""
        return sessions.list_sessions(self)

    def fork_session(self, name: str, source: str, turn: int) -> sessions.Session:
        """A new session with ``source``'s history up to ``turn``; the store is rewound there."""
        return sessions.fork_session(self, name, source, turn)

    def verify_receipt(self, receipt: Receipt | Mapping[str, Any] | str) -> receipt_check.ReceiptCheck:
        """Re-execute a receipt's search at its recorded state (see :mod:`valori_store.receipts`)."""
        return receipt_check.verify_receipt(self, receipt)

    def verify(self) -> VerifyReport:
        """Replay this store's log from empty and check it (see :func:`valori_store.verify`)."""
        with self.view() as view:
            return verify_log_bytes(view.read_log(), "event log", view.table.state_digest(), self.path)


class ReadOnlyStore(ValoriStore):
    """A :class:`ValoriStore` opened read-only: every mutation raises ReadOnlyError."""


def open_readonly(path: str | os.PathLike[str]) -> ReadOnlyStore:
    """A read-only store over a directory (head state, no lock taken) or a snapshot file."""
    store = ReadOnlyStore.open_readonly(path)
    assert isinstance(store, ReadOnlyStore)
    return store


_ = StateView  # re-exported
