"""Migrating the committed 0.1 fixtures (``valori_store.migrate`` / ``valori-store migrate``).

The migrated store answers exactly as 0.1 did (``expected.json``), keeps its history (same
seqs and labels), records spec-2 roots that the reference recomputes from the records,
keeps 0.1 receipts verifiable, accepts checkpoints recorded with their 0.1 hash, and the
original is kept byte for byte as the backup. Opening a 0.1 store never rewrites it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from valori_store import Checkpoint, ValoriStore, migrate, verify
from valori_store.cli import main as cli_main
from valori_store.errors import InputError, LockedError
from valori_store.receipts import Receipt, verify_receipts
from valori_store.spec import state_tree
from valori_store.storage import layout

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "v0_1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def _vec(i: int, dim: int = 8) -> list[float]:
    return [((i * 7 + j * 13) % 29 - 14) / 64.0 for j in range(dim)]


def _hits(hits: list) -> list[list]:
    return [[h.id, str(h.raw), h.text, h.metadata] for h in hits]


def _tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file() and p.name != layout.LOCK_NAME}


def _reference_root(store: ValoriStore) -> str:
    """The spec-2 root recomputed by the reference from the store's records."""
    recs = []
    with store.view() as view:
        t = view.table
        for rid in sorted(t.row_of, key=lambda s: s.encode()):
            r = t.row_of[rid]
            recs.append(state_tree.RecordBytes(rid, t.texts[r], t.metas[r],
                                               t.matrix[r].astype("<i4").tobytes() if t.has_vector(r) else None))
        code, dim = t.metric.code, t.dim
    return state_tree.state_root(recs, code, dim).hex()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    dst = tmp_path / "v0_1"
    shutil.copytree(FIXTURES, dst)
    return dst


def test_opening_a_0_1_store_never_rewrites_it(copy: Path) -> None:
    before = _tree(copy / "core")
    with ValoriStore.open(copy / "core") as store:
        assert store.spec_version == 1
        store.search(_vec(1), k=3)
    ValoriStore.open_readonly(copy / "core").close()
    assert _tree(copy / "core") == before


def test_migrated_store_answers_as_0_1_did_with_spec_2_roots(copy: Path) -> None:
    exp = EXPECTED["core"]
    original = _tree(copy / "core")
    result = migrate(copy / "core")
    assert result.changed and result.backup == str(copy / "core.v1-backup")
    assert result.state_hash_v1 == exp["state_hash"]
    assert _tree(copy / "core.v1-backup") == original  # the original, untouched
    with ValoriStore.open(copy / "core") as store:
        assert store.spec_version == 2
        assert store.state_hash() == result.state_hash == _reference_root(store)
        assert store.state_hash(spec=1) == exp["state_hash"]
        assert store.ids() == exp["ids"]
        for name, (q, k, f) in exp["queries"].items():
            assert _hits(store.search(q, k=k, filter=f)) == exp["searches"][name], name
        assert _hits(store.mmr_search(_vec(4), k=4, fetch_k=10, lambda_mult=0.5)) == exp["mmr"]
        records = {r.id: [r.vector.tolist(), r.text, r.metadata] for r in store.get(store.ids())}
        assert records == exp["records"]
        history = store.history()
        assert [[c.seq, c.label] for c in history] == [[s, lab] for s, _, lab in exp["history"]]
        assert store.log_length == exp["log_length"] + 1  # plus the migration note
        # each checkpoint's new root is the reference root of the state it names
        for cp in history:
            view = store.state_at(cp.seq)
            assert view.state_hash == cp.state_hash
            assert view.table.state_digest(1).hex() == {s: h for s, h, _ in exp["history"]}[cp.seq]
        turns = store.session("alice").turns()
        assert [[t.number, t.seq, t.label, t.meta] for t in turns] == [[n, s, lab, m] for n, s, _, lab, m in exp["turns"]]
        assert all(t.state_hash == next(c.state_hash for c in history if c.seq == t.seq) for t in turns)
        # 0.1 receipts (spec_version 1) still verify; their session's turns restore
        checks = store.session("alice").verify()
        assert all(c.ok for c in checks)
        assert store.verify_receipt(exp["head_receipt"]).ok
        for seq, v1_hash, _ in exp["history"]:
            assert store.restore(Checkpoint(seq, v1_hash)).seq == seq  # recorded before the migration
            assert store.state_hash(spec=1) == v1_hash
        store.upsert(ids=["new"], vectors=[_vec(40)])
        store.checkpoint("after-migration")
    report = verify(copy / "core")
    assert report.ok, report.problems
    checks = verify_receipts(copy / "core", [Receipt.from_dict(r) for r in exp["session_receipts"]])
    assert [c.status for c in checks] == ["match"] * len(exp["session_receipts"])


