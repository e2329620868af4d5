"""Shared helpers of the stress runs: failures, counters, content snapshots, search order."""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
for _p in (str(ROOT / "src"), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from valori_store import ValoriStore  # noqa: E402

#: One record's content as the stress models keep it: (vector ints or None, text, metadata).
Content = tuple[tuple[int, ...] | None, str | None, dict[str, Any]]


class Failed(Exception):
    """A violated check (the run exits non-zero)."""


def check(cond: object, what: str) -> None:
    if not cond:
        raise Failed(what)


class Tally:
    """Named counters, printed sorted."""

    def __init__(self) -> None:
        self.c: Counter[str] = Counter()

    def add(self, name: str, n: int = 1) -> None:
        self.c[name] += n

    def __getitem__(self, name: str) -> int:
        return self.c[name]

    def fmt(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in sorted(self.c.items())) or "none"


def record_content(r: Any) -> Content:
    """A Record as plain data (vector as a tuple of its stored int32 values)."""
    return (None if r.vector is None else tuple(int(v) for v in r.vector.tolist()), r.text, dict(r.metadata))


def store_content(store: Any) -> dict[str, Content]:
    """Every record of ``store`` as plain data, read in one consistent view."""
    with store.view():
        ids = store.ids()
        recs = store.get(ids)
    return {r.id: record_content(r) for r in recs}


def diff_content(got: Mapping[str, Content], want: Mapping[str, Content], limit: int = 3) -> str:
    """A short description of how two contents differ ('' when equal)."""
    if got == want:
        return ""
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    changed = sorted(k for k in set(got) & set(want) if got[k] != want[k])
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing (e.g. {missing[:limit]})")
    if extra:
        parts.append(f"{len(extra)} unexpected (e.g. {extra[:limit]})")
    if changed:
        k = changed[0]
        parts.append(f"{len(changed)} with other content (e.g. {k}: got {got[k]!r}, want {want[k]!r})")
    return "; ".join(parts)


def fresh_hash(dim: int, metric: str, content: Mapping[str, Content]) -> str:
    """The state hash of a new in-memory store holding exactly ``content`` (the root is a
    function of the content only, whatever the history). Needs a metric under which a
    stored vector re-ingests to itself (``dot`` or ``l2``: the ints / 2**16 are exact)."""
    s = ValoriStore(dim, metric)
    vec_ids = [k for k, c in content.items() if c[0] is not None]
    plain_ids = [k for k, c in content.items() if c[0] is None]
    if vec_ids:
        x = np.array([content[k][0] for k in vec_ids], dtype=np.float64) / 65536.0
        s.upsert(x, ids=vec_ids, texts=[content[k][1] for k in vec_ids],
                 metadatas=[content[k][2] for k in vec_ids])
    if plain_ids:
        s.upsert_plain(plain_ids, texts=[content[k][1] for k in plain_ids],
                       metadatas=[content[k][2] for k in plain_ids])
    h = s.state_hash()
    s.close()
    return h


def hits_ordered(hits: Iterable[Any], metric: str) -> bool:
    """Score descending, then id ascending (UTF-8 bytes); exact on ``raw`` (l2: lower raw
    is closer), and the float scores never increase."""
    hits = list(hits)
    sign = 1 if metric == "l2" else -1
    keys = [(sign * h.raw, h.id.encode("utf-8")) for h in hits]
    scores = [h.score for h in hits]
    return keys == sorted(keys) and all(a >= b for a, b in zip(scores, scores[1:]))
