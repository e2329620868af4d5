"""Which text embedder a store's vectors come from, as far as the CLI knows.

``ingest`` records the built-in :class:`~valori_store.embedder.HashingEmbedder` settings
it used in an ``embedder`` note (a log event that changes no record and no state hash),
written once per store. ``search`` embeds its query with the recorded settings; a store
without that note must have dim 384, the built-in embedder's default, and is assumed to
hold default HashingEmbedder vectors.

``ingest`` never mixes embedding spaces (:func:`for_ingest`): it refuses a store that
holds records but no note (they came from elsewhere) unless told to adopt them, and a
store whose note names another algorithm or dimension.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from valori_store import Annotation
from valori_store.embedder import ALGORITHM, HashingEmbedder
from valori_store.errors import InputError

TOPIC = "embedder"
DEFAULT_DIM = 384


def settings(emb: HashingEmbedder) -> dict[str, Any]:
    return {"algorithm": ALGORITHM, "dim": emb.dim, "ngram_range": list(emb.ngram_range), "seed": emb.seed}


def recorded(notes: Sequence[Annotation]) -> dict[str, Any] | None:
    """The latest recorded embedder settings among ``notes`` (``store.notes()``), or None."""
    found = None
    for note in notes:
        if note.topic == TOPIC:
            found = note.body
    return found


def _from_settings(rec: dict[str, Any]) -> HashingEmbedder:
    """The HashingEmbedder a recorded note describes (InputError when it is malformed)."""
    try:
        return HashingEmbedder(int(rec["dim"]), tuple(rec["ngram_range"]), str(rec["seed"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the store's embedder record {json.dumps(rec, sort_keys=True)} is malformed ({exc})") from None


def for_store(dim: int, notes: Sequence[Annotation]) -> HashingEmbedder:
    """The embedder to use for queries on a store (InputError when none fits)."""
    rec = recorded(notes)
    if rec is not None:
        if rec.get("algorithm") != ALGORITHM:
            raise InputError(f"the store was ingested with embedder {rec.get('algorithm')!r}; this valori-store "
                             f"has {ALGORITHM!r}, so its query vectors would not match")
        return _from_settings(rec)
    if dim != DEFAULT_DIM:
        raise InputError(f"the store has dim {dim}, but search embeds text with the built-in {DEFAULT_DIM}-dim "
                         f"HashingEmbedder (stores built by 'valori-store ingest' record their embedder); "
                         f"search this store from Python with its own embedder")
    return HashingEmbedder(DEFAULT_DIM)


def for_ingest(dim: int, notes: Sequence[Annotation], records: int,
               adopt: bool = False) -> tuple[HashingEmbedder, dict[str, Any] | None]:
    """(embedder, note to record first or None) for ingesting into a ``dim``-dim store
    holding ``records`` records; InputError instead of mixing embedding spaces.

    - A recorded note must name this valori-store's algorithm and the store's ``dim``
      (``adopt`` never overrides it); its n-gram range and seed are then used as recorded.
    - No note and no records: the default HashingEmbedder(dim), recorded now.
    - No note but records: they were not added by ingest, so their vectors may come from
      any embedder; refused unless ``adopt`` declares them default HashingEmbedder(dim)
      vectors, in which case that is recorded.
    """
    rec = recorded(notes)
    if rec is not None:
        wrong = []
        if rec.get("algorithm") != ALGORITHM:
            wrong.append(f"algorithm {rec.get('algorithm')!r} (this valori-store embeds with {ALGORITHM!r})")
        if rec.get("dim") != dim:
            wrong.append(f"dim {rec.get('dim')!r} (requested {dim})")
        if wrong:
            raise InputError(f"the store records its embedder as {' and '.join(wrong)}; ingesting would mix "
                             f"embedding spaces, so nothing was written (ingest into a new store instead)")
        return _from_settings(rec), None
    emb = HashingEmbedder(dim)
    if records and not adopt:
        raise InputError(f"the store holds {records} records but no embedder record: they were not added by "
                         f"'valori-store ingest' and may come from another embedder, so nothing was written; ingest "
                         f"into a new store, or pass --adopt-embedder if they are HashingEmbedder({dim}) vectors")
    return emb, settings(emb)
