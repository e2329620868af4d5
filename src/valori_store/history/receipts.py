"""Retrieval receipts: plain-data proof of what a search returned, and their verification.

A :class:`Receipt` binds the state a search ran against (state hash and log position), the
numeric spec version, the exact query (its Q16.16 int32 bytes, before cosine
normalisation), ``k``, the canonical filter, the mode (plain search or MMR with its exact
lambda) and the ordered result ids with their exact integer scores. Its ``digest`` is a
tagged SHA-256 of the canonical JSON of all of that, so any edit to a receipt is detected.

Receipts are JSON-serialisable (:meth:`Receipt.to_json`), so an application can keep them
next to its chat transcript. :func:`verify_receipt` re-executes the search at the recorded
state — on the live table when the store is still in that state, otherwise on the state
rebuilt by replaying the log up to the recorded position — and reports whether the
results are identical.

Every core search (and therefore every adapter search) emits a receipt to each active
:func:`record_receipts` context, so receipts need no adapter support.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from valori_store import spec
from valori_store.errors import CorruptFileError, InputError, NotFoundError
from valori_store.format import digests, snapshot
from valori_store.kernels import normalize_rows_serial
from valori_store.query import retrieval
from valori_store.query.filters import canonical_filter
from valori_store.state import machine
from valori_store.state.table import RecordTable
from valori_store.storage import directory

if TYPE_CHECKING:
    from valori_store.store.facade import ValoriStore

__all__ = [
    "RECEIPT_VERSION",
    "Receipt",
    "ReceiptCheck",
    "record_receipts",
    "verify_receipt",
    "verify_receipts",
]

RECEIPT_VERSION = 1
_TAG = b"valori-receipt-v1"
MODES = ("search", "mmr")


@dataclass(frozen=True)
class Receipt:
    """What one search ran against and returned. Plain data; see the module docstring.

    ``seq`` is the number of the last log event applied when the search ran; ``query`` the
    base64 of the little-endian int32 Q16.16 query; ``filter`` the canonical filter JSON
    (``None`` for no filter); ``results`` the ordered ``[id, raw]`` pairs with the exact
    integer score as a decimal string (exact in any JSON reader); ``lam`` the MMR lambda as
    an exact fraction ``"p/q"``.
    """

    state_hash: str
    seq: int
    metric: str
    dim: int
    query: str
    k: int
    filter: str | None
    results: list[list[str]]
    mode: str = "search"
    fetch_k: int | None = None
    lam: str | None = None
    spec_version: int = spec.SPEC_VERSION
    version: int = RECEIPT_VERSION
    digest: str = field(default="", compare=False)

    # -- construction ---------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """Every field except the digest, as plain JSON data."""
        data = asdict(self)
        data.pop("digest")
        return data

    def computed_digest(self) -> str:
        """Hex tagged SHA-256 of the canonical JSON of :meth:`body`."""
        h = digests.tagged(_TAG)
        h.update(_canonical(self.body()))
        return h.hexdigest()

    def sealed(self) -> Receipt:
        """This receipt with its digest filled in."""
        return Receipt(**{**self.body(), "digest": self.computed_digest()})

    @property
    def ids(self) -> list[str]:
        """Result ids, best first."""
        return [r[0] for r in self.results]

    @property
    def raws(self) -> list[int]:
        """Exact integer scores, best first."""
        return [int(r[1]) for r in self.results]

    def query_vector(self) -> np.ndarray:
        """The recorded query as int32 Q16.16 (before cosine normalisation)."""
        raw = base64.b64decode(self.query.encode("ascii"), validate=True)
        if len(raw) != 4 * self.dim:
            raise InputError(f"receipt query holds {len(raw)} bytes; dim {self.dim} needs {4 * self.dim}")
        return np.frombuffer(raw, dtype="<i4").astype(np.int32)

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (digest included)."""
        return {**self.body(), "digest": self.digest}

    def to_json(self) -> str:
        """Canonical JSON text (sorted keys, no whitespace)."""
        return _canonical(self.to_dict()).decode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Receipt:
        """Parse a receipt dict (InputError on missing or unknown fields or wrong types)."""
        if not isinstance(data, Mapping):
            raise InputError(f"a receipt is a dict (or its JSON), got {type(data).__name__}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(data) - names)
        missing = sorted(n for n in ("state_hash", "seq", "metric", "dim", "query", "k", "filter", "results",
                                     "digest") if n not in data)
        if unknown or missing:
            raise InputError(f"not a valori receipt: unknown fields {unknown}, missing fields {missing}")
        _check_types(data)
        return cls(**{k: (list(map(list, v)) if k == "results" else v) for k, v in data.items()})

    @classmethod
    def from_json(cls, text: str | bytes) -> Receipt:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise InputError(f"receipt is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def coerce(cls, value: Receipt | Mapping[str, Any] | str | bytes) -> Receipt:
        """A Receipt from a Receipt, its dict or its JSON."""
        if isinstance(value, Receipt):
            return value
        if isinstance(value, (str, bytes)):
            return cls.from_json(value)
        return cls.from_dict(value)


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


_TYPES: dict[str, tuple[type, ...]] = {
    "state_hash": (str,), "seq": (int,), "metric": (str,), "dim": (int,), "query": (str,), "k": (int,),
    "filter": (str, type(None)), "results": (list,), "mode": (str,), "fetch_k": (int, type(None)),
    "lam": (str, type(None)), "spec_version": (int,), "version": (int,), "digest": (str,),
}


def _check_types(data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if not isinstance(value, _TYPES[name]) or isinstance(value, bool):
            raise InputError(f"receipt field {name!r} has type {type(value).__name__}")
    for item in data["results"]:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise InputError("receipt results must be [id, raw] pairs of strings")


def make(
    *, state_digest: bytes, seq: int, metric: str, query: np.ndarray, k: int,
    filter: Mapping[str, Any] | None, ranked: Sequence[tuple[str, int]], mode: str = "search",
    fetch_k: int | None = None, lam: Fraction | None = None,
) -> Receipt:
    """A sealed receipt. ``query`` is the int32 Q16.16 row before normalisation."""
    q = np.ascontiguousarray(query, dtype="<i4")
    fil = canonical_filter(filter)
    return Receipt(
        state_hash=state_digest.hex(), seq=seq, metric=metric, dim=int(q.shape[0]),
        query=base64.b64encode(q.tobytes()).decode("ascii"), k=k,
        filter=None if fil == b"null" else fil.decode("utf-8"),
        results=[[rid, str(raw)] for rid, raw in ranked], mode=mode, fetch_k=fetch_k,
        lam=None if lam is None else f"{lam.numerator}/{lam.denominator}",
    ).sealed()


# ------------------------------------------------------------------------------- recording
_ACTIVE: ContextVar[tuple[tuple[list[Receipt], object | None], ...]] = ContextVar(
    "valori_receipt_recorders", default=())


def recording() -> bool:
    """True when some :func:`record_receipts` context is active here."""
    return bool(_ACTIVE.get())


def emit(receipts: Iterable[Receipt], source: object = None) -> None:
    """Append receipts from store ``source`` to every active recorder that accepts it."""
    active = _ACTIVE.get()
    if active:
        batch = list(receipts)
        for sink, only in active:
            if only is None or only is source:
                sink.extend(batch)


@contextmanager
def record_receipts(store: object = None) -> Iterator[list[Receipt]]:
    """Collect a receipt for every store search made in this context (threads started with
    ``contextvars.copy_context``/``asyncio.to_thread`` included). With ``store``, only
    searches of that store are collected (sessions use this: a turn records its own
    store's retrievals). Contexts nest: an outer recorder also sees the inner one's."""
    sink: list[Receipt] = []
    token = _ACTIVE.set(_ACTIVE.get() + ((sink, store),))
    try:
        yield sink
    finally:
        _ACTIVE.reset(token)


# ------------------------------------------------------------------------------- verification
STATUSES = ("match", "mismatch", "tampered", "state-unavailable", "corrupt-log", "invalid")


@dataclass(frozen=True)
class ReceiptCheck:
    """The verdict on one receipt. ``ok`` only for ``status == "match"``."""

    status: str
    message: str
    receipt_digest: str
    expected: list[list[str]] = field(default_factory=list)
    actual: list[list[str]] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "match"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _check_receipt_itself(r: Receipt) -> ReceiptCheck | None:
    """Digest, version and shape checks that need no store."""
    if r.computed_digest() != r.digest:
        return ReceiptCheck("tampered", "the receipt's digest does not match its content: it was edited",
                            r.digest, r.results)
    if r.version != RECEIPT_VERSION or r.spec_version != spec.SPEC_VERSION:
        return ReceiptCheck("invalid", f"receipt version {r.version} / numeric spec {r.spec_version}; this "
                            f"valori-store verifies {RECEIPT_VERSION} / {spec.SPEC_VERSION}", r.digest, r.results)
    if r.mode not in MODES or r.metric not in spec.METRICS or r.k < 0:
        return ReceiptCheck("invalid", f"unknown mode {r.mode!r} or metric {r.metric!r}", r.digest, r.results)
    return None


def _rerun(r: Receipt, table: RecordTable) -> ReceiptCheck:
    """Execute the receipt's search on ``table`` (already at the receipt's state)."""
    try:
        return _rerun_checked(r, table)
    except (ValueError, ZeroDivisionError) as exc:  # malformed query/filter/lambda in a sealed receipt
        return ReceiptCheck("invalid", f"the receipt cannot be executed: {exc}", r.digest, r.results)


def _rerun_checked(r: Receipt, table: RecordTable) -> ReceiptCheck:
    query = r.query_vector()[None, :]
    if r.metric == "cosine":
        query, zero = normalize_rows_serial(query)
        if zero.any():
            return ReceiptCheck("invalid", "the receipt's query is a zero vector", r.digest, r.results)
    filt = None if r.filter is None else json.loads(r.filter)
    if r.mode == "mmr":
        lam = Fraction(r.lam or "")
        ranked = retrieval.rank_mmr(table, r.metric, query[0], r.k, r.fetch_k or r.k, lam, filt)
    else:
        ranked = retrieval.rank(table, r.metric, query[0], r.k, filt)
    actual = [[table.ids[row], str(raw)] for row, raw in ranked]
    if actual == r.results:
        return ReceiptCheck("match", f"re-executed at event {r.seq}: {len(actual)} identical results",
                            r.digest, r.results, actual)
    diff = next((i for i, (a, b) in enumerate(zip(actual, r.results)) if a != b), min(len(actual), len(r.results)))
    return ReceiptCheck("mismatch", f"re-executed at event {r.seq}: results differ from position {diff}",
                        r.digest, r.results, actual)


def verify_receipts(
    source: ValoriStore | str | os.PathLike[str], receipts: Iterable[Receipt | Mapping[str, Any] | str],
) -> list[ReceiptCheck]:
    """Verify many receipts against a store, a store directory or a snapshot file.

    The log is replayed at most once, pausing at each recorded position, so verifying a
    whole session costs one replay. Results are in input order.
    """
    parsed: list[Receipt | None] = []
    checks: list[ReceiptCheck | None] = []
    for item in receipts:
        try:
            r = Receipt.coerce(item)
        except InputError as exc:
            parsed.append(None)
            checks.append(ReceiptCheck("invalid", str(exc), ""))
            continue
        parsed.append(r)
        checks.append(_check_receipt_itself(r))
    pending = [i for i, c in enumerate(checks) if c is None]
    if pending:
        _verify_against(source, parsed, checks, pending)
    return [c for c in checks if c is not None]


def verify_receipt(source: ValoriStore | str | os.PathLike[str], receipt: Receipt | Mapping[str, Any] | str) -> ReceiptCheck:
    """Re-execute one receipt's search at its recorded state and compare (see module doc)."""
    return verify_receipts(source, [receipt])[0]


def _verify_against(source: Any, parsed: list[Receipt | None], checks: list[ReceiptCheck | None],
                    pending: list[int]) -> None:
    from valori_store.store.facade import ValoriStore  # local: store imports this module

    def shape_ok(i: int, dim: int, metric: str) -> bool:
        r = parsed[i]
        assert r is not None
        if (r.dim, r.metric) != (dim, metric):
            checks[i] = ReceiptCheck("state-unavailable", f"receipt is for dim {r.dim} {r.metric}; the store is "
                                     f"dim {dim} {metric}", r.digest, r.results)
            return False
        return True

    if isinstance(source, ValoriStore):
        with source._lock.read():
            live = source._live_state_hash()
            todo = [i for i in pending if shape_ok(i, source.dim, source.metric)]
            rest = []
            for i in todo:
                r = parsed[i]
                assert r is not None
                if r.state_hash == live:
                    checks[i] = _rerun(r, source._table)
                else:
                    rest.append(i)
            if not rest:
                return
            data, what = source._log.read_all(), "event log"
        _walk_log(data, what, parsed, checks, rest)
        return
    path = Path(source)
    if path.is_dir():
        log_path = path / directory.LOG_NAME
        if not log_path.exists():
            raise NotFoundError(f"no valori store at {path} (no {directory.LOG_NAME})")
        _walk_log(log_path.read_bytes(), str(log_path), parsed, checks, pending)
        return
    if not path.exists():
        raise NotFoundError(f"no store or snapshot at {path}")
    try:
        table, metric = snapshot.decode(path.read_bytes(), str(path))
    except CorruptFileError as exc:
        for i in pending:
            r = parsed[i]
            assert r is not None
            checks[i] = ReceiptCheck("corrupt-log", str(exc), r.digest, r.results)
        return
    state = snapshot.state_digest(table, metric).hex()
    for i in pending:
        r = parsed[i]
        assert r is not None
        if not shape_ok(i, table.dim, metric):
            continue
        if r.state_hash != state:
            checks[i] = ReceiptCheck("state-unavailable", "the snapshot holds a different state than the receipt's "
                                     "(a snapshot has no history; verify against the store directory)",
                                     r.digest, r.results)
        else:
            checks[i] = _rerun(r, table)


def _walk_log(data: bytes, what: str, parsed: list[Receipt | None], checks: list[ReceiptCheck | None],
              pending: list[int]) -> None:
    """One replay of the log; each receipt is re-run when the walk reaches its position."""
    by_seq: dict[int, list[int]] = {}
    for i in pending:
        r = parsed[i]
        assert r is not None
        by_seq.setdefault(r.seq, []).append(i)
    last = max(by_seq)
    result: machine.ReplayResult | None = None
    try:
        for frame, _, result in machine.walk(data, what):
            if frame.seq in by_seq:
                state = snapshot.state_digest(result.table, result.metric).hex()
                for i in by_seq.pop(frame.seq):
                    r = parsed[i]
                    assert r is not None
                    if (r.dim, r.metric) != (result.table.dim, result.metric):
                        checks[i] = ReceiptCheck("state-unavailable", "receipt is for another store shape",
                                                 r.digest, r.results)
                    elif state != r.state_hash:
                        checks[i] = ReceiptCheck(
                            "state-unavailable",
                            f"the log's state after event {r.seq} is not the receipt's state: the receipt comes "
                            f"from another store or history", r.digest, r.results)
                    else:
                        checks[i] = _rerun(r, result.table)
            if frame.seq >= last:
                break
    except CorruptFileError as exc:
        for idx in [i for ids in by_seq.values() for i in ids]:
            r = parsed[idx]
            assert r is not None
            checks[idx] = ReceiptCheck("corrupt-log", str(exc), r.digest, r.results)
        return
    scan = None if result is None else result.scan
    for ids in by_seq.values():  # positions beyond the end of the (intact part of the) log
        for i in ids:
            r = parsed[i]
            assert r is not None
            if scan is not None and scan.torn_bytes:
                checks[i] = ReceiptCheck(
                    "corrupt-log", f"{what}: the log's final record is damaged ({scan.torn_bytes} bytes at offset "
                    f"{scan.good_end}: {scan.torn_reason}); event {r.seq} is not readable", r.digest, r.results)
            else:
                checks[i] = ReceiptCheck("state-unavailable", f"the log ends before event {r.seq}",
                                         r.digest, r.results)
