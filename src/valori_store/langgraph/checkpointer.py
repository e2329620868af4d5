"""ValoriCheckpointer: binds a memory's exact state to every LangGraph checkpoint.

It wraps any ``BaseCheckpointSaver`` and delegates everything to it, with two additions:

* ``put``/``aput`` take a core checkpoint of the memory first (reusing the newest one
  when the memory's state hash has not changed) and store ``{"seq", "state_hash"}``
  under ``metadata["valori"]`` of the LangGraph checkpoint.
* ``rewind(config)``/``arewind(config)`` restore the memory to the state recorded in
  that checkpoint. With ``auto_rewind=True`` (default) the memory follows the checkpoint
  a *run* resumes from (root graph only):

  - a run that loads an explicit checkpoint that is not the newest of its thread
    (``graph.invoke(None, past_config)``) rewinds the memory to it;
  - a checkpoint written outside a run whose parent is such a past checkpoint
    (``graph.update_state(past_config, ...)``, a fork) rewinds the memory first;
  - a run that resumes the newest checkpoint of a thread while the memory still sits in
    a state :meth:`rewind` moved it to (nothing written since) that differs from the one
    recorded there brings the memory back to where it was before that rewind.

  Inspection never touches the memory: ``get_state``/``get_state_history`` (any config)
  and ``get_tuple`` calls made outside a LangGraph run. Calls made inside a run are told
  apart by the run's ``Runtime`` LangGraph puts in their ``configurable``.

Invariant: after a rewind to checkpoint X, ``memory.state_hash()`` equals the hash
recorded in X, so every search returns bit for bit what it returned when X was saved.
Memory written by a run, or by anyone after a rewind, is never undone implicitly.
Capabilities are transparent: a method the wrapped saver does not implement is not
implemented here either (so capability detection sees the same saver).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    BaseCheckpointSaver,
    ChannelVersions,
    CheckpointMetadata,
    CheckpointTuple,
    get_checkpoint_id,
)
from langgraph.checkpoint.base import Checkpoint as GraphCheckpoint

from valori_store import Checkpoint, ValoriStore
from valori_store.errors import InputError, NotFoundError
from valori_store.langgraph.store import ValoriMemoryStore

try:
    from langgraph._internal._constants import CONFIG_KEY_RUNTIME as _RUN_KEY
except ImportError:  # pragma: no cover - the key's value in every LangGraph 1.x release
    _RUN_KEY = "__pregel_runtime"

METADATA_KEY = "valori"

# Methods delegated verbatim; hidden (left to the base class) when the wrapped saver lacks them.
_OPTIONAL = (
    "get_tuple", "aget_tuple", "list", "alist", "put", "aput", "put_writes", "aput_writes",
    "delete_thread", "adelete_thread", "delete_for_runs", "adelete_for_runs",
    "copy_thread", "acopy_thread", "prune", "aprune",
)


class _Shared:
    """State shared by a checkpointer and its ``with_allowlist`` clones."""

    def __init__(self, lock: Any) -> None:
        self.lock = lock
        self.last: Checkpoint | None = None
        # (state before, state after) of the latest rewind() not yet followed by a run or
        # a checkpoint: what resuming a thread's newest checkpoint may undo.
        self.detour: tuple[Checkpoint, Checkpoint] | None = None


def recorded_checkpoint(metadata: Mapping[str, Any] | None) -> Checkpoint | None:
    """The memory checkpoint recorded in a LangGraph checkpoint's metadata (or None)."""
    rec = (metadata or {}).get(METADATA_KEY)
    if not isinstance(rec, Mapping) or "seq" not in rec or "state_hash" not in rec:
        return None
    return Checkpoint(int(rec["seq"]), str(rec["state_hash"]))


@lru_cache(maxsize=None)
def _variant(cls: type, missing: frozenset[str]) -> type:
    if not missing:
        return cls
    hidden = {name: getattr(BaseCheckpointSaver, name) for name in missing}
    return type(cls.__name__, (cls,), {"__module__": cls.__module__, "__qualname__": cls.__qualname__, **hidden})


def _in_run(config: RunnableConfig) -> bool:
    """Whether LangGraph's run loop made this call (its configs carry the run's Runtime)."""
    return _RUN_KEY in config.get("configurable", {})


def _is_root(config: RunnableConfig) -> bool:
    return not config.get("configurable", {}).get("checkpoint_ns")


def _same(a: CheckpointTuple, b: CheckpointTuple | None) -> bool:
    return b is not None and get_checkpoint_id(a.config) == get_checkpoint_id(b.config)


def _without_id(config: RunnableConfig) -> RunnableConfig:
    conf = {k: v for k, v in config.get("configurable", {}).items() if k != "checkpoint_id"}
    return {**config, "configurable": conf}


