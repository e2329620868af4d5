"""The crash loop's operation stream and its pure-Python model (shared by child and parent).

:func:`make_ops` turns a seed into a random but fixed list of operations: upserts (new ids
and overwrites), records without a vector, atomic delete+upsert writes, deletes (existing
and never-existing ids), checkpoints, restores, image writes, snapshot saves, compactions
and explicit syncs. Vectors are integers / 2**16, so under the ``dot`` metric the stored
Q16.16 vector is known exactly without asking the store. Restores only target checkpoints
at or after the latest compaction cut, so every restore stays possible.

:class:`Model` applies the same operations to a dict ``id -> (vector, text, metadata,
op)`` and counts the log events each one appends, which tells the parent exactly which
prefix of the stream a recovered store holds.
"""

from __future__ import annotations

import random
import zlib
from pathlib import Path
from typing import Any

import numpy as np

DIM = 8
METRIC = "dot"
ID_SPACE = 500
KINDS = ("upsert", "plain", "write", "delete", "checkpoint", "restore", "image", "save", "compact", "sync")
WEIGHTS = (34, 5, 8, 12, 9, 5, 4, 4, 3, 6)

Op = tuple[Any, ...]


def _records(rng: random.Random, i: int, n: int, taken: set[str]) -> tuple[list[str], list[list[int]], list, list]:
    ids: list[str] = []
    while len(ids) < n:
        rid = f"k{rng.randrange(ID_SPACE)}" if rng.random() < 0.8 else f"n{i}-{len(ids)}-\u00e9\u4e2d"
        if rid not in taken and rid not in ids:
            ids.append(rid)
    vecs = [[rng.randint(-(1 << 20), 1 << 20) for _ in range(DIM)] for _ in ids]
    texts = [None if rng.random() < 0.2 else f"op {i} rec {j} \u00fc" + "x" * rng.randrange(40)
             for j in range(len(ids))]
    metas = [None if rng.random() < 0.15 else
             {"op": i, "j": j, "g": rng.randrange(5), "f": i / 7, "ok": j % 2 == 0, "tags": ["a", str(i % 3)]}
             for j in range(len(ids))]
    return ids, vecs, texts, metas


def make_ops(seed: int, n: int) -> list[Op]:
    """Operations 0..n-1 for ``seed`` (the same list in every process)."""
    rng = random.Random(seed)
    ops: list[Op] = []
    cps: list[str] = []  # checkpoint labels, in order
    cut = 0  # index in cps of the latest compaction cut: restores target cps[cut:]
    for i in range(n):
        kind = rng.choices(KINDS, WEIGHTS)[0]
        if kind in ("restore", "compact") and not cps:
            kind = "checkpoint"
        if kind == "upsert":
            ids, vecs, texts, metas = _records(rng, i, rng.randint(1, 6), set())
            ops.append(("upsert", ids, vecs, texts, metas))
        elif kind == "plain":
            ids, _, texts, metas = _records(rng, i, rng.randint(1, 3), set())
            ops.append(("plain", ids, texts, metas))
        elif kind == "write":
            dels = [f"k{rng.randrange(ID_SPACE)}" for _ in range(rng.randint(1, 4))]
            ids, vecs, texts, metas = _records(rng, i, rng.randint(1, 4), set())
            ops.append(("write", sorted(set(dels)), ids, vecs, texts, metas))
        elif kind == "delete":
            dels = {f"k{rng.randrange(ID_SPACE)}" for _ in range(rng.randint(1, 8))}
            if rng.random() < 0.3:
                dels.add(f"never-{i}")
            ops.append(("delete", sorted(dels)))
        elif kind == "checkpoint":
            cps.append(f"cp{i}")
            ops.append(("checkpoint", f"cp{i}"))
        elif kind == "restore":
            ops.append(("restore", rng.choice(cps[cut:])))
        elif kind == "compact":
            cut = rng.randrange(cut, len(cps))
            ops.append(("compact", cps[cut]))
        else:  # image, save, sync
            ops.append((kind,))
    return ops


