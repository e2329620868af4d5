"""Notes: log events that change no record (sessions, embedder settings, user annotations)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from valori_store.errors import InputError
from valori_store.format import events
from valori_store.format.canonical import canonical_json
from valori_store.records import Annotation
from valori_store.store.live import Live
from valori_store.state.validate import check_name_text
from valori_store.store.writes import commit


def annotate(live: Live, topic: str, body: Mapping[str, Any]) -> int:
    """Append a note event (``topic``: a non-empty str; ``body``: a JSON dict); returns its seq."""
    if type(topic) is not str or not topic:
        raise InputError(f"a note topic is a non-empty str, got {topic!r}")
    check_name_text(topic, "a note topic")
    if not isinstance(body, Mapping):
        raise InputError(f"a note body is a dict, got {type(body).__name__}")
    ev = events.Note(topic, canonical_json(dict(body)))
    with live.lock.write():
        live.check_open()
        seq = commit(live, ev)
        live.notes.append((seq, ev))
        return seq


def listed(live: Live, topic: str | None, after: int) -> list[Annotation]:
    """Notes in log order (only ``topic`` if given; only seqs greater than ``after``)."""
    with live.lock.read():
        live.check_open()
        found = [(s, n) for s, n in live.notes if s > after and (topic is None or n.topic == topic)]
    return [Annotation(s, n.topic, json.loads(n.body)) for s, n in found]
