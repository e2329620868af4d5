"""ValoriStore: the deterministic vector store (in memory or durable in a directory).

Every mutation is one event: validated completely first, appended to the event log,
then applied, so a failing call changes nothing. Mutations are serialised by a
readers-writer lock; searches share it and run concurrently (the kernels release the GIL).
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from valori_store import spec
from valori_store.errors import ClosedError, CorruptFileError, IdError, InputError, NotFoundError, ValoriError
from valori_store.format import events, snapshot
from valori_store.format.canonical import (
    canonical_json,
    canonical_metadata_batch,
    check_id_list,
    check_ids,
    check_text,
    decode_metadata,
)
from valori_store.history import receipts, sessions
from valori_store.query import mmr, retrieval
from valori_store.query.filters import split_ids
from valori_store.records import Checkpoint, Hit, Record
from valori_store.state import convert as conversion
from valori_store.state import machine
from valori_store.state.scratch import release_scratch
from valori_store.state.table import RecordTable
from valori_store.storage import directory
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog, spill_log
from valori_store.store.rwlock import ReadWriteLock

DURABILITY = ("fsync", "batch", "none")


def _check_k(k: Any) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise InputError(f"k must be a non-negative int, got {k!r}")
    return int(k)


def _check_lengths(name: str, values: Sequence[Any] | None, n: int) -> None:
    if values is not None and len(values) != n:
        raise InputError(f"{name} has {len(values)} entries but {n} vectors were given; pass one per vector")


class ValoriStore:
    """A deterministic vector store.

    ``ValoriStore(dim, metric)`` keeps its records in memory (its event log is spilled to an
    unlinked temporary file, so history does not double resident memory);
    :meth:`open` keeps the log and checkpoint images in a directory and recovers them.
    Stored vectors are Q16.16 int32; under ``cosine`` they are integer-normalised at
    ingest. Results are ordered by score descending, then id ascending (UTF-8 bytes).
    """

    def __init__(self, dim: int, metric: str = "cosine") -> None:
        dim = spec.check_dim(dim)
        metric = spec.check_metric(metric)
        log = spill_log()
        log.append(events.CREATE, events.encode(events.Create(dim, metric)))
        self._setup(RecordTable(dim), metric, log, [], None, None)

    def _setup(
        self, table: RecordTable, metric: str, log: FileLog, checkpoints: list[Checkpoint],
        root: Path | None, lock_fd: int | None, notes: list[tuple[int, events.Note]] | None = None,
    ) -> None:
        self._table = table
        self._metric = metric
        self._log = log
        self._checkpoints = checkpoints
        self._notes: list[tuple[int, events.Note]] = list(notes or [])
        self._root = root
        self._lock_fd = lock_fd
        self._lock = ReadWriteLock()
        self._digest: bytes | None = None
        self._closed = False

    # ------------------------------------------------------------------ constructors
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], dim: int | None = None, metric: str | None = None,
        durability: str = "fsync",
    ) -> ValoriStore:
        """Open (or create, when ``dim`` is given) a durable store in directory ``path``.

        ``dim`` and ``metric`` are read back from an existing store; passing different
        ones raises InputError. ``durability``: ``fsync`` (each write is on disk when the
        call returns), ``batch`` (a background fsync every 64 writes / 64 MiB; a blocking one
        at checkpoints, ``sync()`` and close),
        ``none`` (left to the OS). A second writer on the same directory gets LockedError.
        """
        if durability not in DURABILITY:
            raise InputError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise InputError(f"{root} is a file; ValoriStore.open takes a directory (use ValoriStore.load for snapshots)")
        if directory.exists(root):
            rec = directory.recover(
                root, durability, None if dim is None else spec.check_dim(dim),
                None if metric is None else spec.check_metric(metric),
            )
        else:
            if dim is None:
                raise NotFoundError(f"no valori store at {root}; pass dim= (and metric=) to create one")
            rec = directory.create(root, spec.check_dim(dim), spec.check_metric(metric or "cosine"), durability)
        store = cls.__new__(cls)
        store._setup(rec.table, rec.metric, rec.log, rec.checkpoints, root, rec.lock_fd, rec.notes)
        store.recovered_dropped_bytes = rec.dropped_bytes
        return store

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> ValoriStore:
        """An in-memory store holding a snapshot's content (digest and lengths verified)."""
        table, metric = snapshot.decode(data)
        store = cls(table.dim, metric)
        if table.n:  # the log records the content as one upsert, in id order (the table is built)
            ev = events.Upsert(table.ids, table.matrix[: table.n], table.texts, table.metas)
            store._log.append(ev.kind, events.encode_parts(ev))
            store._table = table
        return store

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ValoriStore:
        """Load a snapshot file written by :meth:`save` into a new in-memory store."""
        p = Path(path)
        try:
            data = p.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"no snapshot file at {p}") from None
        except IsADirectoryError:
            raise InputError(f"{p} is a directory; use ValoriStore.open for store directories") from None
        try:
            return cls.from_bytes(data)
        except CorruptFileError as exc:
            raise type(exc)(f"{p}: {exc}") from None

    # ------------------------------------------------------------------ properties
    @property
    def dim(self) -> int:
        return self._table.dim

    @property
    def metric(self) -> str:
        return self._metric

    @property
    def path(self) -> Path | None:
        """The store directory, or None for an in-memory store."""
        return self._root

    @property
    def durability(self) -> str | None:
        return self._log.durability if self._log.durable else None

    @property
    def log_length(self) -> int:
        """Number of events in the log (the create event included)."""
        return self._log.next_seq

    def __len__(self) -> int:
        return self._table.n

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and record_id in self._table.row_of

    def __repr__(self) -> str:
        where = f"path={str(self._root)!r}" if self._root else "in memory"
        return f"ValoriStore(dim={self.dim}, metric={self.metric!r}, records={len(self)}, {where})"

    def ids(self) -> list[str]:
        """Every id, in canonical order (ascending UTF-8 bytes)."""
        with self._lock.read():
            t = self._table
            return [t.ids[r] for r in t.id_order()]

    # ------------------------------------------------------------------ input preparation
    def _auto_ids(self, n: int) -> list[str]:
        """Deterministic UUID-shaped ids from the log's chain hash (same history, same ids)."""
        base = self._log.chain
        out = []
        for i in range(n):
            digest = hashlib.blake2b(base + i.to_bytes(8, "little"), digest_size=16, person=b"valori-auto-id").digest()
            out.append(str(uuid.UUID(bytes=digest, version=4)))
        return out

    # ------------------------------------------------------------------ mutations
    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError("this store is closed; open it again")

    def _commit(self, ev: events.Event, in_place: bool = False) -> int:
        """Append to the log, then apply (the caller holds the write lock). The one path
        every mutation takes.

        Memory for new rows is reserved first, so once the event is in the log, applying
        it cannot fail half-way and leave the live state behind the log. ``in_place``: ``ev``
        is an Upsert of new ids whose rows the caller already wrote into the free rows at
        the end of the matrix (see :meth:`_commit_upsert`).
        """
        upsert = ev.upsert if isinstance(ev, (events.Restore, events.Write)) else ev
        if isinstance(upsert, events.Upsert) and not in_place:
            self._table.reserve(self._table.n + len(upsert.ids))
        seq = self._log.append(ev.kind, events.encode_parts(ev))
        if in_place:
            assert isinstance(ev, events.Upsert)
            self._table.append_written(ev.ids, ev.texts, ev.metas)
        else:
            machine.apply(self._table, ev)
        self._digest = None
        return seq

    def upsert(
        self, vectors: Any, ids: Sequence[str] | None = None, texts: Sequence[str | None] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Insert or overwrite records; returns their ids (generated when ``ids`` is None).

        The batch is atomic: every vector, id, text and metadata is validated before
        anything changes. Generated ids are UUID-shaped and derived from the log's hash
        chain, so the same history generates the same ids.
        """
        if vectors is None:
            raise InputError("upsert needs vectors: a (n, dim) array or a list of n vectors")
        return self.write(vectors=vectors, ids=ids, texts=texts, metadatas=metadatas)

    def _prepare_upsert(
        self, vectors: Any, ids: Sequence[str] | None, texts: Sequence[str | None] | None,
        metadatas: Sequence[Mapping[str, Any] | None] | None,
    ) -> tuple[np.ndarray, list[str] | None, list[str | None], list[bytes]]:
        """Check an upsert's input (nothing changes): float rows, ids, texts, metadata bytes.

        The float rows are converted to stored form later, under the write lock (see
        :meth:`_commit_upsert`), and raise there if a value is bad.
        """
        x = conversion.float_rows(vectors, self.dim)
        n = len(x)
        try:
            for name, values in (("ids", ids), ("texts", texts), ("metadatas", metadatas)):
                if values is not None and (isinstance(values, (str, bytes, Mapping)) or not hasattr(values, "__len__")):
                    raise InputError(f"{name} must be a list with one entry per vector, got {type(values).__name__}")
                _check_lengths(name, values, n)
            given = None if ids is None else check_ids(ids)
            if given is not None and len(set(given)) != n:
                seen: set[str] = set()
                for rid in given:
                    if rid in seen:
                        raise IdError(f"id {rid!r} appears twice in one upsert; ids in a batch must be unique")
                    seen.add(rid)
            text_list = [None] * n if texts is None else [check_text(t, k) for k, t in enumerate(texts)]
            metas = [b"{}"] * n if metadatas is None else canonical_metadata_batch(metadatas)
        except ValoriError:
            conversion.stored_rows(x, self._metric)  # bad vector values are reported first
            raise
        return x, given, text_list, metas

    def _commit_upsert(
        self, present: list[str], ids: list[str], x: np.ndarray, texts: list[str | None], metas: list[bytes]
    ) -> int:
        """Convert, log and apply an upsert (after deleting ``present``); caller holds the write lock.
        Returns the batch's size in bytes, for :func:`release_scratch`.

        When nothing is deleted and every id is new (plain ingest), the rows are converted
        straight into the free rows at the end of the matrix, which readers never see
        (they stop at ``n``); a failure re-zeroes them, so nothing changes.
        """
        t = self._table
        if present or not t.row_of.keys().isdisjoint(ids):
            rows, _ = conversion.stored_rows(x, self._metric)
            upsert = events.Upsert(ids, rows, texts, metas)
            self._commit(events.Write(present, upsert) if present else upsert)
            return 2 * rows.nbytes  # the stored rows (a scratch copy here) and the payload
        base = t.n
        t.reserve(base + len(ids))
        rows, rowmax = t.matrix[base : base + len(ids)], t.rowmax[base : base + len(ids)]
        try:
            conversion.stored_rows_into(x, self._metric, rows, rowmax)
            self._commit(events.Upsert(ids, rows, texts, metas), in_place=True)
        except BaseException:
            rows[:] = 0
            rowmax[:] = 0
            raise
        return rows.nbytes + sum(map(len, metas))  # the batch's vectors and metadata

    def write(
        self, *, delete: Iterable[str] = (), vectors: Any = None, ids: Sequence[str] | None = None,
        texts: Sequence[str | None] | None = None, metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Delete ``delete`` then upsert the given records, as ONE atomic event.

        Either both happen or neither (also across a crash: it is one log record). Missing
        ids in ``delete`` are ignored; an id both deleted and upserted ends up upserted.
        With only deletes or only upserts it logs exactly what :meth:`delete` /
        :meth:`upsert` would. Returns the upserted ids.
        """
        wanted = check_id_list(delete)
        if vectors is None:
            if ids is not None or texts is not None or metadatas is not None:
                raise InputError("write got ids/texts/metadatas without vectors")
            self.delete(wanted)
            return []
        x, given, text_list, metas = self._prepare_upsert(vectors, ids, texts, metadatas)
        n = len(x)
        with self._lock.write():
            self._check_open()
            present = sorted({i for i in wanted if i in self._table.row_of}, key=lambda s: s.encode("utf-8"))
            final_ids = [] if n == 0 else (given if given is not None else self._auto_ids(n))
            scratch = 0
            if n:
                scratch = self._commit_upsert(present, final_ids, x, text_list, metas)
            elif present:
                self._commit(events.Delete(present))
        del x, metas
        release_scratch(scratch)
        return list(final_ids)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove records by id; missing ids are ignored. Returns how many were removed."""
        wanted = check_id_list(ids)
        with self._lock.write():
            self._check_open()
            present = sorted({i for i in wanted if i in self._table.row_of}, key=lambda s: s.encode("utf-8"))
            if not present:
                return 0
            self._commit(events.Delete(present))
            return len(present)

    # ------------------------------------------------------------------ reads
    def _record(self, row: int) -> Record:
        t = self._table
        vec = t.matrix[row].copy()
        vec.flags.writeable = False
        return Record(t.ids[row], vec, t.texts[row], decode_metadata(t.metas[row]))

    def get(self, ids: Iterable[str]) -> list[Record]:
        """Records for the ids that exist, in input order (missing ids are skipped)."""
        wanted = check_id_list(ids)
        with self._lock.read():
            rows = [self._table.row_of.get(i) for i in wanted]
            return [self._record(r) for r in rows if r is not None]

    def select(
        self, filter: Mapping[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Record]:
        """Records passing ``filter`` (``$ids`` included), in id order, no vector involved.

        One consistent view (taken under the read lock); ``offset``/``limit`` page through it.
        """
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"offset must be an int >= 0, got {offset!r}")
        if limit is not None:
            limit = _check_k(limit)
        split_ids(filter)
        with self._lock.read():
            self._check_open()
            t = self._table
            mask = retrieval.mask(t, filter)
            order = t.id_order()
            rows = [r for r in order if mask[r]] if mask is not None else list(order)
            end = None if limit is None else offset + limit
            return [self._record(r) for r in rows[offset:end]]

    def _prepare_query(self, vectors: Any) -> tuple[np.ndarray, np.ndarray]:
        """(Q16.16 rows as given, rows in stored form: normalised under cosine)."""
        return conversion.query_forms(vectors, self.dim, self._metric)

    def _live_state_hash(self) -> str:
        """State hash under a held (read or write) lock; readers may fill the cache, since
        no writer can run while they hold the lock and every reader computes the same value."""
        digest = self._digest
        if digest is None:
            digest = self._digest = snapshot.state_digest(self._table, self._metric)
        return digest.hex()

    def _receipts(
        self, raw_rows: np.ndarray, rankings: list[list[tuple[int, int]]], k: int,
        filter: Mapping[str, Any] | None, mode: str = "search", fetch_k: int | None = None,
        lam: Fraction | None = None,
    ) -> list[receipts.Receipt]:
        """Receipts for searches just run on the live table (caller holds the read lock)."""
        digest = bytes.fromhex(self._live_state_hash())
        seq = self._log.next_seq - 1
        ids = self._table.ids
        return [
            receipts.make(state_digest=digest, seq=seq, metric=self._metric, query=row, k=k, filter=filter,
                          ranked=[(ids[r], raw) for r, raw in ranked], mode=mode, fetch_k=fetch_k, lam=lam)
            for row, ranked in zip(raw_rows, rankings)
        ]

    def _run_search(self, vector: Any, k: int, filter: Mapping[str, Any] | None, want: bool
                    ) -> tuple[list[Hit], receipts.Receipt | None]:
        k = _check_k(k)
        raw, query = self._prepare_query(vector)
        if len(query) != 1:
            raise InputError(f"search takes one vector; got {len(query)} (use search_batch)")
        split_ids(filter)  # validate before taking the lock
        with self._lock.read():
            self._check_open()
            ranked = retrieval.rank(self._table, self._metric, query[0], k, filter)
            receipt = None
            if want or receipts.recording():
                receipt = self._receipts(raw, [ranked], k, filter)[0]
                receipts.emit([receipt], self)
            return retrieval.hits(self._table, self._metric, ranked), receipt

    def search(self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """Exact top-k for one query vector, filtered before ranking (k hits whenever k match)."""
        return self._run_search(vector, k, filter, False)[0]

    def search_with_receipt(
        self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None
    ) -> tuple[list[Hit], receipts.Receipt]:
        """:meth:`search` plus its retrieval receipt (see :mod:`valori_store.receipts`)."""
        hits, receipt = self._run_search(vector, k, filter, True)
        assert receipt is not None
        return hits, receipt

    def search_batch(self, vectors: Any, k: int = 4, filter: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Exact top-k for each query; each result equals :meth:`search` of that query alone."""
        k = _check_k(k)
        raw, queries = self._prepare_query(vectors)
        split_ids(filter)
        with self._lock.read():
            self._check_open()
            ranked = retrieval.rank_batch(self._table, self._metric, queries, k, filter)
            if receipts.recording():
                receipts.emit(self._receipts(raw, ranked, k, filter), self)
            return [retrieval.hits(self._table, self._metric, r) for r in ranked]

    def _run_mmr(
        self, vector: Any, k: int, fetch_k: int, lambda_mult: float, filter: Mapping[str, Any] | None, want: bool,
    ) -> tuple[list[Hit], receipts.Receipt | None]:
        k = _check_k(k)
        fetch_k = max(_check_k(fetch_k), k)
        lam = mmr.check_lambda(lambda_mult)
        raw, query = self._prepare_query(vector)
        if len(query) != 1:
            raise InputError(f"mmr_search takes one vector; got {len(query)}")
        split_ids(filter)
        with self._lock.read():
            self._check_open()
            ranked = retrieval.rank_mmr(self._table, self._metric, query[0], k, fetch_k, lam, filter)
            receipt = None
            if want or receipts.recording():
                receipt = self._receipts(raw, [ranked], k, filter, "mmr", fetch_k, lam)[0]
                receipts.emit([receipt], self)
            return retrieval.hits(self._table, self._metric, ranked), receipt

    def mmr_search(
        self,
        vector: Any,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Maximal marginal relevance: ``k`` diverse hits among the exact top ``fetch_k``.

        ``lambda_mult`` in [0, 1] (1 = pure relevance, 0 = most diverse) is used as an exact
        fraction and all similarities are exact integers (see :mod:`valori_store.mmr`), so
        the selection is deterministic. Hits come in pick order and carry their query score.
        """
        return self._run_mmr(vector, k, fetch_k, lambda_mult, filter, False)[0]

    def mmr_search_with_receipt(
        self, vector: Any, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
    ) -> tuple[list[Hit], receipts.Receipt]:
        """:meth:`mmr_search` plus its retrieval receipt."""
        hits, receipt = self._run_mmr(vector, k, fetch_k, lambda_mult, filter, True)
        assert receipt is not None
        return hits, receipt

    def verify_receipt(self, receipt: receipts.Receipt | Mapping[str, Any] | str) -> receipts.ReceiptCheck:
        """Re-execute a receipt's search at its recorded state (see :func:`receipts.verify_receipt`)."""
        return receipts.verify_receipt(self, receipt)

    # ------------------------------------------------------------------ state
    def _state_digest(self) -> bytes:
        if self._digest is None:
            self._digest = snapshot.state_digest(self._table, self._metric)
        return self._digest

    def state_hash(self) -> str:
        """Hex tagged SHA-256 of the canonical state (equal content, equal hash)."""
        with self._lock.read():
            return self._live_state_hash()

    def to_bytes(self) -> bytes:
        """Canonical snapshot bytes (docs/format.md); its trailing digest is the state hash."""
        with self._lock.read():
            return snapshot.encode(self._table, self._metric)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the snapshot to ``path`` atomically (temp file, fsync, rename)."""
        write_atomic(path, self.to_bytes())

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Record the current state as a checkpoint event; returns (seq, state_hash, label)."""
        if label is not None and type(label) is not str:
            raise InputError(f"label must be a str or None, got {type(label).__name__}")
        with self._lock.write():
            self._check_open()
            digest = self._state_digest()
            seq = self._commit(events.CheckpointMark(label, digest))
            cp = Checkpoint(seq, digest.hex(), label)
            self._checkpoints.append(cp)
            if self._root is not None and self._log.durable:
                try:
                    directory.write_image(self._root, seq, self._log, list(self._checkpoints), snapshot.encode(
                        self._table, self._metric))
                except OSError as exc:  # the checkpoint is in the log; only the fast path is lost
                    warnings.warn(
                        f"checkpoint {seq} is logged but its image could not be written ({exc}); "
                        f"restoring it will replay the log instead", directory.RecoveryWarning, stacklevel=2,
                    )
            return cp

    # ------------------------------------------------------------------ notes and sessions
    def _note(self, topic: str, body: Mapping[str, Any]) -> int:
        """Append a note event (changes no record); returns its seq."""
        ev = events.Note(topic, canonical_json(dict(body)))
        with self._lock.write():
            self._check_open()
            seq = self._commit(ev)
            self._notes.append((seq, ev))
            return seq

    def _notes_snapshot(self) -> list[tuple[int, events.Note]]:
        with self._lock.read():
            return list(self._notes)

    def session(self, name: str) -> sessions.Session:
        """Resume the session ``name``, or start it (see :mod:`valori_store.sessions`)."""
        return sessions.open_session(self, name)

    def sessions(self) -> list[sessions.SessionInfo]:
        """Every session of this store, in the order they were started."""
        return sessions.list_sessions(self)

    def fork_session(self, name: str, source: str, turn: int) -> sessions.Session:
        """A new session with ``source``'s history up to ``turn``; the store is rewound there."""
        return sessions.fork_session(self, name, source, turn)

    def history(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first (restores never erase any)."""
        with self._lock.read():
            return list(self._checkpoints)

    def _resolve(self, target: Checkpoint | str | int) -> Checkpoint:
        cps = self._checkpoints
        if isinstance(target, Checkpoint):
            found = [c for c in cps if c.seq == target.seq]
            if not found or found[0].state_hash != target.state_hash:
                raise NotFoundError(f"checkpoint {target.seq} ({target.state_hash[:12]}...) is not in this store's history")
            return found[0]
        if isinstance(target, str):
            found = [c for c in cps if c.label == target]
            if not found:
                raise NotFoundError(f"no checkpoint labelled {target!r}; history() lists them")
            return found[-1]
        if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
            found = [c for c in cps if c.seq == int(target)]
            if not found:
                raise NotFoundError(f"no checkpoint at seq {target}; history() lists them")
            return found[0]
        raise InputError(f"restore takes a Checkpoint, a label (str) or a seq (int), got {type(target).__name__}")

    def _table_at(self, cp: Checkpoint) -> RecordTable:
        """The state as it was at checkpoint ``cp``: its image when that image holds exactly
        the checkpoint's state, else a replay of the log up to it."""
        if self._root is not None:
            img = directory.load_image(self._root, cp.seq)
            if img is not None and snapshot.state_digest(img.table, self._metric).hex() == cp.state_hash:
                return img.table
        return machine.replay(self._log.read_all(), "event log", upto_seq=cp.seq).table

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind the live store to a checkpoint's exact state (logged as a restore event).

        ``target`` is a Checkpoint, a label (the latest checkpoint with it) or a seq.
        Returns the checkpoint restored to. History is kept: later checkpoints stay
        listed and can be restored too.
        """
        with self._lock.write():
            self._check_open()
            cp = self._resolve(target)
            past = self._table_at(cp)
            if snapshot.state_digest(past, self._metric).hex() != cp.state_hash:
                raise CorruptFileError(
                    f"replaying the log to checkpoint {cp.seq} does not reproduce its recorded state hash; "
                    f"run valori_store.verify on the store"
                )
            ev = _diff(self._table, past, cp)
            self._commit(ev)
            if self._state_digest().hex() != cp.state_hash:  # pragma: no cover - internal invariant
                raise CorruptFileError("restore did not reproduce the checkpoint state")
            return cp

    # ------------------------------------------------------------------ durability
    def sync(self) -> None:
        """Force the log to disk now (durable stores)."""
        with self._lock.write():
            self._log.sync()

    def close(self) -> None:
        """Sync and release the directory lock; further calls raise ClosedError.

        If the final sync fails (or reports a failed background fsync) the error is raised,
        but the store is closed and the lock released all the same.
        """
        with self._lock.write():
            if self._closed:
                return
            try:
                self._log.close()
            finally:
                if self._lock_fd is not None:
                    directory.release_lock(self._lock_fd)
                    self._lock_fd = None
                self._closed = True

    def __enter__(self) -> ValoriStore:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            if not getattr(self, "_closed", True):
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def verify(self) -> Any:
        """Replay this store's log from empty and check it (see :func:`valori_store.verify`)."""
        from valori_store.history.verify import verify_log_bytes

        with self._lock.read():
            return verify_log_bytes(self._log.read_all(), "event log", self._state_digest())


def _diff(current: RecordTable, past: RecordTable, cp: Checkpoint) -> events.Restore:
    """The restore event turning ``current`` into ``past``: deletions then upserts, id order."""
    key = lambda s: s.encode("utf-8")  # noqa: E731
    deletes = sorted((i for i in current.row_of if i not in past.row_of), key=key)
    changed = []
    for rid in sorted(past.row_of, key=key):
        pr = past.row_of[rid]
        cr = current.row_of.get(rid)
        if (
            cr is None
            or current.texts[cr] != past.texts[pr]
            or current.metas[cr] != past.metas[pr]
            or not np.array_equal(current.matrix[cr], past.matrix[pr])
        ):
            changed.append(pr)
    up = events.Upsert(
        [past.ids[r] for r in changed],
        past.matrix[changed] if changed else np.zeros((0, past.dim), dtype=np.int32),
        [past.texts[r] for r in changed],
        [past.metas[r] for r in changed],
    )
    return events.Restore(cp.seq, bytes.fromhex(cp.state_hash), deletes, up)