def effect(i: int, o: Op) -> str:
    """What operation ``i`` does, as printed on its acknowledgement line (kind, ids, a CRC of
    the content): the parent checks the child ran the same stream."""
    kind = o[0]
    if kind in ("upsert", "plain", "write", "delete"):
        ids = o[2] if kind == "write" else o[1]
        crc = zlib.crc32(repr(o).encode("utf-8"))
        return f"{kind} ids={','.join(ids).encode('unicode_escape').decode('ascii')} crc={crc:08x}"
    if kind in ("checkpoint", "restore", "compact"):
        return f"{kind} {o[1]}"
    return kind


def apply(store: Any, o: Op, snap: Path) -> None:
    """Perform one operation on a durable store."""
    kind = o[0]
    if kind == "upsert":
        store.upsert(np.asarray(o[2], dtype=np.float64) / 65536.0, ids=o[1], texts=o[3], metadatas=o[4])
    elif kind == "plain":
        store.upsert_plain(o[1], texts=o[2], metadatas=o[3])
    elif kind == "write":
        store.write(delete=o[1], vectors=np.asarray(o[3], dtype=np.float64) / 65536.0, ids=o[2], texts=o[4],
                    metadatas=o[5])
    elif kind == "delete":
        store.delete(o[1])
    elif kind == "checkpoint":
        store.checkpoint(o[1])
    elif kind == "restore":
        store.restore(o[1])
    elif kind == "compact":
        store.compact(before=o[1])
    elif kind == "image":
        store.write_image()
    elif kind == "save":
        store.save(snap)
    elif kind == "sync":
        store.sync()
    else:  # pragma: no cover - make_ops makes no other kind
        raise ValueError(kind)


class Model:
    """The content after a prefix of the stream, and the log length it implies."""

    def __init__(self) -> None:
        self.content: dict[str, tuple[tuple[int, ...] | None, str | None, dict, int]] = {}
        self.cps: dict[str, dict] = {}  # label -> content at that checkpoint (never mutated)
        self.history: list[tuple[int, str]] = []  # (seq, label) of every checkpoint
        self.log_length = 1  # the create event
        self.pos = -1  # the last operation applied

    def copy(self) -> Model:
        m = Model.__new__(Model)
        m.content = dict(self.content)
        m.cps = dict(self.cps)
        m.history = list(self.history)
        m.log_length = self.log_length
        m.pos = self.pos
        return m

    def plain_content(self) -> dict[str, tuple[tuple[int, ...] | None, str | None, dict]]:
        """The content without the op tags (what the store holds)."""
        return {k: v[:3] for k, v in self.content.items()}

    def apply(self, i: int, o: Op) -> None:
        kind = o[0]
        c = self.content
        if kind == "upsert":
            for rid, v, t, m in zip(o[1], o[2], o[3], o[4]):
                c[rid] = (tuple(v), t, dict(m or {}), i)
            self.log_length += 1
        elif kind == "plain":
            for rid, t, m in zip(o[1], o[2], o[3]):
                c[rid] = (None, t, dict(m or {}), i)
            self.log_length += 1
        elif kind == "write":
            for rid in o[1]:
                c.pop(rid, None)
            for rid, v, t, m in zip(o[2], o[3], o[4], o[5]):
                c[rid] = (tuple(v), t, dict(m or {}), i)
            self.log_length += 1
        elif kind == "delete":
            gone = [rid for rid in o[1] if rid in c]
            for rid in gone:
                del c[rid]
            if gone:  # a delete that removes nothing logs nothing
                self.log_length += 1
        elif kind == "checkpoint":
            self.cps[o[1]] = dict(c)
            self.history.append((self.log_length, o[1]))
            self.log_length += 1
        elif kind == "restore":
            self.content = dict(self.cps[o[1]])
            self.log_length += 1
        # compact, image, save and sync append no event and change no record
        self.pos = i
