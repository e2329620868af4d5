"""The write path: validate completely, then one event, then apply.

Every mutation goes through :func:`commit` under the write lock: the event is appended to
the log first, then applied to the table, and memory for new rows is reserved before the
append, so once the event is in the log applying it cannot fail half-way. Input is checked
before the lock is taken (:func:`prepare_upsert`, :func:`prepare_plain`), so a call that
raises changes nothing.
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterable, Mapping, MappingView, Sequence
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from valori_store.errors import IdError, InputError, ValoriError
from valori_store.format import events
from valori_store.format.canonical import canonical_metadata_batch
from valori_store.state import convert, machine
from valori_store.state.scratch import release_scratch
from valori_store.state.validate import check_id_list, check_ids, check_text
from valori_store.store import image_policy
from valori_store.store.live import Live


@dataclass
class Prepared:
    """A checked upsert: float rows (converted under the lock), ids (None: generate), texts
    and canonical metadata."""

    x: np.ndarray
    ids: list[str] | None
    texts: list[str | None]
    metas: list[bytes]


def _check_ordered(name: str, values: Any) -> None:
    """Reject sets: a set's order depends on PYTHONHASHSEED, so which vector got which id
    would differ between processes (dict views keep insertion order and are fine)."""
    if isinstance(values, AbstractSet) and not isinstance(values, MappingView):
        raise InputError(f"{name} must be an ordered list (one entry per record, in order), not a "
                         f"{type(values).__name__}: its order would change from one process to the next")


def _check_lengths(name: str, values: Sequence[Any] | None, n: int, what: str = "vectors") -> None:
    if values is None:
        return
    _check_ordered(name, values)
    if isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__"):
        raise InputError(f"{name} must be a list with one entry per {what[:-1]}, got {type(values).__name__}")
    if len(values) != n:
        raise InputError(f"{name} has {len(values)} entries but {n} {what} were given; pass one per {what[:-1]}")


def _unique(ids: list[str]) -> None:
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        for rid in ids:
            if rid in seen:
                raise IdError(f"id {rid!r} appears twice in one upsert; ids in a batch must be unique")
            seen.add(rid)


def prepare_upsert(live: Live, vectors: Any, ids: Sequence[str] | None, texts: Sequence[str | None] | None,
                   metadatas: Sequence[Mapping[str, Any] | None] | None) -> Prepared:
    """Check an upsert's input (nothing changes). Bad vector values are reported before
    other problems (they are found when the rows are converted, under the lock)."""
    table = live.table
    x = convert.float_rows(vectors, table.dim)
    n = len(x)
    try:
        for name, values in (("ids", ids), ("texts", texts), ("metadatas", metadatas)):
            _check_lengths(name, values, n)
        given = None if ids is None else check_ids(ids)
        if given is not None:
            _unique(given)
        text_list = [None] * n if texts is None else [check_text(t, k) for k, t in enumerate(texts)]
        metas = [b"{}"] * n if metadatas is None else canonical_metadata_batch(metadatas)
    except ValoriError:
        convert.stored_rows(x, table.metric)  # bad vector values are reported first
        raise
    return Prepared(x, given, text_list, metas)


def prepare_plain(ids: Sequence[str], texts: Sequence[str | None] | None,
                  metadatas: Sequence[Mapping[str, Any] | None] | None) -> events.Plain:
    """Check records without vectors (ids are required; nothing changes)."""
    _check_ordered("ids", ids)
    if ids is None or isinstance(ids, (str, bytes, Mapping)) or not hasattr(ids, "__len__"):
        raise InputError(f"records without vectors need ids: a list of str, got {type(ids).__name__}")
    given = check_ids(ids)
    n = len(given)
    _check_lengths("texts", texts, n, "ids")
    _check_lengths("metadatas", metadatas, n, "ids")
    _unique(given)
    text_list = [None] * n if texts is None else [check_text(t, k) for k, t in enumerate(texts)]
    metas = [b"{}"] * n if metadatas is None else canonical_metadata_batch(metadatas)
    return events.Plain(given, text_list, metas)


def auto_ids(chain: bytes, n: int) -> list[str]:
    """Deterministic UUID-shaped ids from the log's chain hash (same history, same ids)."""
    out = []
    for i in range(n):
        digest = hashlib.blake2b(chain + i.to_bytes(8, "little"), digest_size=16, person=b"valori-auto-id").digest()
        out.append(str(uuid.UUID(bytes=digest, version=4)))
    return out


