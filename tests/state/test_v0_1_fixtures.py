"""Stores and snapshots written by valori-store 0.1.0 open and answer as 0.1.0 did.

The fixtures in ``tests/fixtures/v0_1/`` were written by 0.1.0 (``make_v0_1.py`` says how)
with the answers 0.1.0 gave on them (``expected.json``). Each test works on a copy, so the
committed files never change.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from valori_store import ValoriStore, verify
from valori_store.receipts import Receipt, verify_receipts

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "v0_1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def _vec(i: int, dim: int = 8) -> list[float]:
    """The fixture generator's vectors (make_v0_1.py)."""
    return [((i * 7 + j * 13) % 29 - 14) / 64.0 for j in range(dim)]


def _hits(hits: list) -> list[list]:
    return [[h.id, str(h.raw), h.text, h.metadata] for h in hits]


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "v0_1"
    shutil.copytree(FIXTURES, dst)
    return dst


def test_core_store_reopens_with_the_same_state_history_and_answers(copy: Path) -> None:
    exp = EXPECTED["core"]
    with ValoriStore.open(copy / "core") as store:
        assert store.state_hash() == exp["state_hash"]
        assert store.ids() == exp["ids"]
        assert store.log_length == exp["log_length"]
        assert [[c.seq, c.state_hash, c.label] for c in store.history()] == exp["history"]
        assert [[s.name, s.turns, s.start_seq] for s in store.sessions()] == exp["sessions"]
        turns = store.session("alice").turns()
        assert [[t.number, t.seq, t.state_hash, t.label, t.meta] for t in turns] == exp["turns"]
        assert [r.to_dict() for t in turns for r in t.receipts] == exp["session_receipts"]
        for name, (q, k, f) in exp["queries"].items():
            assert _hits(store.search(q, k=k, filter=f)) == exp["searches"][name], name
        assert _hits(store.mmr_search(_vec(4), k=4, fetch_k=10, lambda_mult=0.5)) == exp["mmr"]
        records = {r.id: [r.vector.tolist(), r.text, r.metadata] for r in store.get(store.ids())}
        assert records == exp["records"]
        checks = store.session("alice").verify()
        assert all(c.ok for c in checks) and sum(len(c.receipts) for c in checks) == len(exp["session_receipts"])
        assert store.verify_receipt(exp["head_receipt"]).ok
        # every checkpoint restores to its recorded state
        for seq, state_hash, _ in exp["history"]:
            assert store.restore(seq).state_hash == state_hash
            assert store.state_hash() == state_hash
        assert store.restore("third").state_hash == exp["state_hash"]


def test_core_store_verifies_and_receipts_verify_against_the_directory(copy: Path) -> None:
    report = verify(copy / "core")
    assert report.ok, report.problems
    assert report.state_hash == EXPECTED["core"]["state_hash"]
    checks = verify_receipts(copy / "core", [Receipt.from_dict(r) for r in EXPECTED["core"]["session_receipts"]])
    assert [c.status for c in checks] == ["match"] * len(EXPECTED["core"]["session_receipts"])


def test_snapshots_load_with_the_same_state_and_answers(copy: Path) -> None:
    core = ValoriStore.load(copy / "core.vsnap")
    assert core.state_hash() == EXPECTED["core"]["state_hash"]
    assert core.ids() == EXPECTED["core"]["ids"]
    l2 = ValoriStore.load(copy / "l2.vsnap")
    assert l2.state_hash() == EXPECTED["l2"]["state_hash"]
    assert _hits(l2.search([1, 1, 1, 1], k=4)) == EXPECTED["l2"]["search"]
    assert _hits(l2.search([32000, -32000, 0, 0], k=2)) == EXPECTED["l2"]["search_big"]


def test_langgraph_memory_reopens_and_answers_the_same(copy: Path) -> None:
    pytest.importorskip("langgraph")
    from valori_store.embedder import HashingEmbedder
    from valori_store.langgraph import ValoriMemoryStore

    exp = EXPECTED["langgraph"]
    mem = ValoriMemoryStore(index={"dims": 8, "embed": HashingEmbedder(dim=8), "fields": ["text"]},
                            path=str(copy / "langgraph"))

    def items(xs: list) -> list:
        return [[list(i.namespace), i.key, i.value, i.created_at.isoformat(), i.updated_at.isoformat(),
                 getattr(i, "score", None)] for i in xs]

    try:
        assert items([mem.get(("users", "alice"), "pref"), mem.get(("users", "bob", "archive"), "old")]) == exp["get"]
        assert (mem.get(("docs",), "gone") is None) == exp["get_missing"]
        assert items(mem.search(("users",), limit=10)) == exp["search_noquery"]
        assert items(mem.search(("users",), filter={"level": {"$gte": 2}}, limit=10)) == exp["search_filter"]
        assert items(mem.search((), query="sourdough bread", limit=4)) == exp["search_query"]
        assert items(mem.search(("users",), query="food", limit=2, offset=1)) == exp["search_query_offset"]
        assert [list(n) for n in mem.list_namespaces()] == exp["namespaces"]
        assert [list(n) for n in mem.list_namespaces(prefix=("users",), max_depth=2)] == exp["namespaces_prefix"]
        assert [list(n) for n in mem.list_namespaces(suffix=("archive",))] == exp["namespaces_suffix"]
        # writing to a 0.1 memory keeps every answer consistent
        mem.put(("users", "carol"), "pref", {"text": "tea", "level": 1})
        mem.delete(("users", "bob", "archive"), "old")
        assert ["users", "carol"] in [list(n) for n in mem.list_namespaces()]
        assert ["users", "bob", "archive"] not in [list(n) for n in mem.list_namespaces()]
    finally:
        mem.close()
