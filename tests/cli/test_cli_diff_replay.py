"""``diff`` against an independently computed expectation, and ``replay`` hash equality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    EMB,
    _built_template,
    assert_one_line_error,
    built,
    cli,
    files_state,
)

from valori_store import ValoriStore


def expected_diff(a: dict[str, tuple[str, dict[str, Any]]], b: dict[str, tuple[str, dict[str, Any]]]) -> dict:
    """From the records the test wrote: a vector changes exactly when its text does (it embeds the text)."""
    def by_bytes(ids: Any) -> list[str]:
        return sorted(ids, key=lambda s: s.encode("utf-8"))

    changed = []
    for rid in by_bytes(set(a) & set(b)):
        fields = (["vector", "text"] if a[rid][0] != b[rid][0] else []) + (
            ["metadata"] if a[rid][1] != b[rid][1] else [])
        if fields:
            changed.append({"id": rid, "fields": fields})
    return {"added": by_bytes(set(b) - set(a)), "removed": by_bytes(set(a) - set(b)), "changed": changed}


@pytest.mark.parametrize(("frm", "to"), [("v1", "alice:2"), ("alice:2", "head"), ("v1", "alice:1"),
                                         ("alice#2", "v1")])
def test_diff_between_points(cli, built, frm: str, to: str) -> None:
    def records(point: str) -> dict:
        return built.records["alice:1" if point == "head" else "alice:2" if point == "alice#2" else point]

    res = cli("diff", built.path, "--from", frm, "--to", to, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    want = expected_diff(records(frm), records(to))
    assert {k: doc[k] for k in want} == want
    assert doc["identical"] == (want == {"added": [], "removed": [], "changed": []})
    assert doc["counts"]["unchanged"] == len(set(records(frm)) & set(records(to))) - len(want["changed"])


def test_diff_by_seq_and_text_output(cli, built) -> None:
    res = cli("diff", built.path, "--from", built.checkpoints["v1"], "--to", built.checkpoints["alice:2"])
    assert res.code == 0
    assert res.out.splitlines()[2:] == ["+ c", "- B", "~ a (vector, text)", "~ z (metadata)",
                                        "1 added, 1 removed, 2 changed, 1 unchanged"]


def test_diff_exit_code_flag(cli, built) -> None:
    assert cli("diff", built.path, "--from", "v1", "--to", "alice:2", "--exit-code").code == 1
    assert cli("diff", built.path, "--from", "v1", "--to", "alice:1", "--exit-code").code == 0


def test_diff_two_paths_sorted_by_id_bytes(cli, tmp_path: Path) -> None:
    a, b = ValoriStore(384), ValoriStore(384)
    a.upsert(EMB.embed_many(["one", "two"]), ids=["é", "x"], texts=["one", "two"])
    b.upsert(EMB.embed_many(["uno", "3", "4", "5"]), ids=["é", "ä", "B", "a"], texts=["uno", "3", "4", "5"])
    a.save(tmp_path / "a.vsnap")
    b.save(tmp_path / "b.vsnap")
    doc = cli("diff", tmp_path / "a.vsnap", tmp_path / "b.vsnap", "--json").json()
    assert doc["added"] == ["B", "a", "ä"] and doc["removed"] == ["x"]
    assert doc["changed"] == [{"id": "é", "fields": ["vector", "text"]}]
    assert (doc["from"]["state_hash"], doc["to"]["state_hash"]) == (a.state_hash(), b.state_hash())


def test_diff_store_point_against_snapshot(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "head.vsnap")
    doc = cli("diff", tmp_path / "head.vsnap", built.path, "--to", "alice:2", "--json").json()
    assert {k: doc[k] for k in ("added", "removed", "changed")} == expected_diff(
        built.records["alice:1"], built.records["alice:2"])


def test_diff_errors(cli, built, tmp_path: Path) -> None:
    assert_one_line_error(cli("diff", built.path), 2, "--from")
    assert_one_line_error(cli("diff", built.path, "--from", "nope"), 3, "'nope'", "checkpoints are at")
    assert_one_line_error(cli("diff", built.path, "--from", "999"), 3, "no checkpoint at seq 999")
    assert_one_line_error(cli("diff", built.path, "--from", "alice:9"), 3, "no turn 9")
    ValoriStore(8).save(tmp_path / "small.vsnap")
    assert_one_line_error(cli("diff", tmp_path / "small.vsnap", built.path), 2, "not comparable")
    assert_one_line_error(cli("diff", tmp_path / "small.vsnap", tmp_path / "small.vsnap", "--from", "v1"), 3,
                          "snapshot")
    assert_one_line_error(cli("diff", "a", "b", "c"), 2, "two stores")


def test_session_names_with_colons(cli, tmp_path: Path) -> None:
    store = ValoriStore.open(tmp_path / "s", dim=384)
    store.upsert(EMB.embed_many(["x"]), ids=["x"], texts=["x"])
    start = store.checkpoint("start")
    team = store.session("team:red")
    store.upsert(EMB.embed_many(["y"]), ids=["y"], texts=["y"])
    turn = team.mark_turn()
    store.close()
    doc = cli("diff", tmp_path / "s", "--from", "start", "--to", "team:red:1", "--json").json()
    assert doc["added"] == ["y"] and doc["to"]["seq"] == turn.seq and doc["from"]["seq"] == start.seq


# ---------------------------------------------------------------------------- replay


def test_replay_to_checkpoint_into_a_new_store(cli, built, tmp_path: Path) -> None:
    before = files_state(built.path)
    out = tmp_path / "v1-store"
    res = cli("replay", built.path, "--to", "v1", "--out", out, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["match"] is True and doc["state_hash"] == doc["expected_state_hash"] == built.hashes["v1"]
    assert doc["out_kind"] == "directory" and doc["events_replayed"] == built.checkpoints["v1"] + 1
    source_log = (built.path / "events.vlog").read_bytes()
    out_log = (out / "events.vlog").read_bytes()
    assert source_log.startswith(out_log) and len(out_log) < len(source_log)
    with ValoriStore.open(out) as replayed:
        assert replayed.state_hash() == built.hashes["v1"]
        assert replayed.log_length == built.checkpoints["v1"] + 1
        assert [(c.seq, c.label) for c in replayed.history()] == [(built.checkpoints["v1"], "v1")]
        assert sorted(replayed.ids()) == sorted(built.records["v1"])
    assert files_state(built.path) == before  # the source is never modified


def test_replay_to_a_session_turn_keeps_the_turn(cli, built, tmp_path: Path) -> None:
    out = tmp_path / "turn2"
    out.mkdir()  # an empty directory is accepted
    res = cli("replay", built.path, "--to", "alice:2", "--out", out)
    assert res.code == 0, res.err
    assert built.hashes["alice:2"] in res.out and "equals the recorded state hash of alice turn 2: yes" in res.out
    with ValoriStore.open(out) as replayed:
        assert replayed.state_hash() == built.hashes["alice:2"]
        assert [s.name for s in replayed.sessions()] == ["alice"]
        checks = replayed.session("alice").verify()
        assert [len(c.receipts) for c in checks] == [1, 2] and all(c.ok for c in checks)
    assert cli("verify", out).code == 0


def test_replay_to_a_snapshot_file(cli, built, tmp_path: Path) -> None:
    for point, key in (("head", None), ("alice#2", "alice:2")):
        out = tmp_path / f"{point}.vsnap"
        res = cli("replay", built.path, "--to", point, "--out", out, "--json")
        assert res.code == 0, res.err
        expected = built.head_hash if key is None else built.hashes[key]
        assert ValoriStore.load(out).state_hash() == expected == res.json()["state_hash"]


def test_replay_errors(cli, built, tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert_one_line_error(cli("replay", built.path, "--to", "v1", "--out", tmp_path / "full"), 2, "not an empty")
    (tmp_path / "s.vsnap").write_bytes(b"")
    assert_one_line_error(cli("replay", built.path, "--to", "v1", "--out", tmp_path / "s.vsnap"), 2, "exists")
    assert_one_line_error(cli("replay", built.path, "--to", "v9", "--out", tmp_path / "o"), 3, "'v9'")
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "h.vsnap")
    assert_one_line_error(cli("replay", tmp_path / "h.vsnap", "--to", "head", "--out", tmp_path / "o"), 2,
                          "snapshot")
    assert not (tmp_path / "o").exists()
