"""Snapshot files for ``ValoriVectorStore.persist`` / ``from_persist_path`` / ``from_persist_dir``.

The file is the core's canonical binary snapshot (docs/format.md; digest-checked on load),
never JSON or pickle. Local paths (``fs=None`` or a local fsspec filesystem) are written
atomically (temp file, fsync, rename) by ``ValoriStore.save``. Any other fsspec filesystem
is written through ``fs.open(path, "wb")``: one write of the whole snapshot, atomic only if
that filesystem makes single-object writes atomic (object stores do; others may not).

``from_persist_dir`` looks for ``{namespace}__vector_store.valori`` (our default name),
then ``{namespace}__vector_store.json``, the name ``StorageContext.persist`` passes to
``persist`` — that file then holds our binary snapshot despite its suffix.
"""

from __future__ import annotations

import os
import posixpath
from typing import Any

from valori_store import ValoriStore
from valori_store.errors import NotFoundError

__all__ = [
    "DEFAULT_NAMESPACE",
    "DEFAULT_PERSIST_DIR",
    "DEFAULT_PERSIST_FNAME",
    "STORAGE_CONTEXT_FNAME",
    "find_in_persist_dir",
    "load_snapshot",
    "persist_dir_candidates",
    "save_snapshot",
]

DEFAULT_PERSIST_DIR = "./storage"
DEFAULT_NAMESPACE = "default"
DEFAULT_PERSIST_FNAME = "vector_store.valori"
STORAGE_CONTEXT_FNAME = "vector_store.json"  # llama_index DEFAULT_PERSIST_FNAME
NAMESPACE_SEP = "__"


def _is_local(fs: Any) -> bool:
    if fs is None:
        return True
    protocol = getattr(fs, "protocol", None)
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return any(p in ("file", "local") for p in protocols)


def save_snapshot(store: ValoriStore, persist_path: str | os.PathLike[str], fs: Any = None) -> None:
    """Write ``store``'s snapshot to ``persist_path`` (parent directories are created)."""
    if _is_local(fs):
        path = os.fspath(persist_path)
        parent = os.path.dirname(path)
        if parent:
            os.makedirs(parent, exist_ok=True)
        store.save(path)
        return
    path = str(persist_path)
    parent = posixpath.dirname(path)
    if parent and not fs.exists(parent):
        fs.makedirs(parent, exist_ok=True)
    data = store.to_bytes()
    with fs.open(path, "wb") as f:
        f.write(data)


def load_snapshot(persist_path: str | os.PathLike[str], fs: Any = None) -> ValoriStore:
    """A new in-memory core store holding the snapshot at ``persist_path``."""
    if _is_local(fs):
        return ValoriStore.load(persist_path)
    path = str(persist_path)
    if not fs.exists(path):
        raise NotFoundError(f"no snapshot file at {path}")
    with fs.open(path, "rb") as f:
        return ValoriStore.from_bytes(f.read())


def persist_dir_candidates(persist_dir: str, namespace: str, fs: Any = None) -> list[str]:
    """Paths ``from_persist_dir`` tries, in order."""
    join = os.path.join if _is_local(fs) else posixpath.join
    return [join(persist_dir, f"{namespace}{NAMESPACE_SEP}{name}") for name in (DEFAULT_PERSIST_FNAME, STORAGE_CONTEXT_FNAME)]


def find_in_persist_dir(persist_dir: str, namespace: str, fs: Any = None) -> str:
    """The first existing candidate path; NotFoundError naming both when neither exists."""
    candidates = persist_dir_candidates(persist_dir, namespace, fs)
    exists = os.path.exists if _is_local(fs) else fs.exists
    for path in candidates:
        if exists(path):
            return path
    raise NotFoundError(f"no valori snapshot in {persist_dir}: looked for {' and '.join(candidates)}")
