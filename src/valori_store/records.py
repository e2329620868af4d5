"""Plain result types returned by the store: Record, Hit, Checkpoint, Annotation.

They are frozen dataclasses holding copies: changing them never changes the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

JSONValue = Any  # str | int | float | bool | None | list[JSONValue] | dict[str, JSONValue]


@dataclass(frozen=True)
class Record:
    """A stored record.

    ``vector`` is the stored Q16.16 integer vector (int32; for the cosine metric it is
    the integer-normalised vector), or None for a record stored without a vector
    (``ValoriStore.upsert_plain``). ``values`` gives it as floats (``vector / 65536``).
    """

    id: str
    vector: np.ndarray | None
    text: str | None
    metadata: dict[str, JSONValue] = field(default_factory=dict)

    @property
    def values(self) -> np.ndarray | None:
        """The stored vector as float64 reals (exact: q / 2**16); None without a vector."""
        return None if self.vector is None else self.vector.astype(np.float64) / 65536.0


@dataclass(frozen=True)
class Hit:
    """One search result.

    ``raw`` is the exact integer score: the dot product of Q16.16 integers for
    ``cosine`` and ``dot`` (scale 2**32), the squared L2 distance for ``l2`` (scale
    2**32, lower is closer). ``score`` is a float where higher is always more similar:
    ``raw / 2**32`` for cosine and dot, ``0.0 - sqrt(raw) / 2**16`` for l2 (never -0.0).
    """

    id: str
    score: float
    raw: int
    text: str | None
    metadata: dict[str, JSONValue]


@dataclass(frozen=True)
class Checkpoint:
    """A named point in the store's history: ``seq`` is the event number of the checkpoint."""

    seq: int
    state_hash: str
    label: str | None = None


@dataclass(frozen=True)
class Annotation:
    """A note in a store's log (see ``ValoriStore.annotate``): its ``seq``, ``topic`` and JSON ``body``."""

    seq: int
    topic: str
    body: dict[str, JSONValue]
