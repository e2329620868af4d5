"""Reads that need no query vector: records by id, and filtered listings in id order."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from valori_store.errors import InputError
from valori_store.format.canonical import decode_metadata
from valori_store.query.filter import Filter
from valori_store.query.proof import StateProof
from valori_store.query.query import check_k
from valori_store.records import Record
from valori_store.spec.state_tree import key_of
from valori_store.state.table import RecordTable
from valori_store.state.validate import check_id_list
from valori_store.store.live import Live


def record(table: RecordTable, row: int) -> Record:
    """A copy of one row as a Record (its vector read-only; None for a record without one)."""
    vec = None
    if table.has_vector(row):
        vec = table.matrix[row].copy()
        vec.flags.writeable = False
    return Record(table.ids[row], vec, table.texts[row], decode_metadata(table.metas[row]))


def prove(live: Live, ids: Iterable[str]) -> list[StateProof]:
    """Proofs that each id's record (or its absence) is in the current state (spec 2)."""
    wanted = check_id_list(ids)
    with live.lock.read():
        live.check_open()
        return prove_in(live.table, wanted)


def prove_in(t: RecordTable, wanted: list[str]) -> list[StateProof]:
    """Proofs for ``wanted`` ids in table ``t`` (the caller holds a lock)."""
    if t.tree is None:
        raise InputError("proofs need a spec-2 store (valori-store migrate converts a 0.1 store)")
    root = t.state_hash()
    out = []
    for rid in wanted:
        path, bucket = t.tree.prove(t.n, key_of(rid))
        row = t.row_of.get(rid)
        common = dict(root=root, id=rid, metric_code=t.metric.code, dim=t.dim,
                      path=[(c, [d.hex() for d in sib]) for c, sib in path],
                      bucket=[(k.hex(), v.hex()) for k, v in bucket])
        if row is None:
            out.append(StateProof(present=False, **common))
            continue
        vec = None
        if t.has_vector(row):
            vec = base64.b64encode(np.ascontiguousarray(t.matrix[row], "<i4").tobytes()).decode("ascii")
        out.append(StateProof(present=True, text=t.texts[row], metadata=t.metas[row].decode("utf-8"), vector=vec,
                              **common))
    return out


def all_ids(live: Live) -> list[str]:
    with live.lock.read():
        live.check_open()
        t = live.table
        return [t.ids[r] for r in t.id_order()]


def get(live: Live, ids: Iterable[str]) -> list[Record]:
    """Records for the ids that exist, in input order (missing ids are skipped)."""
    wanted = check_id_list(ids)
    with live.lock.read():
        live.check_open()
        t = live.table
        rows = [t.row_of.get(i) for i in wanted]
        return [record(t, r) for r in rows if r is not None]


def _page(filter: Mapping[str, Any] | None, limit: int | None, offset: int) -> tuple[Filter, int, int | None]:
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InputError(f"offset must be an int >= 0, got {offset!r}")
    if limit is not None:
        limit = check_k(limit, "limit")
    return Filter.compile(filter), offset, None if limit is None else offset + limit


def select(live: Live, filter: Mapping[str, Any] | None, limit: int | None, offset: int) -> list[Record]:
    """Records passing ``filter``, in id order, paged; one consistent view."""
    flt, start, end = _page(filter, limit, offset)
    with live.lock.read():
        live.check_open()
        t = live.table
        return [record(t, r) for r in flt.rows(t)[start:end]]


def select_ids(live: Live, filter: Mapping[str, Any] | None, limit: int | None, offset: int) -> list[str]:
    """Ids of the records passing ``filter``, in id order, paged."""
    flt, start, end = _page(filter, limit, offset)
    with live.lock.read():
        live.check_open()
        t = live.table
        return [t.ids[r] for r in flt.rows(t)[start:end]]