def test_migrating_again_is_a_no_op_and_backups_are_never_overwritten(copy: Path) -> None:
    migrate(copy / "core")
    before = _tree(copy / "core")
    again = migrate(copy / "core")
    assert not again.changed and _tree(copy / "core") == before
    shutil.copytree(FIXTURES / "core", copy / "core2")
    shutil.copytree(FIXTURES / "core", copy / "core2.v1-backup")
    with pytest.raises(InputError, match="v1-backup"):
        migrate(copy / "core2")
    assert _tree(copy / "core2") == _tree(FIXTURES / "core")
    assert not (copy / ".core2.migrating").exists()


def test_migrate_to_out_leaves_the_original_and_refuses_a_locked_store(copy: Path, tmp_path: Path) -> None:
    before = _tree(copy / "core")
    result = migrate(copy / "core", tmp_path / "out")
    assert result.backup is None and _tree(copy / "core") == before
    with ValoriStore.open(tmp_path / "out") as store:
        assert store.state_hash(spec=1) == EXPECTED["core"]["state_hash"]
    with ValoriStore.open(copy / "core"):
        with pytest.raises(LockedError):
            migrate(copy / "core", tmp_path / "out2")
    with pytest.raises(InputError):
        migrate(copy / "core", tmp_path / "out")  # exists: never overwritten


def test_a_crash_between_the_renames_is_finished_by_a_rerun(copy: Path) -> None:
    result = migrate(copy / "core", copy / ".core.migrating")
    (copy / "core").rename(copy / "core.v1-backup")  # the first rename happened, the second did not
    finished = migrate(copy / "core")
    with ValoriStore.open(copy / "core") as store:
        assert store.state_hash() == result.state_hash
    assert finished.changed is False  # the completed swap left a spec-2 store
    assert _tree(copy / "core.v1-backup") == _tree(FIXTURES / "core")


def test_snapshots_migrate_to_format_3(copy: Path) -> None:
    for name in ("core", "l2"):
        path = copy / f"{name}.vsnap"
        original = path.read_bytes()
        result = migrate(path)
        assert result.changed and Path(result.backup or "").read_bytes() == original
        store = ValoriStore.load(path)
        assert store.spec_version == 2 and store.state_hash(spec=1) == EXPECTED[name]["state_hash"]
        assert store.state_hash() == _reference_root(store)
    l2 = ValoriStore.load(copy / "l2.vsnap")
    assert _hits(l2.search([1, 1, 1, 1], k=4)) == EXPECTED["l2"]["search"]
    assert not migrate(copy / "l2.vsnap").changed


def test_langgraph_memory_migrates(copy: Path) -> None:
    pytest.importorskip("langgraph")
    from valori_store.embedder import HashingEmbedder
    from valori_store.langgraph import ValoriMemoryStore

    migrate(copy / "langgraph")
    exp = EXPECTED["langgraph"]
    mem = ValoriMemoryStore(index={"dims": 8, "embed": HashingEmbedder(dim=8), "fields": ["text"]},
                            path=str(copy / "langgraph"))
    try:
        got = mem.get(("users", "alice"), "pref")
        assert [list(got.namespace), got.key, got.value] == exp["get"][0][:3]
        assert [list(n) for n in mem.list_namespaces()] == exp["namespaces"]
    finally:
        mem.close()


def test_cli_migrate(copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["migrate", str(copy / "core"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["state_hash_v1"] == EXPECTED["core"]["state_hash"]
    assert cli_main(["migrate", str(copy / "core")]) == 0
    assert "nothing to migrate" in capsys.readouterr().out
    assert cli_main(["migrate", str(copy / "missing")]) == 3
    np.testing.assert_equal(out["records"], len(EXPECTED["core"]["ids"]))
