"""``inspect``: cheap, read-only, correct — and it works on a store held open elsewhere."""

from __future__ import annotations

from pathlib import Path

from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    _built_template,
    assert_one_line_error,
    built,
    cli,
    files_state,
    flip_byte_in_middle_frame,
    holder,
)

from valori_store import ValoriStore

KEYS = {"command", "ok", "path", "kind", "dim", "metric", "count", "state_hash", "spec_version", "log", "images",
        "state_from", "checkpoints", "sessions", "warnings"}


def test_inspect_directory_json(cli, built) -> None:
    res = cli("inspect", built.path, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert set(doc) == KEYS
    assert doc["command"] == "inspect" and doc["ok"] is True and doc["kind"] == "directory"
    assert (doc["dim"], doc["metric"]) == (384, "cosine")
    assert doc["state_hash"] == built.head_hash
    assert doc["count"] == len(built.records["alice:1"])  # the head is the rewound alice:1 state
    assert doc["log"]["events"] == built.log_length
    assert doc["log"]["bytes"] == doc["log"]["file_bytes"] == (built.path / "events.vlog").stat().st_size
    assert doc["log"]["torn_bytes"] == 0
    assert sum(doc["log"]["event_counts"].values()) == built.log_length
    assert doc["log"]["event_counts"]["restore"] == 2  # alice.rewind(1) and the fork
    cps = {c["label"]: (c["seq"], c["state_hash"]) for c in doc["checkpoints"]}
    assert cps == {"v1": (built.checkpoints["v1"], built.hashes["v1"]),
                   "alice#1": (built.checkpoints["alice:1"], built.hashes["alice:1"]),
                   "alice#2": (built.checkpoints["alice:2"], built.hashes["alice:2"])}
    assert [(s["name"], s["turns"], s["parent"], s["from_turn"]) for s in doc["sessions"]] == [
        ("alice", 2, None, None), ("bob", 1, "alice", 1)]
    assert doc["images"] == 3 and doc["state_from"].startswith("image of event")


def test_inspect_text(cli, built) -> None:
    res = cli("inspect", built.path)
    assert res.code == 0
    assert built.head_hash in res.out
    assert "sessions    2: alice (2 turns), bob (1 turns, forked from alice:1)" in res.out


def test_inspect_snapshot_reads_the_header_only(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "s.vsnap")
        expected = (store.dim, store.metric, len(store), store.state_hash())
    doc = cli("inspect", tmp_path / "s.vsnap", "--json").json()
    assert (doc["dim"], doc["metric"], doc["count"], doc["state_hash"]) == expected
    assert doc["kind"] == "snapshot" and doc["digest_checked"] is False and doc["log"] is None
    # header-only: a damaged record section is not noticed by inspect (verify notices it)
    data = bytearray((tmp_path / "s.vsnap").read_bytes())
    data[100] ^= 1
    (tmp_path / "bad.vsnap").write_bytes(bytes(data))
    assert cli("inspect", tmp_path / "bad.vsnap", "--json").json()["state_hash"] == expected[3]
    assert cli("verify", tmp_path / "bad.vsnap").code == 4


def test_inspect_corrupt_log_is_one_line_exit_4(cli, built) -> None:
    flip_byte_in_middle_frame(built.path)
    assert_one_line_error(cli("inspect", built.path), 4, "events.vlog")


def test_inspect_while_another_process_holds_the_store(cli, built, holder, tmp_path: Path) -> None:
    holder(built.path)
    before = files_state(built.path)
    res = cli("inspect", built.path, "--json")
    assert res.code == 0, res.err
    assert res.json()["state_hash"] == built.head_hash
    for command in (["history", built.path], ["verify", built.path], ["search", built.path, "red"],
                    ["diff", built.path, "--from", "v1"]):
        assert cli(*command).code == 0, command
    assert files_state(built.path) == before  # same files, bytes and mtimes: nothing was written
    (tmp_path / "note.txt").write_text("a note", encoding="utf-8")
    assert_one_line_error(cli("ingest", built.path, tmp_path / "note.txt", "--base", tmp_path), 5,
                          "open for writing by another")
    assert files_state(built.path) == before


def test_inspect_reports_a_torn_tail_without_cutting_it(cli, built) -> None:
    log = built.path / "events.vlog"
    log.write_bytes(log.read_bytes() + b"VF\x01\x00partial")  # a record being appended
    before = files_state(built.path)
    res = cli("inspect", built.path, "--json")
    assert res.code == 0
    doc = res.json()
    assert doc["log"]["torn_bytes"] == 11 and doc["log"]["events"] == built.log_length
    assert doc["log"]["torn_reason"] == "a frame header cut short"
    assert doc["state_hash"] == built.head_hash
    assert any("torn" in w for w in doc["warnings"])
    assert files_state(built.path) == before


def _events(path: Path) -> int:
    from valori_store.storage.recovery import read_log

    return read_log(path).events


def test_state_from_says_when_the_whole_log_is_applied(cli, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("some text about bread and ovens", encoding="utf-8")
    store = tmp_path / "store"
    assert cli("ingest", store, tmp_path / "a.txt", "--base", tmp_path).code == 0
    n = _events(store)
    doc = cli("inspect", store, "--json").json()
    assert doc["images"] == 0
    assert doc["state_from"] == f"no image: all {n} log events applied from empty (digests not re-checked)"
    text = cli("inspect", store).out
    assert "all 3 log events applied" in text and "--checkpoint" in text  # how to make it cheap
    # after ingest --checkpoint (a checkpoint and an image) the state comes from that image
    assert cli("ingest", store, tmp_path / "a.txt", "--base", tmp_path, "--checkpoint", "v1").code == 0
    doc = cli("inspect", store, "--json").json()
    assert doc["images"] == 1
    assert doc["state_from"] == f"image of event {n}, then 0 later events applied"


def test_inspect_help_does_not_promise_a_header_only_read(cli) -> None:
    res = cli("inspect", "--help")
    assert res.code == 0
    flat = " ".join(res.out.split())
    assert "no full replay" not in flat and "header-only" not in flat
    assert "newest image plus the log tail" in flat
    assert "without one it applies the whole log" in flat
