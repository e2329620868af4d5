"""Inclusion (and absence) proofs of records in a state, as plain JSON data.

:class:`StateProof` says that record ``id`` — with exactly this text, metadata and stored
vector — is in the state whose root is ``root`` (or that no record ``id`` is). It holds
the record, its bucket's (key, leaf) entries and, for every split node above, the node's
record count and its 15 other children's digests: about 3 KB at a million records.
:func:`verify_proof` checks it with no store at hand, by recomputing the leaf, the bucket
and every node up to the root (:mod:`valori_store.spec.state_tree`).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from valori_store.errors import InputError
from valori_store.spec import MAX_DIM, METRICS, get_metric, state_tree

__all__ = ["PROOF_VERSION", "ProofCheck", "StateProof", "verify_proof"]

PROOF_VERSION = 1
#: The metric codes a state root can carry (one per metric of the spec).
METRIC_CODES = frozenset(get_metric(name).code for name in METRICS)


@dataclass(frozen=True)
class StateProof:
    """A proof for one id against ``root`` (hex). ``present``: the record is in the state
    (then ``text``, ``metadata`` (canonical JSON text) and ``vector`` (base64 of the stored
    little-endian int32 row, or None without a vector) describe it)."""

    root: str
    id: str
    present: bool
    metric_code: int
    dim: int
    path: list[tuple[int, list[str]]]
    bucket: list[tuple[str, str]]
    text: str | None = None
    metadata: str | None = None
    vector: str | None = None
    version: int = PROOF_VERSION

    def record(self) -> state_tree.RecordBytes | None:
        if not self.present:
            return None
        vec = None if self.vector is None else base64.b64decode(self.vector.encode("ascii"), validate=True)
        return state_tree.RecordBytes(self.id, self.text, (self.metadata or "").encode("utf-8"), vec)

    def vector_ints(self) -> np.ndarray | None:
        """The proved stored vector as int32 (None for an absent record or one without a vector)."""
        if self.vector is None:
            return None
        return np.frombuffer(base64.b64decode(self.vector.encode("ascii"), validate=True), dtype="<i4").astype(np.int32)

    def to_dict(self) -> dict[str, Any]:
        return {"version": self.version, "root": self.root, "id": self.id, "present": self.present,
                "metric_code": self.metric_code, "dim": self.dim,
                "path": [{"count": c, "siblings": list(s)} for c, s in self.path],
                "bucket": [list(e) for e in self.bucket], "text": self.text, "metadata": self.metadata,
                "vector": self.vector}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StateProof:
        """Parse a proof dict (InputError for a malformed one; the checks are in verify_proof)."""
        try:
            path = [(int(step["count"]), [str(x) for x in step["siblings"]]) for step in data["path"]]
            bucket = [(str(k), str(v)) for k, v in data["bucket"]]
            fields = {name: data.get(name) for name in ("text", "metadata", "vector")}
            for name, value in fields.items():
                if value is not None and not isinstance(value, str):
                    raise TypeError(f"{name} must be a string or null, not {type(value).__name__}")
            if not isinstance(data["present"], bool):
                raise TypeError("present must be true or false")
            return cls(str(data["root"]), str(data["id"]), data["present"], int(data["metric_code"]),
                       int(data["dim"]), path, bucket, fields["text"], fields["metadata"], fields["vector"],
                       int(data.get("version", PROOF_VERSION)))
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InputError(f"not a valori state proof: {exc!r}") from None

    @classmethod
    def coerce(cls, value: StateProof | Mapping[str, Any]) -> StateProof:
        return value if isinstance(value, StateProof) else cls.from_dict(value)


@dataclass(frozen=True)
class ProofCheck:
    """The verdict on a proof: ``status`` is ``"present"``, ``"absent"`` (both verified
    against the root) or ``"invalid"`` (with the reason)."""

    status: str
    id: str
    message: str

    @property
    def ok(self) -> bool:
        return self.status in ("present", "absent")


def _bytes(hex_text: str, n: int = 32) -> bytes:
    out = bytes.fromhex(hex_text)
    if len(out) != n:
        raise ValueError(f"a digest of {len(out)} bytes")
    return out


def verify_proof(root: str | bytes, proof: StateProof | Mapping[str, Any]) -> ProofCheck:
    """Check ``proof`` against the state root ``root`` (hex or bytes); never raises on bad input."""
    try:
        p = StateProof.coerce(proof)
    except InputError as exc:
        return ProofCheck("invalid", "", str(exc))
    try:
        want = _bytes(root) if isinstance(root, str) else bytes(root)
        if p.version != PROOF_VERSION:
            return ProofCheck("invalid", p.id, f"proof version {p.version}; this valori-store checks {PROOF_VERSION}")
        if p.root != want.hex():
            return ProofCheck("invalid", p.id, "the proof is for another state root")
        if p.metric_code not in METRIC_CODES or not 1 <= p.dim <= MAX_DIM:
            return ProofCheck("invalid", p.id, f"metric code {p.metric_code} / dim {p.dim} out of range")
        if any(not 0 <= c < 1 << 64 for c, _ in p.path):
            return ProofCheck("invalid", p.id, "a record count in the proof's path is out of range")
        ref = state_tree.Proof(p.id, p.record(), p.metric_code, p.dim,
                               tuple(state_tree.PathStep(c, tuple(_bytes(x) for x in s)) for c, s in p.path),
                               tuple((_bytes(k), _bytes(v)) for k, v in p.bucket))
        if ref.record is not None and ref.record.vector is not None and len(ref.record.vector) != 4 * p.dim:
            return ProofCheck("invalid", p.id, "the proved vector does not have the state's dimension")
        if state_tree.proof_root(ref) != want:
            return ProofCheck("invalid", p.id, "the proof does not lead to the root (edited, or another state)")
    except (ValueError, TypeError, UnicodeError, OverflowError, struct.error) as exc:
        return ProofCheck("invalid", getattr(p, "id", ""), f"malformed proof: {exc}")
    if p.present:
        return ProofCheck("present", p.id, "the record with exactly these bytes is in the state")
    return ProofCheck("absent", p.id, "no record with this id is in the state")
