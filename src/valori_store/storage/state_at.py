"""The state of a store right after a given event: the one place that computes it.

:func:`state_at` takes a checkpoint image when one holds exactly that state, else replays
the log from empty; :func:`walk_to` serves many positions with one replay (receipt
verification). Both check every frame they read; ``check_digests`` also recomputes the
state digest recorded by every checkpoint and restore on the way. A compacted log starts
from its base image: pass the directory as ``root`` (:func:`base_loader`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from valori_store.errors import CorruptFileError, NotFoundError
from valori_store.format import events
from valori_store.format.frames import Frame
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import page_store
from valori_store.storage.image_files import load_image

Buffer = bytes | memoryview


def base_loader(root: Path | None) -> machine.BaseLoader | None:
    """Loads a compacted log's base image from directory ``root``: the manifest at the base
    event's seq with its chain hash and state root (every page checked)."""
    if root is None:
        return None

    def load(seq: int, base: events.Base) -> RecordTable:
        problem = "it is missing"
        for manifest in reversed(page_store.manifests(root)):
            if manifest.seq == seq and manifest.chain == base.chain and manifest.root == base.root:
                try:
                    return page_store.load_image(root, manifest, base.metric)
                except CorruptFileError as exc:
                    problem = str(exc)
        raise CorruptFileError(f"{root}: the log was compacted at event {seq} and its base image is unusable "
                               f"({problem})")

    return load


def compacted_before(seq: int, base_seq: int) -> NotFoundError:
    """The error for a position a compaction folded away."""
    return NotFoundError(f"event {seq} is before the log's compaction point (event {base_seq}); the state there "
                         f"was folded into the base image and is no longer available")


def walk_to(data: Buffer, what: str, seqs: Iterable[int], check_digests: bool = False,
            on_event: Callable[[Frame], None] | None = None, root: Path | None = None,
            ) -> Iterator[tuple[int | None, machine.ReplayResult]]:
    """One replay of the log from empty; yields ``(seq, result)`` right after each wanted
    event, in log order (the result is live: use it before the next step), and stops after
    the last wanted one. When the log ends first, a final ``(None, result)`` is yielded:
    ``result.scan`` then describes the log's end (e.g. a torn final record). Wanted seqs
    before a compacted log's base are never reached (``result.base_seq`` tells)."""
    wanted = sorted(set(seqs))
    if not wanted:
        return
    last = wanted[-1]
    pending = set(wanted)
    result = None
    for frame, _, result in machine.walk(data, what, check_digests, base_loader(root)):
        if on_event is not None:
            on_event(frame)
        if frame.seq in pending:
            pending.discard(frame.seq)
            yield frame.seq, result
        if frame.seq >= last:
            if pending:  # wanted positions before a compacted log's base
                yield None, result
            return
    if result is not None:
        yield None, result


def replay_result(data: Buffer, what: str, seq: int | None = None, check_digests: bool = False,
                  on_event: Callable[[Frame], None] | None = None, root: Path | None = None) -> machine.ReplayResult:
    """The whole replay result right after event ``seq`` (None: the end of the log)."""
    result = None
    for frame, _, result in machine.walk(data, what, check_digests, base_loader(root)):
        if on_event is not None:
            on_event(frame)
        if seq is not None and frame.seq < result.base_seq:  # pragma: no cover - the base is the first frame
            continue
        if seq is not None and seq < result.base_seq:
            raise compacted_before(seq, result.base_seq)
        if seq is not None and frame.seq >= seq:
            break
    if result is None or (seq is not None and result.events <= seq):
        raise NotFoundError(f"{what}: no event {seq} (the log holds events 0..{(result.events if result else 0) - 1})")
    return result


def state_at(data: Buffer, what: str, seq: int, *, root: Path | None = None, digest: bytes | None = None,
             check_digests: bool = False, on_event: Callable[[Frame], None] | None = None) -> RecordTable:
    """The state right after event ``seq``.

    With ``root`` and ``digest`` (the state digest a checkpoint at ``seq`` recorded), the
    image of that checkpoint is used when it holds exactly that state; otherwise the log
    ``data`` is replayed from empty (or a compacted log's base image in ``root``) up to
    ``seq``. NotFoundError when the log is shorter, or ``seq`` is before its base.
    """
    if root is not None and digest is not None:
        img = load_image(root, seq)
        if img is not None and img.seq == seq:
            table = RecordTable.from_content(img.content)
            if table.state_digest() == digest:
                return table
    return replay_result(data, what, seq, check_digests, on_event, root).table