class ValoriCheckpointer(BaseCheckpointSaver):
    """A checkpoint saver that records (and can restore) the memory state of each checkpoint.

    Args:
        saver: the LangGraph saver that really stores checkpoints (InMemorySaver, a
            SQLite or Postgres saver...).
        memory: the memory to bind: a :class:`ValoriMemoryStore` or a core ValoriStore.
        auto_rewind: keep the memory bound to the checkpoint a run resumes from (time
            travel, ``update_state`` forks, coming back after :meth:`rewind`; see the
            module docstring). With False, the memory moves only when :meth:`rewind` is called.
    """

    def __new__(cls, saver: BaseCheckpointSaver | None = None, *args: Any, **kwargs: Any) -> ValoriCheckpointer:
        if saver is None:  # copy.copy / unpickling: the class is already the right variant
            return super().__new__(cls)
        inner = type(saver)
        missing = frozenset(m for m in _OPTIONAL if getattr(inner, m, None) is getattr(BaseCheckpointSaver, m))
        return super().__new__(_variant(cls, missing))

    def __init__(
        self, saver: BaseCheckpointSaver, memory: ValoriMemoryStore | ValoriStore, *, auto_rewind: bool = True
    ) -> None:
        if not isinstance(saver, BaseCheckpointSaver):
            raise InputError(f"saver must be a LangGraph BaseCheckpointSaver, got {type(saver).__name__}")
        if isinstance(memory, ValoriMemoryStore):
            self._core, lock = memory.store, memory.lock
        elif isinstance(memory, ValoriStore):
            self._core, lock = memory, threading.RLock()
        else:
            raise InputError(f"memory must be a ValoriMemoryStore or a ValoriStore, got {type(memory).__name__}")
        self.saver = saver
        self.serde = saver.serde
        self.memory = memory
        self.auto_rewind = bool(auto_rewind)
        self._shared = _Shared(lock)

    # ------------------------------------------------------------------ memory binding
    def memory_checkpoint(self) -> Checkpoint:
        """A core checkpoint holding the memory's current state (the newest one is reused
        when the state hash is unchanged, so idle steps add no checkpoints)."""
        shared = self._shared
        with shared.lock:
            current = self._core.state_hash()
            last = shared.last
            if last is None:
                history = self._core.history()
                last = history[-1] if history else None
            if last is None or last.state_hash != current:
                last = self._core.checkpoint()
            shared.last = last
            return last

    def _with_record(self, metadata: CheckpointMetadata) -> CheckpointMetadata:
        cp = self.memory_checkpoint()
        return {**metadata, METADATA_KEY: {"seq": cp.seq, "state_hash": cp.state_hash}}  # type: ignore[typeddict-unknown-key]

    def _restore(self, tup: CheckpointTuple, *, detour: bool = False) -> Checkpoint:
        """Restore the state recorded in ``tup``. With ``detour``, remember the state left
        so that resuming the thread's newest checkpoint can come back to it."""
        target = recorded_checkpoint(tup.metadata)
        if target is None:
            raise NotFoundError(
                f"checkpoint {get_checkpoint_id(tup.config)!r} has no metadata[{METADATA_KEY!r}]: "
                f"it was not saved through a ValoriCheckpointer"
            )
        shared = self._shared
        with shared.lock:
            current = self._core.state_hash()
            pending = shared.detour if shared.detour and shared.detour[1].state_hash == current else None
            if current != target.state_hash:
                before = pending[0] if pending else self.memory_checkpoint()
                target = self._core.restore(target)
                pending = (before, target) if before.state_hash != target.state_hash else None
            shared.last = target
            shared.detour = pending if detour else None
            return target

    def _come_back(self, latest: CheckpointTuple) -> None:
        """A run resumes ``latest`` (its thread's newest checkpoint): undo a pending
        :meth:`rewind` if the memory still sits where it left it and disagrees with the
        state recorded in ``latest``. Memory changed since the rewind is left alone."""
        shared = self._shared
        with shared.lock:
            pending, shared.detour = shared.detour, None
            recorded = recorded_checkpoint(latest.metadata)
            if pending is None or recorded is None:
                return
            current = self._core.state_hash()
            if current == pending[1].state_hash and current != recorded.state_hash:
                shared.last = self._core.restore(pending[0])

    def _load(self, tup: CheckpointTuple, latest: CheckpointTuple | None) -> None:
        """A run loads ``tup`` (``latest`` is its thread's newest): bind the memory to it."""
        if not _same(tup, latest):
            if recorded_checkpoint(tup.metadata) is not None:
                self._restore(tup)  # time travel; the run now owns this state
        else:
            self._come_back(tup)

    def _binds(self, config: RunnableConfig) -> bool:
        return self.auto_rewind and _is_root(config)

    def rewind(self, config: RunnableConfig) -> Checkpoint:
        """Restore the memory to the state recorded in the checkpoint ``config`` names
        (its ``checkpoint_id``, or the thread's newest); returns the memory checkpoint.

        With ``auto_rewind``, a later run resuming a thread's newest checkpoint brings the
        memory back to the state before this call, unless the memory changed meanwhile."""
        tup = self.saver.get_tuple(config)
        if tup is None:
            raise NotFoundError(f"no LangGraph checkpoint for {config.get('configurable')!r}")
        return self._restore(tup, detour=True)

    async def arewind(self, config: RunnableConfig) -> Checkpoint:
        """Async :meth:`rewind`."""
        tup = await self.saver.aget_tuple(config)
        if tup is None:
            raise NotFoundError(f"no LangGraph checkpoint for {config.get('configurable')!r}")
        return self._restore(tup, detour=True)

    # ------------------------------------------------------------------ reads
    @property
    def config_specs(self) -> list:
        return self.saver.config_specs

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        tup = self.saver.get_tuple(config)
        if tup is not None and _in_run(config) and self._binds(config):
            latest = self.saver.get_tuple(_without_id(config)) if get_checkpoint_id(config) else tup
            self._load(tup, latest)
        return tup

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        tup = await self.saver.aget_tuple(config)
        if tup is not None and _in_run(config) and self._binds(config):
            latest = await self.saver.aget_tuple(_without_id(config)) if get_checkpoint_id(config) else tup
            self._load(tup, latest)
        return tup

    def list(
        self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None, limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        return self.saver.list(config, filter=filter, before=before, limit=limit)

    async def alist(
        self, config: RunnableConfig | None, *, filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None, limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        async for tup in self.saver.alist(config, filter=filter, before=before, limit=limit):
            yield tup

    def get_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        return self.saver.get_delta_channel_history(config=config, channels=channels)

    async def aget_delta_channel_history(self, *, config: RunnableConfig, channels: Sequence[str]) -> Any:
        return await self.saver.aget_delta_channel_history(config=config, channels=channels)

    # ------------------------------------------------------------------ writes
    def _fork(self, parent: CheckpointTuple | None, latest: CheckpointTuple | None) -> None:
        """A checkpoint written outside a run (``update_state``) on top of ``parent``:
        a past parent rewinds the memory first, so the fork records the parent's state."""
        if parent is not None and not _same(parent, latest) and recorded_checkpoint(parent.metadata) is not None:
            self._restore(parent)
        else:
            self._shared.detour = None  # the new checkpoint records the memory as it is

    def _forks(self, config: RunnableConfig) -> bool:
        return not _in_run(config) and self._binds(config) and bool(get_checkpoint_id(config))

    def put(
        self, config: RunnableConfig, checkpoint: GraphCheckpoint, metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self._forks(config):
            self._fork(self.saver.get_tuple(config), self.saver.get_tuple(_without_id(config)))
        return self.saver.put(config, checkpoint, self._with_record(metadata), new_versions)

    async def aput(
        self, config: RunnableConfig, checkpoint: GraphCheckpoint, metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        if self._forks(config):
            self._fork(await self.saver.aget_tuple(config), await self.saver.aget_tuple(_without_id(config)))
        return await self.saver.aput(config, checkpoint, self._with_record(metadata), new_versions)

    def put_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "",
    ) -> None:
        return self.saver.put_writes(config, writes, task_id, task_path)

    async def aput_writes(
        self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str, task_path: str = "",
    ) -> None:
        return await self.saver.aput_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        return self.saver.delete_thread(thread_id)

    async def adelete_thread(self, thread_id: str) -> None:
        return await self.saver.adelete_thread(thread_id)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        return self.saver.delete_for_runs(run_ids)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        return await self.saver.adelete_for_runs(run_ids)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        return self.saver.copy_thread(source_thread_id, target_thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        return await self.saver.acopy_thread(source_thread_id, target_thread_id)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        return self.saver.prune(thread_ids, strategy=strategy)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        return await self.saver.aprune(thread_ids, strategy=strategy)

    # ------------------------------------------------------------------ versions and serde
    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.saver.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Any) -> ValoriCheckpointer:
        inner = self.saver.with_allowlist(extra_allowlist)
        if inner is self.saver:
            return self
        clone = copy.copy(self)  # shares the memory and its checkpoint bookkeeping
        clone.saver = inner
        clone.serde = inner.serde
        return clone

    def __repr__(self) -> str:
        return f"ValoriCheckpointer(saver={self.saver!r}, memory={self.memory!r})"
