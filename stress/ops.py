"""The crash loop's deterministic operation stream, shared by the child and the parent.

Operation ``i`` is a pure function of ``i``; :func:`apply` performs it on a store. Restores
always target the latest checkpoint before them, and compactions fold the history before
the latest checkpoint, so every restore target is still restorable after any compaction.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

DIM = 8


def _vec(i: int, j: int) -> list[float]:
    return [(((i * 31 + j * 17 + c * 7) % 97) - 48) / 128.0 + (0.5 if c == j % DIM else 0.0) for c in range(DIM)]


def last_checkpoint_before(i: int) -> int:
    """The index of the latest checkpoint operation before ``i`` (-1: none)."""
    c = (i - 1) - ((i - 1 - 9) % 10)
    return c if c >= 9 else -1


def op(i: int) -> tuple[Any, ...]:
    """Operation number ``i``."""
    if i % 10 == 9:
        return ("checkpoint", f"cp{i}")
    c = last_checkpoint_before(i)
    if i % 23 == 22 and c >= 0:
        return ("restore", f"cp{c}")
    if i % 50 == 48 and c >= 0:
        return ("compact", f"cp{c}")
    if i % 17 == 16:
        return ("image",)
    if i % 13 == 12:
        return ("save",)
    if i % 7 == 6:
        return ("delete", [f"b{i - 3}-0", f"b{i - 5}-1", "never-existed"])
    k = 1 + i % 4
    ids = [f"b{i}-{j}" for j in range(k)]
    if i % 5 == 0 and i >= 2:
        ids.append(f"b{i - 2}-0")  # overwrite an older record
    texts = [None if j == 1 else f"text {i}/{j} \u00e9" for j in range(len(ids))]
    metas = [{"i": i, "j": j, "even": i % 2 == 0} for j in range(len(ids))]
    return ("upsert", ids, [_vec(i, j) for j in range(len(ids))], texts, metas)


def apply(store: Any, operation: tuple[Any, ...], durable: bool, snap: Path | None = None) -> None:
    """Perform one operation (image, save and compact only on a durable store)."""
    kind = operation[0]
    if kind == "checkpoint":
        store.checkpoint(operation[1])
    elif kind == "restore":
        store.restore(operation[1])
    elif kind == "compact":
        if durable:
            store.compact(before=operation[1])
    elif kind == "image":
        if durable:
            store.write_image()
    elif kind == "save":
        if durable and snap is not None:
            store.save(snap)
    elif kind == "delete":
        store.delete(operation[1])
    else:
        _, ids, vecs, texts, metas = operation
        store.upsert(vecs, ids=ids, texts=texts, metadatas=metas)
