"""Running queries on a live store: rankings, hits and receipts under one read lock."""

from __future__ import annotations

from valori_store.query import receipt as receipts
from valori_store.query.query import Query, hits
from valori_store.records import Hit
from valori_store.store.live import Live
from valori_store.store.reads import prove_in


def execute(live: Live, queries: list[Query], want: bool, source: object, proofs: bool = False
            ) -> tuple[list[list[Hit]], list[receipts.Receipt] | None]:
    """Run ``queries`` on the live table; receipts when ``want`` or when a
    :func:`~valori_store.query.receipt.record_receipts` context is active (emitted as from
    ``source``, the store); ``proofs``: the receipts carry a proof for each hit, taken
    under the same read lock (so of the very state the search saw)."""
    with live.lock.read():
        live.check_open()
        table = live.table
        rankings = Query.run_batch(queries, table) if len(queries) != 1 else [queries[0].run(table)]
        made = None
        if want or receipts.recording():
            digest, seq = table.state_digest(), live.seq
            made = [receipts.make(q, [(table.ids[r], raw) for r, raw in ranked], metric=table.metric.name,
                                  state_digest=digest, seq=seq, spec_version=table.spec)
                    for q, ranked in zip(queries, rankings)]
            if proofs:
                made = [r.with_proofs([p.to_dict() for p in prove_in(table, r.ids)]) for r in made]
            receipts.emit(made, source)
        return [hits(table, ranked) for ranked in rankings], made
