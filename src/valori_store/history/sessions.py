"""Agent sessions: named sequences of turns, each a checkpoint plus the receipts of its
retrievals, kept in the store's own log.

A session is started (or resumed) with ``store.session(name)`` (or ``open_session(store, name)``);
it wraps a store through its public API (notes, checkpoints, restore, receipts). Each turn records a
checkpoint of the store (the state the turn left behind) and the retrieval receipts of the
searches made during it, plus optional JSON ``meta`` (e.g. the user's input), as a ``note``
event in the hash-chained log — so sessions persist with a durable store, are covered by
its checksums, and survive reopening in another process. Notes change no record: the state
hash is the same with or without sessions.

``rewind(turn)`` restores the store to a turn's checkpoint; ``store.fork_session(new,
source, turn)`` starts a session whose history is ``source`` up to ``turn`` and rewinds
the store there; ``verify()`` re-executes every recorded retrieval at its recorded state
(one log replay) and reports per turn.

Snapshots (``save``/``to_bytes``) hold state only, not history: sessions live in durable
stores (and, for an in-memory store, for its lifetime).
"""

from __future__ import annotations

import re
import threading
import warnings
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from valori_store.errors import InputError, MetadataError, NotFoundError, ValoriError
from valori_store.format.canonical import canonical_json
from valori_store.history.receipt_check import ReceiptCheck, verify_receipts
from valori_store.query.receipt import Receipt, record_receipts
from valori_store.records import Checkpoint
from valori_store.state.validate import check_name_text

if TYPE_CHECKING:
    from valori_store.store.facade import Store

__all__ = ["Session", "SessionInfo", "SessionNoteWarning", "Turn", "TurnCheck", "START", "TURN"]

START = "session.start"
TURN = "session.turn"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@/-]{0,127}")


def check_name(name: Any) -> str:
    """Session names: 1-128 chars of letters, digits and ``._:@/-``, starting alphanumeric."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(f"session name must be 1-128 characters of letters, digits and ._:@/- "
                         f"(starting with a letter or digit), got {name!r}")
    return name


@dataclass(frozen=True)
class Turn:
    """One recorded turn. ``number`` counts from 1 within its session's history; ``session``
    is the session that recorded it (an ancestor, for turns inherited by a fork)."""

    session: str
    number: int
    seq: int
    state_hash: str
    label: str | None
    meta: dict[str, Any]
    receipts: list[Receipt]
    note_seq: int

    @property
    def checkpoint(self) -> Checkpoint:
        return Checkpoint(self.seq, self.state_hash, self.label)

    def to_dict(self) -> dict[str, Any]:
        return {"session": self.session, "number": self.number, "seq": self.seq, "state_hash": self.state_hash,
                "label": self.label, "meta": self.meta, "receipts": [r.to_dict() for r in self.receipts]}


@dataclass(frozen=True)
class SessionInfo:
    """A session as listed by ``store.sessions()``."""

    name: str
    parent: str | None
    from_turn: int | None
    turns: int
    start_seq: int


@dataclass(frozen=True)
class TurnCheck:
    """Verification of one turn: its checkpoint's state and each receipt re-executed."""

    turn: Turn
    receipts: list[ReceiptCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.receipts)


# ---------------------------------------------------------------------------- note parsing


@dataclass
class _Index:
    """Session notes parsed so far (notes are append-only, so parsing is incremental)."""

    last_seq: int = -1
    starts: dict[str, dict[str, Any]] = field(default_factory=dict)
    turns: dict[str, list[tuple[int, dict[str, Any]]]] = field(default_factory=dict)


_INDEXES: weakref.WeakKeyDictionary[Any, _Index] = weakref.WeakKeyDictionary()
_INDEX_LOCK = threading.Lock()


