"""State, checkpoints and snapshot files of :class:`~valori_store.langchain.ValoriVectorStore`:
thin forwards to the core store (see docs/langchain/snapshots.md)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from typing_extensions import Self

from valori_store import Checkpoint, ValoriStore
from valori_store.langchain.base import CoreBackedVectorStore

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings

__all__ = ["StateMethods"]


class StateMethods(CoreBackedVectorStore):
    """State hash, checkpoints and restore, snapshot files, closing."""

    def state_hash(self) -> str:
        """The core state hash: equal content, equal hash, whatever the history."""
        return self._require_store("state_hash()").state_hash()

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Record a checkpoint in the store's history; returns (seq, state_hash, label)."""
        return self._require_store("checkpoint()").checkpoint(label)

    def snapshot(self, label: str | None = None) -> Checkpoint:
        """An alias of :meth:`checkpoint` (the name is kept for compatibility): it records a
        checkpoint, a cheap, logged point to :meth:`restore` to, and returns it.

        It is **not** a copy of the data: for a portable copy use :meth:`save` (or
        ``store.to_bytes()``).
        """
        return self.checkpoint(label)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind to a checkpoint (a Checkpoint, a label or a seq); logged as an event."""
        return self._require_store("restore()").restore(target)

    def history(self) -> list[Checkpoint]:
        return [] if self._store is None else self._store.history()

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the canonical snapshot file (atomic); reload with :meth:`load`."""
        self._require_store("save()").save(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], embedding: Embeddings) -> Self:
        """A new in-memory store holding the snapshot file at ``path`` (digest-checked)."""
        return cls(embedding, store=ValoriStore.load(path))

    def close(self) -> None:
        """Close the core store (releases a durable directory's lock)."""
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
