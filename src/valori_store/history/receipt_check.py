"""Receipt verification: re-execute each receipt's query at its recorded state and compare.

A receipt is checked on its own first (digest, versions, shape), then its
:class:`~valori_store.query.query.Query` is run — with :meth:`Query.run`, the very code a live
search runs — on the state it names: the live table when a store is still in that state,
otherwise the state rebuilt by one replay of the log (all receipts of a call share it), or
a snapshot file holding exactly that state.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from valori_store import spec
from valori_store.errors import CorruptFileError, InputError, ZeroVectorError
from valori_store.format import snapshot
from valori_store.query.proof import StateProof, verify_proof
from valori_store.query.query import MODES
from valori_store.query.receipt import RECEIPT_VERSION, Receipt
from valori_store.state.table import RecordTable
from valori_store.storage import layout
from valori_store.storage.state_at import walk_to
from valori_store.store.facade import Store

__all__ = ["STATUSES", "ReceiptCheck", "verify_receipt", "verify_receipt_proofs", "verify_receipts"]

STATUSES = ("match", "proved", "mismatch", "tampered", "state-unavailable", "corrupt-log", "invalid")


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
        return self.status in ("match", "proved")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _verdict(r: Receipt, status: str, message: str, actual: list[list[str]] | None = None) -> ReceiptCheck:
    return ReceiptCheck(status, message, r.digest, r.results, actual)


def _check_receipt_itself(r: Receipt) -> ReceiptCheck | None:
    """Digest, version and shape checks that need no store."""
    if r.computed_digest() != r.digest:
        return _verdict(r, "tampered", "the receipt's digest does not match its content: it was edited")
    if r.version != RECEIPT_VERSION or r.spec_version not in spec.SPEC_VERSIONS:
        return _verdict(r, "invalid", f"receipt version {r.version} / spec {r.spec_version}; this "
                        f"valori-store verifies {RECEIPT_VERSION} / specs {spec.SPEC_VERSIONS}")
    if r.mode not in MODES or r.metric not in spec.METRICS or r.k < 0:
        return _verdict(r, "invalid", f"unknown mode {r.mode!r} or metric {r.metric!r}")
    return None


def _rerun(r: Receipt, table: RecordTable) -> ReceiptCheck:
    """Execute the receipt's query on ``table`` (already at the receipt's state) and compare."""
    try:
        query = r.to_query()
    except ZeroVectorError:
        return _verdict(r, "invalid", "the receipt's query is a zero vector")
    except (ValueError, ZeroDivisionError) as exc:  # malformed query/filter/lambda in a sealed receipt
        return _verdict(r, "invalid", f"the receipt cannot be executed: {exc}")
    actual = [[table.ids[row], str(raw)] for row, raw in query.run(table)]
    if actual == r.results:
        return _verdict(r, "match", f"re-executed at event {r.seq}: {len(actual)} identical results", actual)
    diff = next((i for i, (a, b) in enumerate(zip(actual, r.results)) if a != b), min(len(actual), len(r.results)))
    return _verdict(r, "mismatch", f"re-executed at event {r.seq}: results differ from position {diff}", actual)


def verify_receipts(
    source: Store | str | os.PathLike[str], receipts: Iterable[Receipt | Mapping[str, Any] | str],
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
    pending = {i: r for i, (r, c) in enumerate(zip(parsed, checks)) if c is None and r is not None}
    if pending:
        _verify_against(source, pending, checks)
    return [c for c in checks if c is not None]


def verify_receipt_proofs(receipt: Receipt | Mapping[str, Any] | str) -> ReceiptCheck:
    """Check a receipt with its attached proofs alone, no store: each hit's record is in the
    receipt's state (its proof leads to ``state_hash``) and its raw score is the exact
    score of the receipt's query with the proved vector. ``proved`` when all hold; this
    confirms what was returned, not that it was the top-k (re-execution does that)."""
    try:
        r = Receipt.coerce(receipt)
    except InputError as exc:
        return ReceiptCheck("invalid", str(exc), "")
    bad = _check_receipt_itself(r)
    if bad is not None:
        return bad
    if r.proofs is None:
        return _verdict(r, "invalid", "the receipt carries no proofs (search_with_receipt(..., proofs=True))")
    if len(r.proofs) != len(r.results):
        return _verdict(r, "invalid", f"the receipt carries {len(r.proofs)} proofs for {len(r.results)} hits")
    try:
        query = r.to_query()
    except (ValueError, ZeroDivisionError) as exc:
        return _verdict(r, "invalid", f"the receipt's query cannot be used: {exc}")
    metric = spec.get_metric(r.metric)
    for (rid, raw), proof in zip(r.results, r.proofs):
        check = verify_proof(r.state_hash, proof)
        parsed = StateProof.coerce(proof) if check.ok else None
        if parsed is None or not check.ok or parsed.id != rid or not parsed.present:
            return _verdict(r, "invalid", f"the proof for {rid!r} does not hold: {check.message}")
        vector = parsed.vector_ints()
        if vector is None or (parsed.dim, parsed.metric_code) != (r.dim, metric.code):
            return _verdict(r, "invalid", f"the proved record {rid!r} has no vector of the receipt's shape")
        if metric.raw(query.stored.tolist(), vector.tolist()) != int(raw):
            return _verdict(r, "mismatch", f"the raw score of {rid!r} is not the query's exact score with its "
                            f"proved vector")
    return _verdict(r, "proved", f"{len(r.results)} hits proved in state {r.state_hash[:16]}...: records and exact "
                    f"scores")


def verify_receipt(source: Store | str | os.PathLike[str], receipt: Receipt | Mapping[str, Any] | str) -> ReceiptCheck:
    """Re-execute one receipt's search at its recorded state and compare (see module doc)."""
    return verify_receipts(source, [receipt])[0]


