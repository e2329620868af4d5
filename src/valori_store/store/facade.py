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

import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.query import receipt as receipts
from valori_store.query.proof import StateProof
from valori_store.query.query import Query, parse_queries
from valori_store.query.relevance import relevance
from valori_store.records import Annotation, Checkpoint, Hit, Record
from valori_store.spec import SPEC_VERSIONS
from valori_store.storage import layout, recovery
from valori_store.storage.atomic import write_atomic
from valori_store.storage.lock import release_lock
from valori_store.store import checkpoints, compaction, image_policy, notes, opening, reads, searches, writes
from valori_store.store.compaction import Compaction
from valori_store.store.live import Live, StateView

DURABILITY = opening.DURABILITY


def _check_spec(spec: int | None) -> int | None:
    if spec is not None and (isinstance(spec, bool) or spec not in SPEC_VERSIONS):
        raise InputError(f"spec must be one of {SPEC_VERSIONS} (or None for the store's own), got {spec!r}")
    return spec


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
        self._live = opening.in_memory(dim, metric)

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
        live, dropped = opening.directory(path, dim, metric, durability)
        store = cls._from_live(live)
        store.recovered_dropped_bytes = dropped
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
        return cls._from_live(opening.directory_readonly(p, recovered))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Any:
        """An in-memory store holding a snapshot's content (digest and lengths verified)."""
        return cls._from_live(opening.from_snapshot(data))

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
    def ids(self) -> list[str]:
        """Every id, in canonical order (ascending UTF-8 bytes)."""
        return reads.all_ids(self._live)

    def get(self, ids: Iterable[str]) -> list[Record]:
        """Records for the ids that exist, in input order (missing ids are skipped)."""
        return reads.get(self._live, ids)

    def select(
        self, filter: Mapping[str, Any] | None = None, limit: int | None = None, offset: int = 0
    ) -> list[Record]:
        """Records passing ``filter`` (``$ids`` included), in id order, no vector involved.

        One consistent view (taken under the read lock); ``offset``/``limit`` page through it.
        """
        return reads.select(self._live, filter, limit, offset)

    def prove(self, ids: Iterable[str]) -> list[StateProof]:
        """Proofs that each id's record — its exact id, text, metadata and stored vector — is
        in the current state (or that it is absent); check them with
        :func:`valori_store.verify_proof` against :meth:`state_hash`, no store needed."""
        return reads.prove(self._live, ids)

    def select_ids(self, filter: Mapping[str, Any] | None = None, limit: int | None = None,
                   offset: int = 0) -> list[str]:
        """Ids of the records passing ``filter``, in id order (like :meth:`select`, no decoding)."""
        return reads.select_ids(self._live, filter, limit, offset)

    def _search(self, queries: list[Query], want: bool, proofs: bool = False
                ) -> tuple[list[list[Hit]], list[receipts.Receipt] | None]:
        return searches.execute(self._live, queries, want, self, proofs)

    def search(self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None) -> list[Hit]:
        """Exact top-k for one query vector, filtered before ranking (k hits whenever k match)."""
        return self._search(parse_queries(vector, self.dim, self._live.table.metric, k, filter), False)[0][0]

    def search_with_receipt(
        self, vector: Any, k: int = 4, filter: Mapping[str, Any] | None = None, proofs: bool = False,
    ) -> tuple[list[Hit], receipts.Receipt]:
        """:meth:`search` plus its retrieval receipt (see :mod:`valori_store.receipts`);
        ``proofs=True`` attaches a state proof for every hit (checked by
        ``valori_store.receipts.verify_receipt_proofs`` with no store)."""
        found, made = self._search(parse_queries(vector, self.dim, self._live.table.metric, k, filter), True,
                                   bool(proofs))
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
    @property
    def spec_version(self) -> int:
        """The state spec this store's hashes follow: 2, or 1 for a store or snapshot made by
        valori-store 0.1 (``valori_store.migrate`` converts those)."""
        return self._live.table.spec

    def state_hash(self, spec: int | None = None) -> str:
        """The state hash: the hex root of the state tree (equal content, equal hash).
        ``spec=1`` gives valori-store 0.1's hash of the same content (SHA-256 of its
        snapshot); a store made by 0.1 uses that one by default."""
        with self._live.lock.read():
            self._live.check_open()
            return self._live.table.state_digest(_check_spec(spec)).hex()

    def to_bytes(self, spec: int | None = None) -> bytes:
        """Canonical snapshot bytes (docs/format.md), holding the state root; ``spec=1``
        writes the 0.1 format instead (readable by valori-store 0.1)."""
        with self._live.lock.read():
            self._live.check_open()
            return self._live.table.snapshot_bytes(_check_spec(spec))

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
        return checkpoints.view_at(self._live, seq)

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
            self._live.check_open()
            return list(self._live.checkpoints)

    def restore(self, target: Checkpoint | str | int) -> Checkpoint:
        """Rewind the live store to a checkpoint's exact state (logged as a restore event).

        ``target`` is a Checkpoint, a label (the latest checkpoint with it) or a seq.
        Returns the checkpoint restored to. History is kept: later checkpoints stay
        listed and can be restored too.
        """
        return checkpoints.restore(self._live, target)

    def compact(self, before: Checkpoint | str | int) -> Compaction:
        """Fold the history up to checkpoint ``before`` into a base image (store directories).

        The log then starts at that checkpoint: later events keep their bytes and hash chain,
        earlier checkpoints and notes stay listed, but states before it can no longer be
        restored or replayed (receipts taken there verify as state-unavailable). Crash-safe:
        an interruption leaves the old store or the new one. See :mod:`.compaction`.
        """
        return compaction.compact(self._live, before)

    # ------------------------------------------------------------------ notes
    def annotate(self, topic: str, body: Mapping[str, Any]) -> int:
        """Append a note (an event that changes no record; covered by the log's checksums and
        hash chain): ``topic`` names its kind, ``body`` is a JSON dict. Returns its seq."""
        return notes.annotate(self._live, topic, body)

    def notes(self, topic: str | None = None, after: int = -1) -> list[Annotation]:
        """Notes in log order (``topic``: only that kind; ``after``: only seqs greater)."""
        return notes.listed(self._live, topic, after)

    # ------------------------------------------------------------------ durability
    def sync(self) -> None:
        """Force the log to disk now (durable stores); a spec-2 store also writes an image
        when its log has grown enough since the last one (see store/image_policy.py)."""
        with self._live.lock.write():
            self._live.check_open()
            self._live.log.sync()
            image_policy.on_sync(self._live)

    def write_image(self) -> None:
        """Write an image of the current state now (spec-2 durable stores; a no-op otherwise):
        reopening and restoring then start from here. A failed write raises StorageError
        (DiskFullError when out of space) and leaves the earlier images as they were."""
        with self._live.lock.write():
            self._live.check_open()
            if image_policy.applies(self._live):
                image_policy.write(self._live, strict=True)

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
                if live.log.durable:
                    image_policy.on_sync(live)
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
