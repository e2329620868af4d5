"""The core store facade: validates arguments and forwards to the layer that owns the work.

:class:`Store` is everything a store does with its own state: constructors, mutations
(:mod:`.writes`), reads and searches (:mod:`valori_store.query`), checkpoints and restore
(:mod:`.checkpoints`), notes, read views and durability. Receipt verification, sessions
and log verification live above, in :mod:`valori_store.history`;
:class:`valori_store.ValoriStore` adds them to this class.

Every mutation is one event: validated completely first, appended to the event log, then
applied, so a failing call changes nothing. Mutations are serialised by a readers-writer
lock; searches share it and run concurrently (the kernels release the GIL).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from valori_store import spec
from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import events, snapshot
from valori_store.format.canonical import canonical_json, decode_metadata
from valori_store.query import receipt as receipts
from valori_store.query.filter import Filter
from valori_store.query.query import Query, check_k, hits, parse_queries
from valori_store.query.relevance import relevance
from valori_store.records import Annotation, Checkpoint, Hit, Record
from valori_store.state.table import RecordTable
from valori_store.state.validate import check_id_list
from valori_store.storage import layout, recovery
from valori_store.storage.atomic import write_atomic
from valori_store.storage.filelog import FileLog, spill_log
from valori_store.storage.layout import exists
from valori_store.storage.lock import release_lock
from valori_store.store import checkpoints, writes
from valori_store.store.live import Live

DURABILITY = ("fsync", "batch", "none")


@dataclass(frozen=True)
class StateView:
    """A consistent view of a store's state: ``table`` after event ``seq`` (do not mutate).

    From :meth:`Store.view` it is valid inside the ``with`` block only (the read lock is
    held), and :meth:`read_log` gives the log up to ``seq``; from :meth:`Store.state_at` it
    is a copy that stays valid (and has no log).
    """

    table: RecordTable
    seq: int
    log: FileLog | None = None

    @property
    def state_hash(self) -> str:
        return self.table.state_hash()

    def read_log(self) -> bytes:
        """The event log's bytes up to ``seq`` (views from :meth:`Store.view` only)."""
        if self.log is None:
            raise InputError("this view has no log (it is a copy from state_at)")
        return self.log.read_all()