def _shape_ok(r: Receipt, dim: int, metric: str) -> ReceiptCheck | None:
    if (r.dim, r.metric) != (dim, metric):
        return _verdict(r, "state-unavailable", f"receipt is for dim {r.dim} {r.metric}; the store is dim {dim} "
                        f"{metric}")
    return None


def _verify_against(source: Any, pending: dict[int, Receipt], checks: list[ReceiptCheck | None]) -> None:
    if isinstance(source, Store):
        rest: dict[int, Receipt] = {}
        with source.view() as view:
            for i, r in pending.items():
                checks[i] = _shape_ok(r, source.dim, source.metric)
                if checks[i] is not None:
                    continue
                if r.state_hash == view.table.state_digest(r.spec_version).hex():
                    checks[i] = _rerun(r, view.table)
                else:
                    rest[i] = r
            if not rest:
                return
            data = view.read_log()
        _walk_log(data, "event log", rest, checks, source.path)
        return
    path = Path(source)
    if layout.classify(path) == layout.DIRECTORY:
        log_path = layout.log_path(path)
        _walk_log(log_path.read_bytes(), str(log_path), pending, checks, path)
        return
    try:
        table = RecordTable.from_content(snapshot.decode(path.read_bytes(), str(path)))
    except CorruptFileError as exc:
        for i, r in pending.items():
            checks[i] = _verdict(r, "corrupt-log", str(exc))
        return
    for i, r in pending.items():
        checks[i] = _shape_ok(r, table.dim, table.metric.name)
        if checks[i] is not None:
            continue
        if r.state_hash != table.state_digest(r.spec_version).hex():
            checks[i] = _verdict(r, "state-unavailable", "the snapshot holds a different state than the receipt's "
                                 "(a snapshot has no history; verify against the store directory)")
        else:
            checks[i] = _rerun(r, table)


def _walk_log(data: bytes, what: str, pending: dict[int, Receipt], checks: list[ReceiptCheck | None],
              root: Path | None = None) -> None:
    """One replay of the log (from a compacted log's base image in directory ``root``); each
    receipt is re-run when the walk reaches its position."""
    by_seq: dict[int, list[int]] = {}
    for i, r in pending.items():
        by_seq.setdefault(r.seq, []).append(i)
    result = None
    try:
        for seq, result in walk_to(data, what, by_seq, root=root):
            if seq is None:
                break
            for i in by_seq.pop(seq):
                r = pending[i]
                state = result.table.state_digest(r.spec_version).hex()
                if (r.dim, r.metric) != (result.table.dim, result.metric):
                    checks[i] = _verdict(r, "state-unavailable", "receipt is for another store shape")
                elif state != r.state_hash:
                    checks[i] = _verdict(r, "state-unavailable", f"the log's state after event {r.seq} is not the "
                                         f"receipt's state: the receipt comes from another store or history")
                else:
                    checks[i] = _rerun(r, result.table)
    except CorruptFileError as exc:
        for i in [i for ids in by_seq.values() for i in ids]:
            checks[i] = _verdict(pending[i], "corrupt-log", str(exc))
        return
    scan = None if result is None else result.scan
    base_seq = 0 if result is None else result.base_seq
    for ids in by_seq.values():  # positions beyond the end of the (intact part of the) log, or before its base
        for i in ids:
            r = pending[i]
            if r.seq < base_seq:
                checks[i] = _verdict(r, "state-unavailable", f"the store's history before event {base_seq} was "
                                     f"compacted (folded into a base image): the state after event {r.seq} this "
                                     f"receipt was taken at no longer exists, so its results cannot be re-run")
            elif scan is not None and scan.torn_bytes:
                checks[i] = _verdict(r, "corrupt-log", f"{what}: the log's final record is damaged ({scan.torn_bytes} "
                                     f"bytes at offset {scan.good_end}: {scan.torn_reason}); event {r.seq} is not "
                                     f"readable")
            else:
                checks[i] = _verdict(r, "state-unavailable", f"the log ends before event {r.seq}")