def _index(store: Store) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[int, dict[str, Any]]]]]:
    """(start body by name, own turn bodies by name in log order), parsed incrementally."""
    with _INDEX_LOCK:
        idx = _INDEXES.setdefault(store, _Index())
        for note in store.notes(after=idx.last_seq):
            body = note.body
            problem = _malformed(note.topic, body, idx.starts) if note.topic in (START, TURN) else None
            if problem is not None:
                warnings.warn(f"session note at event {note.seq} ignored: {problem}", SessionNoteWarning,
                              stacklevel=3)
            elif note.topic == START:
                idx.starts.setdefault(body["name"], {**body, "seq": note.seq})
            elif note.topic == TURN:
                idx.turns.setdefault(body["session"], []).append((note.seq, body))
            idx.last_seq = note.seq
        return dict(idx.starts), {k: list(v) for k, v in idx.turns.items()}


class SessionNoteWarning(UserWarning):
    """A ``session.start`` / ``session.turn`` note that is not one sessions write (e.g. made
    with ``annotate`` by hand or crafted into a log): it is ignored."""


def _is_int(v: Any) -> bool:
    return type(v) is int and v >= 0


def _malformed(topic: str, body: Any, starts: dict[str, dict[str, Any]]) -> str | None:
    """Why a session note cannot be used, or None (checked once, when it is indexed)."""
    if not isinstance(body, dict):
        return "its body is not an object"
    if topic == START:
        name, parent, from_turn = body.get("name"), body.get("parent"), body.get("from_turn")
        if type(name) is not str or not _NAME.fullmatch(name):
            return "no valid session name"
        if parent is None:
            return None if from_turn is None else "from_turn without a parent"
        if type(parent) is not str or parent not in starts or not _is_int(from_turn):
            return "its parent is not an earlier session or from_turn is not a count"
        return None
    if type(body.get("session")) is not str or body["session"] not in starts:
        return "its session was never started"
    if not (_is_int(body.get("number")) and _is_int(body.get("seq"))):
        return "number and seq must be counts"
    h = body.get("state_hash")
    if type(h) is not str or not re.fullmatch(r"[0-9a-f]{64}", h):
        return "state_hash is not 64 hex digits"
    if body.get("label") is not None and type(body["label"]) is not str:
        return "label is not a string"
    if not isinstance(body.get("meta", {}), dict) or not isinstance(body.get("receipts", []), list):
        return "meta must be an object and receipts a list"
    try:
        for r in body.get("receipts", []):
            Receipt.from_dict(r)
    except (ValoriError, TypeError, ValueError, KeyError, AttributeError) as exc:
        return f"a receipt in it does not parse ({exc})"
    return None


def _turn_count(name: str, starts: dict[str, dict[str, Any]],
                own: dict[str, list[tuple[int, dict[str, Any]]]]) -> int:
    """Number of turns in ``name``'s history (inherited ones included), without parsing receipts."""
    start = starts[name]
    inherited = 0
    if start.get("parent") is not None:
        inherited = min(start["from_turn"], _turn_count(start["parent"], starts, own))
    return inherited + len(own.get(name, []))


def _history(name: str, starts: dict[str, dict[str, Any]],
             own: dict[str, list[tuple[int, dict[str, Any]]]]) -> list[Turn]:
    """Turns of ``name`` including those inherited from the fork ancestry."""
    start = starts[name]
    inherited: list[Turn] = []
    if start.get("parent") is not None:
        inherited = _history(start["parent"], starts, own)[: start["from_turn"]]
    out = list(inherited)
    for note_seq, body in own.get(name, []):
        out.append(Turn(name, len(out) + 1, body["seq"], body["state_hash"], body.get("label"), body.get("meta", {}),
                        [Receipt.from_dict(r) for r in body.get("receipts", [])], note_seq))
    return out


# ---------------------------------------------------------------------------- the session


class Session:
    """A handle on one named session of a store (cheap; holds no state of its own)."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    def __repr__(self) -> str:
        return f"Session({self.name!r}, turns={self.info().turns})"

    def info(self) -> SessionInfo:
        starts, own = _index(self.store)
        s = starts[self.name]
        return SessionInfo(self.name, s.get("parent"), s.get("from_turn"), _turn_count(self.name, starts, own),
                           s["seq"])

    def turns(self) -> list[Turn]:
        """Every turn of this session's history, oldest first (inherited ones included)."""
        starts, own = _index(self.store)
        return _history(self.name, starts, own)

    def turn_at(self, number: int) -> Turn:
        turns = self.turns()
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= len(turns):
            raise NotFoundError(f"session {self.name!r} has turns 1..{len(turns)}; no turn {number!r}")
        return turns[number - 1]

    def mark_turn(self, receipts: Sequence[Receipt] = (), label: str | None = None,
                  meta: Mapping[str, Any] | None = None) -> Turn:
        """Record a turn now: a checkpoint of the current state plus ``receipts`` and ``meta``."""
        # everything is checked before the turn's checkpoint is logged: a call that raises changes nothing
        if meta is not None and not isinstance(meta, Mapping):
            raise InputError(f"turn meta must be a dict, got {type(meta).__name__}")
        meta_dict = dict(meta or {})
        try:
            canonical_json(meta_dict)
        except MetadataError as exc:
            raise InputError(f"turn meta must be JSON: {exc}") from None
        if isinstance(receipts, (str, bytes, Mapping)) or not isinstance(receipts, Iterable):
            raise InputError(f"receipts must be a list of receipts, got {type(receipts).__name__}")
        coerced = [Receipt.coerce(r) for r in receipts]
        if label is not None:
            check_name_text(label, "a turn label")
        starts, own = _index(self.store)
        number = _turn_count(self.name, starts, own) + 1
        cp = self.store.checkpoint(label if label is not None else f"{self.name}#{number}")
        body = {"session": self.name, "number": number, "seq": cp.seq, "state_hash": cp.state_hash,
                "label": cp.label, "meta": meta_dict, "receipts": [r.to_dict() for r in coerced]}
        note_seq = self.store.annotate(TURN, body)
        return Turn(self.name, number, cp.seq, cp.state_hash, cp.label, meta_dict, coerced, note_seq)

    @contextmanager
    def turn(self, label: str | None = None, meta: Mapping[str, Any] | None = None) -> Iterator[list[Receipt]]:
        """Record a turn around a block: every search of this store inside it (any adapter,
        this thread or context) is receipted (other stores' searches are not), and on normal exit the turn is marked. The yielded list
        fills with the receipts. On an exception nothing is marked."""
        with record_receipts(store=self.store) as got:
            yield got
        self.mark_turn(list(got), label=label, meta=meta)

    def rewind(self, number: int) -> Checkpoint:
        """Restore the store to the state turn ``number`` left behind (logged; nothing erased)."""
        t = self.turn_at(number)
        return self.store.restore(t.checkpoint)

    def verify(self) -> list[TurnCheck]:
        """Re-execute every recorded retrieval at its recorded state (one log replay)."""
        turns = self.turns()
        flat = [r for t in turns for r in t.receipts]
        checks = verify_receipts(self.store, flat) if flat else []
        out, i = [], 0
        for t in turns:
            out.append(TurnCheck(t, checks[i: i + len(t.receipts)]))
            i += len(t.receipts)
        return out


# ---------------------------------------------------------------------------- store-level API


def open_session(store: Store, name: str) -> Session:
    """Resume session ``name``, or start it when the store has none by that name."""
    name = check_name(name)
    starts, _ = _index(store)
    if name not in starts:
        store.annotate(START, {"name": name, "parent": None, "from_turn": None})
    return Session(store, name)


def list_sessions(store: Store) -> list[SessionInfo]:
    """Every session, in the order they were started."""
    starts, own = _index(store)
    return [SessionInfo(n, s.get("parent"), s.get("from_turn"), _turn_count(n, starts, own), s["seq"])
            for n, s in sorted(starts.items(), key=lambda kv: kv[1]["seq"])]


def fork_session(store: Store, name: str, source: str, turn: int) -> Session:
    """Start ``name`` with the history of ``source`` up to ``turn``, and rewind the store there."""
    name = check_name(name)
    starts, _ = _index(store)
    if source not in starts:
        raise NotFoundError(f"no session {source!r}; store.sessions() lists them")
    if name in starts:
        raise InputError(f"a session named {name!r} already exists; fork under a new name")
    base = Session(store, source).turn_at(turn)
    store.annotate(START, {"name": name, "parent": source, "from_turn": turn})
    store.restore(base.checkpoint)
    return Session(store, name)
