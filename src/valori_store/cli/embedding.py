"""Which text embedder a store's vectors come from, as far as the CLI knows.

``ingest`` records the built-in :class:`~valori_store.embedder.HashingEmbedder` settings
it used in an ``embedder`` note (a log event that changes no record and no state hash),
written once per store. ``search`` embeds its query with the recorded settings; a store
without that note must have dim 384, the built-in embedder's default, and is assumed to
hold default HashingEmbedder vectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from .. import events
from ..embedder import ALGORITHM, HashingEmbedder
from ..errors import InputError

TOPIC = "embedder"
DEFAULT_DIM = 384


def settings(emb: HashingEmbedder) -> dict[str, Any]:
    return {"algorithm": ALGORITHM, "dim": emb.dim, "ngram_range": list(emb.ngram_range), "seed": emb.seed}


def recorded(notes: Sequence[tuple[int, events.Note]]) -> dict[str, Any] | None:
    """The latest recorded embedder settings, or None."""
    found = None
    for _, note in notes:
        if note.topic == TOPIC:
            found = json.loads(note.body)
    return found


def for_store(dim: int, notes: Sequence[tuple[int, events.Note]]) -> HashingEmbedder:
    """The embedder to use for queries on a store (InputError when none fits)."""
    rec = recorded(notes)
    if rec is not None:
        if rec.get("algorithm") != ALGORITHM:
            raise InputError(f"the store was ingested with embedder {rec.get('algorithm')!r}; this valori-store "
                             f"has {ALGORITHM!r}, so its query vectors would not match")
        return HashingEmbedder(int(rec["dim"]), tuple(rec["ngram_range"]), str(rec["seed"]))
    if dim != DEFAULT_DIM:
        raise InputError(f"the store has dim {dim}, but search embeds text with the built-in {DEFAULT_DIM}-dim "
                         f"HashingEmbedder (stores built by 'valori-store ingest' record their embedder); "
                         f"search this store from Python with its own embedder")
    return HashingEmbedder(DEFAULT_DIM)