class Store:
    """A deterministic vector store (the core; use :class:`valori_store.ValoriStore`).

    ``Store(dim, metric)`` keeps its records in memory (its event log is spilled to an
    unlinked temporary file, so history does not double resident memory); :meth:`open`
    keeps the log and checkpoint images in a directory and recovers them. Stored vectors
    are Q16.16 int32; under ``cosine`` they are integer-normalised at ingest. Results are
    ordered by score descending, then id ascending (UTF-8 bytes).
    """

    _live: Live

    def __init__(self, dim: int, metric: str = "cosine") -> None:
        dim = spec.check_dim(dim)
        metric = spec.check_metric(metric)
        log = spill_log()
        log.append(events.CREATE, events.encode(events.Create(dim, metric)))
        self._live = Live(RecordTable(dim, metric), log, [], [])

    @classmethod
    def _from_live(cls, live: Live) -> Any:
        store = cls.__new__(cls)
        store._live = live
        return store

    # ------------------------------------------------------------------ constructors
    @classmethod
    def open(
        cls, path: str | os.PathLike[str], dim: int | None = None, metric: str | None = None,
        durability: str = "fsync",
    ) -> Any:
        """Open (or create, when ``dim`` is given) a durable store in directory ``path``.

        ``dim`` and ``metric`` are read back from an existing store; passing different
        ones raises InputError. ``durability``: ``fsync`` (each write is on disk when the
        call returns), ``batch`` (a background fsync every 64 writes / 64 MiB; a blocking one
        at checkpoints, ``sync()`` and close), ``none`` (left to the OS). A second writer on
        the same directory gets LockedError.
        """
        if durability not in DURABILITY:
            raise InputError(f"durability must be one of {', '.join(DURABILITY)}, got {durability!r}")
        root = Path(path)
        if root.exists() and not root.is_dir():
            raise InputError(f"{root} is a file; ValoriStore.open takes a directory (use ValoriStore.load for snapshots)")
        if exists(root):
            rec = recovery.recover(root, durability, None if dim is None else spec.check_dim(dim),
                                   None if metric is None else spec.check_metric(metric))
        else:
            if dim is None:
                raise NotFoundError(f"no valori store at {root}; pass dim= (and metric=) to create one")
            rec = recovery.create(root, spec.check_dim(dim), spec.check_metric(metric or "cosine"), durability)
        assert rec.log is not None
        store = cls._from_live(Live(rec.table, rec.log, rec.checkpoints, rec.notes, root, rec.lock_fd))
        store.recovered_dropped_bytes = rec.dropped_bytes
        return store

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str], recovered: recovery.Recovered | None = None) -> Any:
        """A read-only store over a directory (its head state; no lock taken, nothing
        written, a torn tail only reported) or a snapshot file. Searches, receipts (bound to
        the directory's own log positions), notes and history work; every mutation raises
        ReadOnlyError. ``recovered``: the directory's :func:`recovery.recover_readonly`, if
        the caller already has it."""
        p = Path(path)
        if layout.classify(p) == layout.SNAPSHOT:
            store = cls.load(p)
            store._live.read_only = True
            return store
        rec = recovered if recovered is not None else recovery.recover_readonly(p)
        assert rec.view is not None
        view = rec.view
        log = FileLog(open(view.path, "rb"), view.good_end, view.chain, view.events, "none", durable=False)
        return cls._from_live(Live(rec.table, log, rec.checkpoints, rec.notes, p, read_only=True))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Any:
        """An in-memory store holding a snapshot's content (digest and lengths verified)."""
        table = RecordTable.from_content(snapshot.decode(data))
        store = cls(table.dim, table.metric.name)
        live = store._live
        if table.n:  # the log records the content as one event, in id order (the table is built)
            content = table.content()
            if content.plain is None:
                ev: events.Event = events.Upsert(content.ids, content.rows, content.texts, content.metas)
            else:
                has = [i for i, f in enumerate(content.plain.tolist()) if not f]
                no = [i for i, f in enumerate(content.plain.tolist()) if f]
                ev = events.Write([], events.Upsert([content.ids[i] for i in has], content.rows[has],
                                                    [content.texts[i] for i in has], [content.metas[i] for i in has]),
                                  events.Plain([content.ids[i] for i in no], [content.texts[i] for i in no],
                                               [content.metas[i] for i in no]))
            live.log.append(ev.kind, events.encode_parts(ev))
            live.table = table
        return store

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
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
        return self._live.table.dim

    @property
    def metric(self) -> str:
        return self._live.table.metric.name

    @property
    def path(self) -> Path | None:
        """The store directory, or None for an in-memory store."""
        return self._live.root

    @property
    def durability(self) -> str | None:
        log = self._live.log
        return log.durability if log.durable else None

    @property
    def log_length(self) -> int:
        """Number of events in the log (the create event included)."""
        return self._live.log.next_seq

    @property
    def read_only(self) -> bool:
        """True for a store opened read-only (every mutation raises ReadOnlyError)."""
        return self._live.read_only

    def __len__(self) -> int:
        return self._live.table.n

    def __contains__(self, record_id: object) -> bool:
        return isinstance(record_id, str) and record_id in self._live.table.row_of

    def __repr__(self) -> str:
        where = f"path={str(self.path)!r}" if self.path else "in memory"
        return f"ValoriStore(dim={self.dim}, metric={self.metric!r}, records={len(self)}, {where})"

    # ------------------------------------------------------------------ mutations
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

    def upsert_plain(
        self, ids: Sequence[str], texts: Sequence[str | None] | None = None,
        metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Insert or overwrite records *without a vector*: found by :meth:`get` and
        :meth:`select`, never ranked by a search. Atomic like :meth:`upsert`."""
        return self.write(plain_ids=ids, plain_texts=texts, plain_metadatas=metadatas)

    def write(
        self, *, delete: Iterable[str] = (), vectors: Any = None, ids: Sequence[str] | None = None,
        texts: Sequence[str | None] | None = None, metadatas: Sequence[Mapping[str, Any] | None] | None = None,
        plain_ids: Sequence[str] | None = None, plain_texts: Sequence[str | None] | None = None,
        plain_metadatas: Sequence[Mapping[str, Any] | None] | None = None,
    ) -> list[str]:
        """Delete ``delete``, then upsert the given records, as ONE atomic event.

        Either all of it happens or none (also across a crash: it is one log record).
        Missing ids in ``delete`` are ignored; an id both deleted and upserted ends up
        upserted. ``plain_*`` are records without a vector (see :meth:`upsert_plain`). With
        only deletes or only upserts it logs exactly what :meth:`delete` / :meth:`upsert`
        would. Returns the upserted ids (records with vectors first).
        """
        if vectors is None and (ids is not None or texts is not None or metadatas is not None):
            raise InputError("write got ids/texts/metadatas without vectors")
        if plain_ids is None and (plain_texts is not None or plain_metadatas is not None):
            raise InputError("write got plain_texts/plain_metadatas without plain_ids")
        live = self._live
        prepared = None if vectors is None else writes.prepare_upsert(live, vectors, ids, texts, metadatas)
        plain = None if plain_ids is None else writes.prepare_plain(plain_ids, plain_texts, plain_metadatas)
        return writes.write(live, delete, prepared, plain)

    def delete(self, ids: Iterable[str]) -> int:
        """Remove records by id; missing ids are ignored. Returns how many were removed."""
        return writes.delete(self._live, ids)

    # ------------------------------------------------------------------ reads
    def _record(self, row: int) -> Record:
        t = self._live.table
        vec = None
        if t.has_vector(row):
            vec = t.matrix[row].copy()
            vec.flags.writeable = False
        return Record(t.ids[row], vec, t.texts[row], decode_metadata(t.metas[row]))

    def ids(self) -> list[str]:
        """Every id, in canonical order (ascending UTF-8 bytes)."""
        with self._live.lock.read():
            t = self._live.table
            return [t.ids[r] for r in t.id_order()]

    def get(self, ids: Iterable[str]) -> list[Record]:
        """Records for the ids that exist, in input order (missing ids are skipped)."""
        wanted = check_id_list(ids)
        with self._live.lock.read():
            rows = [self._live.table.row_of.get(i) for i in wanted]
            return [self._record(r) for r in rows if r is not None]

    def _selected_rows(self, filter: Mapping[str, Any] | None, limit: int | None, offset: int) -> Iterator[int]:
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise InputError(f"offset must be an int >= 0, got {offset!r}")
        if limit is not None:
            limit = check_k(limit, "limit")
        flt = Filter.compile(filter)
        with self._live.lock.read():
            self._live.check_open()
            rows = flt.rows(self._live.table)
            end = None if limit is None else offset + limit
            yield from rows[offset:end]

    def select(
        self, filter: Mapping[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Record]:
        """Records passing ``filter`` (``$ids`` included), in id order, no vector involved.

        One consistent view (taken under the read lock); ``offset``/``limit`` page through it.
        """
        rows = self._selected_rows(filter, limit, offset)
        with self._live.lock.read():
            return [self._record(r) for r in list(rows)]

    def select_ids(self, filter: Mapping[str, Any] | None = None, limit: int | None = None,
                   offset: int = 0) -> list[str]:
        """Ids of the records passing ``filter``, in id order (like :meth:`select`, no decoding)."""
        ids = self._live.table.ids
        return [ids[r] for r in list(self._selected_rows(filter, limit, offset))]

    # ------------------------------------------------------------------ searches
    def _search(self, queries: list[Query], want: bool) -> tuple[list[list[Hit]], list[receipts.Receipt] | None]:
        live = self._live
        with live.lock.read():
            live.check_open()
            table = live.table
            rankings = Query.run_batch(queries, table) if len(queries) != 1 else [queries[0].run(table)]
            made = None
            if want or receipts.recording():
                digest, seq = table.state_digest(), live.seq
                made = [receipts.make(q, [(table.ids[r], raw) for r, raw in ranked], metric=table.metric.name,
                                      state_digest=digest, seq=seq) for q, ranked in zip(queries, rankings)]
                receipts.emit(made, self)
            return [hits(table, ranked) for ranked in rankings], made

    def search(self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """Exact top-k for one query vector, filtered before ranking (k hits whenever k match)."""
        return self._search(parse_queries(vector, self.dim, self._live.table.metric, k, filter), False)[0][0]

    def search_with_receipt(
        self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None
    ) -> tuple[list[Hit], receipts.Receipt]:
        """:meth:`search` plus its retrieval receipt (see :mod:`valori_store.receipts`)."""
        found, made = self._search(parse_queries(vector, self.dim, self._live.table.metric, k, filter), True)
        assert made is not None
        return found[0], made[0]

    def search_with_relevance(
        self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None
    ) -> list[tuple[Hit, float]]:
        """:meth:`search` with each hit's relevance in [0, 1] (:mod:`valori_store.query.relevance`)."""
        queries = parse_queries(vector, self.dim, self._live.table.metric, k, filter)
        found = self._search(queries, False)[0][0]
        metric = self._live.table.metric
        return [(h, relevance(metric, queries[0].stored, h.raw)) for h in found]

    def search_batch(self, vectors: Any, k: int = 4, filter: Mapping[str, Any] | None = None) -> list[list[Hit]]:
        """Exact top-k for each query; each result equals :meth:`search` of that query alone."""
        queries = parse_queries(vectors, self.dim, self._live.table.metric, k, filter, single=False)
        return self._search(queries, False)[0]

    def mmr_search(
        self, vector: Any, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Maximal marginal relevance: ``k`` diverse hits among the exact top ``fetch_k``.

        ``lambda_mult`` in [0, 1] (1 = pure relevance, 0 = most diverse) is used as an exact
        fraction and all similarities are exact integers (see :mod:`valori_store.query.mmr`),
        so the selection is deterministic. Hits come in pick order and carry their query score.
        """
        return self._mmr(vector, k, fetch_k, lambda_mult, filter, False)[0]

    def mmr_search_with_receipt(
        self, vector: Any, k: int = 4, fetch_k: int = 20, lambda_mult: float = 0.5,
        filter: Mapping[str, Any] | None = None,
    ) -> tuple[list[Hit], receipts.Receipt]:
        """:meth:`mmr_search` plus its retrieval receipt."""
        found, made = self._mmr(vector, k, fetch_k, lambda_mult, filter, True)
        assert made is not None
        return found, made

    def _mmr(self, vector: Any, k: Any, fetch_k: Any, lambda_mult: Any, filter: Mapping[str, Any] | None,
             want: bool) -> tuple[list[Hit], receipts.Receipt | None]:
        queries = parse_queries(vector, self.dim, self._live.table.metric, k, filter, mode="mmr", fetch_k=fetch_k,
                                lambda_mult=lambda_mult)
        found, made = self._search(queries, want)
        return found[0], (made[0] if made else None)

    # ------------------------------------------------------------------ state
    def state_hash(self) -> str:
        """Hex tagged SHA-256 of the canonical state (equal content, equal hash)."""
        with self._live.lock.read():
            return self._live.table.state_hash()

    def to_bytes(self) -> bytes:
        """Canonical snapshot bytes (docs/format.md); its trailing digest is the state hash."""
        with self._live.lock.read():
            return snapshot.encode(self._live.table.content())

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the snapshot to ``path`` atomically (temp file, fsync, rename)."""
        write_atomic(path, self.to_bytes())

    @contextmanager
    def view(self) -> Iterator[StateView]:
        """A consistent read view (state, seq) held under the read lock for the block."""
        live = self._live
        with live.lock.read():
            live.check_open()
            yield StateView(live.table, live.seq, live.log)

    def state_at(self, seq: int) -> StateView:
        """The state right after event ``seq`` (a checkpoint image when it holds exactly
        that state, else a replay of the log); NotFoundError beyond the log."""
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise InputError(f"seq must be an int >= 0, got {seq!r}")
        live = self._live
        with live.lock.read():
            live.check_open()
            if seq >= live.log.next_seq:
                raise NotFoundError(f"no event {seq}: the log holds events 0..{live.seq}")
            if seq == live.seq:
                return StateView(RecordTable.from_content(live.table.content()), seq)
            digest = next((bytes.fromhex(c.state_hash) for c in live.checkpoints if c.seq == seq), None)
            return StateView(checkpoints.state_at(live, seq, digest), seq)

    def read_log(self) -> bytes:
        """The event log's bytes up to the last event (for verification and audit tools)."""
        with self._live.lock.read():
            self._live.check_open()
            return self._live.log.read_all()

    def checkpoint(self, label: str | None = None) -> Checkpoint:
        """Record the current state as a checkpoint event; returns (seq, state_hash, label)."""
        return checkpoints.checkpoint(self._live, label)

    def history(self) -> list[Checkpoint]:
        """Every checkpoint, oldest first (restores never erase any)."""
        with self._live.lock.read():
            return list(self._live.checkpoints)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind the live store to a checkpoint's exact state (logged as a restore event).

        ``target`` is a Checkpoint, a label (the latest checkpoint with it) or a seq.
        Returns the checkpoint restored to. History is kept: later checkpoints stay
        listed and can be restored too.
        """
        return checkpoints.restore(self._live, target)

    # ------------------------------------------------------------------ notes
    def annotate(self, topic: str, body: Mapping[str, Any]) -> int:
        """Append a note (an event that changes no record; covered by the log's checksums and
        hash chain): ``topic`` names its kind, ``body`` is a JSON dict. Returns its seq."""
        if type(topic) is not str or not topic:
            raise InputError(f"a note topic is a non-empty str, got {topic!r}")
        if not isinstance(body, Mapping):
            raise InputError(f"a note body is a dict, got {type(body).__name__}")
        ev = events.Note(topic, canonical_json(dict(body)))
        live = self._live
        with live.lock.write():
            live.check_open()
            seq = writes.commit(live, ev)
            live.notes.append((seq, ev))
            return seq

    def notes(self, topic: str | None = None, after: int = -1) -> list[Annotation]:
        """Notes in log order (``topic``: only that kind; ``after``: only seqs greater)."""
        with self._live.lock.read():
            found = [(s, n) for s, n in self._live.notes if s > after and (topic is None or n.topic == topic)]
        return [Annotation(s, n.topic, json.loads(n.body)) for s, n in found]

    # ------------------------------------------------------------------ durability
    def sync(self) -> None:
        """Force the log to disk now (durable stores)."""
        with self._live.lock.write():
            self._live.log.sync()

    def close(self) -> None:
        """Sync and release the directory lock; further calls raise ClosedError.

        If the final sync fails (or reports a failed background fsync) the error is raised,
        but the store is closed and the lock released all the same.
        """
        live = self._live
        with live.lock.write():
            if live.closed:
                return
            try:
                live.log.close()
            finally:
                if live.lock_fd is not None:
                    release_lock(live.lock_fd)
                    live.lock_fd = None
                live.closed = True

    def __enter__(self) -> Any:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            live = getattr(self, "_live", None)
            if live is not None and not live.closed:
                self.close()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass
