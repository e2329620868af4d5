"""``history``: checkpoints, restores, sessions and turns in log order."""

from __future__ import annotations

from pathlib import Path

from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    _built_template,
    assert_one_line_error,
    built,
    cli,
)

from valori_store import ValoriStore


def test_history_entries_in_log_order(cli, built) -> None:
    res = cli("history", built.path, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    entries = doc["entries"]
    assert [e["seq"] for e in entries] == sorted(e["seq"] for e in entries)
    kinds = [(e["event"], e.get("session") or e.get("label")) for e in entries]
    assert kinds == [("checkpoint", "v1"), ("session", "alice"), ("checkpoint", "alice#1"), ("turn", "alice"),
                     ("checkpoint", "alice#2"), ("turn", "alice"), ("restore", None), ("session", "bob"),
                     ("restore", None)]
    cps = [e for e in entries if e["event"] == "checkpoint"]
    assert [(c["seq"], c["state_hash"]) for c in cps] == [
        (built.checkpoints[k], built.hashes[k]) for k in ("v1", "alice:1", "alice:2")]
    turns = [e for e in entries if e["event"] == "turn"]
    assert [(t["turn"], t["checkpoint_seq"], t["receipts"]) for t in turns] == [
        (1, built.checkpoints["alice:1"], 1), (2, built.checkpoints["alice:2"], 2)]
    assert turns[0]["meta"] == {"user": "red things?"}
    restores = [e for e in entries if e["event"] == "restore"]
    assert [r["target_seq"] for r in restores] == [built.checkpoints["alice:1"]] * 2
    assert restores[0]["state_hash"] == built.hashes["alice:1"]
    bob = entries[7]
    assert (bob["parent"], bob["from_turn"]) == ("alice", 1)


def test_history_all_lists_every_event(cli, built) -> None:
    entries = cli("history", built.path, "--json", "--all").json()["entries"]
    assert [e["seq"] for e in entries] == list(range(built.log_length))
    assert entries[0] == {"seq": 0, "event": "create", "dim": 384, "metric": "cosine"}
    assert [e["records"] for e in entries if e["event"] in ("upsert", "delete")] == [4, 3, 1]


def test_history_lists_atomic_writes(cli, tmp_path: Path) -> None:
    import numpy as np

    store = ValoriStore.open(tmp_path / "w", dim=2, metric="dot")
    store.upsert(np.eye(2), ids=["p", "q"])
    store.write(delete=["p"], vectors=[[1.0, 1.0]], ids=["r"])
    store.close()
    entries = cli("history", tmp_path / "w", "--all", "--json").json()["entries"]
    assert entries[-1] == {"seq": 2, "event": "write", "deleted": 1, "upserted": 1}
    assert "-1 +1 records" in cli("history", tmp_path / "w", "--all").out


def test_history_text_and_empty(cli, built, tmp_path: Path) -> None:
    res = cli("history", built.path)
    assert res.code == 0 and "alice:2 checkpoint" in res.out and "bob forked from alice:1" in res.out
    ValoriStore.open(tmp_path / "empty", dim=3).close()
    assert "no checkpoints" in cli("history", tmp_path / "empty").out


def test_history_of_a_snapshot_is_a_usage_error(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "s.vsnap")
    assert_one_line_error(cli("history", tmp_path / "s.vsnap"), 2, "not a history")
