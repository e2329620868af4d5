"""Retrieval receipts: plain-data proof of what a search returned (the value and its recording).

A :class:`Receipt` binds the state a search ran against (state hash and log position), the
numeric spec version, the exact query (its Q16.16 int32 bytes, before cosine
normalisation), ``k``, the canonical filter, the mode (plain search or MMR with its exact
lambda) and the ordered result ids with their exact integer scores. Its ``digest`` is a
tagged SHA-256 of the canonical JSON of all of that, so any edit to a receipt is detected.

Receipts are JSON-serialisable (:meth:`Receipt.to_json`), so an application can keep them
next to its chat transcript. Verification (:mod:`valori_store.history.receipt_check`)
re-executes the receipt's :class:`~valori_store.query.query.Query` at the recorded state and
compares.

Every core search (and therefore every adapter search) emits a receipt to each active
:func:`record_receipts` context, so receipts need no adapter support.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from valori_store import spec
from valori_store.errors import InputError
from valori_store.format import digests
from valori_store.query.query import Query

__all__ = ["RECEIPT_VERSION", "Receipt", "emit", "make", "record_receipts", "recording"]

RECEIPT_VERSION = 1
_TAG = b"valori-receipt-v1"


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
    #: Optional proofs (:class:`~valori_store.query.proof.StateProof` dicts) that each hit's
    #: record is in the receipt's state. They check themselves against ``state_hash``, so
    #: they are not covered by ``digest`` (a receipt verifies with or without them).
    proofs: list[dict[str, Any]] | None = field(default=None, compare=False)

    # -- construction ---------------------------------------------------------------
    def body(self) -> dict[str, Any]:
        """Every field except the digest, as plain JSON data."""
        data = asdict(self)
        data.pop("digest")
        data.pop("proofs")
        return data

    def computed_digest(self) -> str:
        """Hex tagged SHA-256 of the canonical JSON of :meth:`body`."""
        h = digests.tagged(_TAG)
        h.update(_canonical(self.body()))
        return h.hexdigest()

    def sealed(self) -> Receipt:
        """This receipt with its digest filled in."""
        return Receipt(**{**self.body(), "digest": self.computed_digest(), "proofs": self.proofs})

    def with_proofs(self, proofs: list[dict[str, Any]]) -> Receipt:
        """This receipt with proofs attached (its digest is unchanged)."""
        return Receipt(**{**self.body(), "digest": self.digest, "proofs": proofs})

    @property
    def ids(self) -> list[str]:
        """Result ids, best first."""
        return [r[0] for r in self.results]

    @property
    def raws(self) -> list[int]:
        """Exact integer scores, best first."""
        return [int(r[1]) for r in self.results]

    def to_query(self) -> Query:
        """The :class:`Query` this receipt describes (ValueError, InputError or ZeroDivisionError
        when a sealed receipt holds something that cannot be executed)."""
        return Query.from_record(spec.get_metric(self.metric), self.query_vector(), self.k, self.filter,
                                 self.mode, self.fetch_k, self.lam)

    def query_vector(self) -> np.ndarray:
        """The recorded query as int32 Q16.16 (before cosine normalisation)."""
        raw = base64.b64decode(self.query.encode("ascii"), validate=True)
        if len(raw) != 4 * self.dim:
            raise InputError(f"receipt query holds {len(raw)} bytes; dim {self.dim} needs {4 * self.dim}")
        return np.frombuffer(raw, dtype="<i4").astype(np.int32)

    # -- serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (digest included; proofs when attached)."""
        out = {**self.body(), "digest": self.digest}
        if self.proofs is not None:
            out["proofs"] = self.proofs
        return out

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
    "proofs": (list, type(None)),
}


def _check_types(data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if not isinstance(value, _TYPES[name]) or isinstance(value, bool):
            raise InputError(f"receipt field {name!r} has type {type(value).__name__}")
    for item in data["results"]:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and all(isinstance(x, str) for x in item)):
            raise InputError("receipt results must be [id, raw] pairs of strings")
    texts = [v for v in data.values() if isinstance(v, str)] + [x for item in data["results"] for x in item]
    for text in texts:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("a receipt field holds a lone surrogate (not UTF-8 text)") from None


def make(query: Query, ranked: Sequence[tuple[str, int]], *, metric: str, state_digest: bytes, seq: int,
         spec_version: int = spec.SPEC_VERSION) -> Receipt:
    """The sealed receipt of ``query`` having returned ``ranked`` ((id, raw) pairs, best
    first) on a ``metric`` store whose state had ``state_digest`` after event ``seq``."""
    q = np.ascontiguousarray(query.raw, dtype="<i4")
    fil = query.filter.canonical
    lam = query.lam
    return Receipt(
        state_hash=state_digest.hex(), seq=seq, metric=metric, dim=int(q.shape[0]),
        query=base64.b64encode(q.tobytes()).decode("ascii"), k=query.k,
        filter=None if fil == b"null" else fil.decode("utf-8"),
        results=[[rid, str(raw)] for rid, raw in ranked], mode=query.mode, fetch_k=query.fetch_k,
        lam=None if lam is None else f"{lam.numerator}/{lam.denominator}", spec_version=spec_version,
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