def commit(live: Live, ev: events.Event, in_place: bool = False) -> int:
    """Append ``ev`` to the log, then apply it (the caller holds the write lock). The one
    path every mutation takes; returns the event's seq.

    ``in_place``: ``ev`` is an Upsert of new ids whose rows the caller already wrote into
    the free rows at the end of the matrix (see :func:`write`).
    """
    live.check_writable()
    table = live.table
    if not in_place:
        upsert = ev.upsert if isinstance(ev, (events.Restore, events.Write)) else ev
        plain = ev.plain.ids if isinstance(ev, (events.Restore, events.Write)) else []
        extra = (len(upsert.ids) if isinstance(upsert, events.Upsert) else 0) + len(plain)
        if extra:
            table.reserve(table.n + extra)
    if in_place:
        assert isinstance(ev, events.Upsert)
        seq, digests = _append_beside_digests(live, ev)
        table.append_written(ev.ids, ev.texts, ev.metas, ev.packed, digests)
        return seq
    seq = live.log.append(ev.kind, events.encode_parts(ev))
    machine.apply(table, ev)
    return seq


def _append_beside_digests(live: Live, ev: events.Upsert) -> tuple[int, tuple[np.ndarray, np.ndarray] | None]:
    """Log ``ev`` while its records' tree digests are computed on a worker thread (both
    release the GIL: SHA-256 of the log chain and the write, SHA-256 of the leaves); the
    digests depend on the records alone, so the overlap changes no result."""
    table = live.table
    parts = events.encode_parts(ev)
    n = len(ev.ids)
    if table.tree is None or n < OVERLAP_FROM:
        return live.log.append(ev.kind, parts), None
    job = _worker().submit(table.written_digests, ev.packed_records(), n)
    try:
        seq = live.log.append(ev.kind, parts)
    except BaseException:
        job.result()  # never leave it reading rows the caller is about to clear
        raise
    return seq, job.result()


#: Least batch size whose digests are computed beside the log append.
OVERLAP_FROM = 512
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _worker() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="valori-digests")
        return _pool


def present_ids(live: Live, wanted: Iterable[str]) -> list[str]:
    """The ids of ``wanted`` that the store holds, unique, in id order."""
    row_of = live.table.row_of
    return sorted({i for i in wanted if i in row_of}, key=lambda s: s.encode("utf-8"))


def write(live: Live, delete: Iterable[str], prepared: Prepared | None, plain: events.Plain | None) -> list[str]:
    """Delete, then upsert ``prepared`` and ``plain``, as ONE event (caller validated the
    input; this takes the write lock). Returns the upserted ids (vector records first)."""
    wanted = check_id_list(delete)
    plain = plain if plain is not None and plain.ids else events.Plain()
    scratch = 0
    with live.lock.write():
        live.check_open()
        table = live.table
        present = present_ids(live, wanted)
        n = 0 if prepared is None else len(prepared.x)
        ids: list[str] = []
        if n:
            assert prepared is not None
            ids = prepared.ids if prepared.ids is not None else auto_ids(live.log.chain, n)
            if plain.ids and not set(ids).isdisjoint(plain.ids):
                rid = next(i for i in ids if i in set(plain.ids))
                raise IdError(f"id {rid!r} is given both with and without a vector; ids in a batch must be unique")
        if n and not present and not plain.ids and table.row_of.keys().isdisjoint(ids):
            scratch = _append_in_place(live, ids, prepared)  # plain ingest: no copies
        elif n or plain.ids:
            upsert = events.Upsert.empty(table.dim)
            if n:
                assert prepared is not None
                rows, _ = convert.stored_rows(prepared.x, table.metric)
                upsert = events.Upsert(ids, rows, prepared.texts, prepared.metas)
                scratch = 2 * rows.nbytes  # the stored rows (a scratch copy here) and the payload
            ev: events.Event = upsert if not present and not plain.ids else events.Write(present, upsert, plain)
            commit(live, ev)
        elif present:
            commit(live, events.Delete(present))
        image_policy.after_mutation(live)
    release_scratch(scratch)
    return list(ids) + list(plain.ids)


def _append_in_place(live: Live, ids: list[str], prepared: Prepared) -> int:
    """Convert new rows straight into the free rows at the end of the matrix (readers stop
    at ``n`` and never see them), then log and apply; a failure re-zeroes them. Returns the
    batch's size in bytes, for :func:`release_scratch`."""
    table = live.table
    base = table.n
    table.reserve(base + len(ids))
    rows, rowmax = table.matrix[base : base + len(ids)], table.rowmax[base : base + len(ids)]
    try:
        convert.stored_rows_into(prepared.x, table.metric, rows, rowmax)
        commit(live, events.Upsert(ids, rows, prepared.texts, prepared.metas), in_place=True)
    except BaseException:
        rows[:] = 0
        rowmax[:] = 0
        raise
    return rows.nbytes + sum(map(len, prepared.metas))


def delete(live: Live, ids: Iterable[str]) -> int:
    """Remove records by id; missing ids are ignored. Returns how many were removed."""
    wanted = check_id_list(ids)
    with live.lock.write():
        live.check_open()
        present = present_ids(live, wanted)
        if present:
            commit(live, events.Delete(present))
            image_policy.after_mutation(live)
        return len(present)
