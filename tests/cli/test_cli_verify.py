"""``verify``: integrity, images, the sessions' receipts and receipts files."""

from __future__ import annotations

import json
from pathlib import Path

from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    EMB,
    _built_template,
    assert_one_line_error,
    built,
    cli,
    flip_byte_in_middle_frame,
)

from valori_store import ValoriStore

KEYS = {"command", "ok", "path", "kind", "report", "receipts", "sessions"}


def test_verify_ok_with_session_receipts(cli, built) -> None:
    res = cli("verify", built.path, "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert set(doc) == KEYS and doc["ok"] is True and doc["kind"] == "directory"
    report = doc["report"]
    assert report["ok"] and report["state_hash"] == built.head_hash and report["events"] == built.log_length
    assert report["checked_digests"] == 3 + 2  # three checkpoints and two restores
    assert report["images_checked"] == 3
    assert doc["receipts"]["checked"] == doc["receipts"]["matched"] == built.receipts
    assert {(i["session"], i["turn"]) for i in doc["receipts"]["items"]} == {("alice", 1), ("alice", 2)}
    assert doc["sessions"] == [{"name": "alice", "turns": 2, "receipts": 3, "failed": 0, "ok": True}]
    text = cli("verify", built.path)
    assert text.code == 0 and "OK (directory)" in text.out and "receipts re-executed: 3, matching: 3" in text.out


def test_no_sessions_flag(cli, built) -> None:
    doc = cli("verify", built.path, "--json", "--no-sessions").json()
    assert doc["receipts"]["checked"] == 0


def test_receipts_file_forms(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        r1 = store.search_with_receipt(EMB.embed("apples"), k=2)[1]
        r2 = store.mmr_search_with_receipt(EMB.embed("squash"), k=2, fetch_k=4)[1]
    one, many, lines = tmp_path / "one.json", tmp_path / "many.json", tmp_path / "r.jsonl"
    one.write_text(r1.to_json(), encoding="utf-8")
    many.write_text(json.dumps([r1.to_dict(), r2.to_dict()]), encoding="utf-8")
    lines.write_text(r1.to_json() + "\n\n" + r2.to_json() + "\n", encoding="utf-8")
    res = cli("verify", built.path, "--no-sessions", "--receipts", one, "--receipts", many, "--receipts", lines,
              "--json")
    assert res.code == 0, res.err
    items = res.json()["receipts"]["items"]
    assert [(i["file"], i["index"], i["status"]) for i in items] == [
        (str(one), 1, "match"), (str(many), 1, "match"), (str(many), 2, "match"), (str(lines), 1, "match"),
        (str(lines), 2, "match")]


def test_search_json_output_verifies(cli, built, tmp_path: Path) -> None:
    out = cli("search", built.path, "yellow bananas", "--json", "--receipt")
    (tmp_path / "s.json").write_text(out.out, encoding="utf-8")
    cli("search", built.path, "pastry", "--save-receipt", tmp_path / "saved.jsonl")
    cli("search", built.path, "fruit", "--save-receipt", tmp_path / "saved.jsonl", "--mmr")
    res = cli("verify", built.path, "--receipts", tmp_path / "s.json", "--receipts", tmp_path / "saved.jsonl",
              "--json")
    assert res.code == 0, res.err
    assert res.json()["receipts"]["checked"] == built.receipts + 3


def test_tampered_and_foreign_receipts_fail_with_exit_1(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        receipt = store.search_with_receipt(EMB.embed("apples"), k=2)[1].to_dict()
    forged = dict(receipt, results=list(reversed(receipt["results"])))
    (tmp_path / "bad.json").write_text(json.dumps([receipt, forged]), encoding="utf-8")
    res = cli("verify", built.path, "--receipts", tmp_path / "bad.json", "--json")
    assert res.code == 1
    statuses = [i["status"] for i in res.json()["receipts"]["items"] if i["source"] == "file"]
    assert statuses == ["match", "tampered"]
    assert len(res.err_lines) == 1 and "1 of 5 receipts not matching" in res.err
    text = cli("verify", built.path, "--receipts", tmp_path / "bad.json")
    assert text.code == 1 and "tampered: " in text.out


def test_bad_receipts_file_is_a_usage_error(cli, built, tmp_path: Path) -> None:
    (tmp_path / "x.json").write_text("{not json\n", encoding="utf-8")
    assert_one_line_error(cli("verify", built.path, "--receipts", tmp_path / "x.json"), 2, "line 1 is not JSON")
    assert_one_line_error(cli("verify", built.path, "--receipts", tmp_path / "none.json"), 3, "no receipts file")


def test_corrupt_log_exit_4(cli, built) -> None:
    flip_byte_in_middle_frame(built.path)
    res = cli("verify", built.path, "--json")
    assert res.code == 4
    doc = res.json()
    assert doc["ok"] is False and doc["report"]["problems"]
    assert len(res.err_lines) == 1 and res.err_lines[0].startswith("valori-store: error: ")
    assert "corrupt" in res.err_lines[0]


def test_image_that_disagrees_with_the_log_fails(cli, built, tmp_path: Path) -> None:
    import shutil

    from valori_store.format import images

    work = tmp_path / "forged"
    shutil.copytree(built.path, work)
    paths = sorted((work / "images").glob("*.vimg"))
    first, last = (images.decode_manifest(p.read_bytes(), str(p)) for p in (paths[0], paths[-1]))
    assert first.root != last.root
    # a well-formed manifest for the last image's position, but naming the first image's pages
    forged = images.Manifest(last.seq, last.log_end, last.chain, first.root, 2, first.metric_code, first.dim,
                             first.count, first.pages)
    paths[-1].write_bytes(images.encode_manifest(forged))
    res = cli("verify", work, "--json")
    assert res.code == 1
    assert any("does not match the log's state" in p for p in res.json()["report"]["problems"])


def test_snapshot_and_its_receipts(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "s.vsnap")
        receipt = store.search_with_receipt(EMB.embed("apples"), k=3)[1]
    (tmp_path / "r.json").write_text(receipt.to_json(), encoding="utf-8")
    res = cli("verify", tmp_path / "s.vsnap", "--receipts", tmp_path / "r.json", "--json")
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["kind"] == "snapshot" and doc["report"]["state_hash"] == built.head_hash
    assert doc["receipts"]["matched"] == 1


# ------------------------------------------------------------- the log's final frame

def _small_store(path: Path) -> None:
    with ValoriStore.open(path, dim=384, durability="none") as store:
        store.upsert(EMB.embed_many(["red apples", "yellow bananas"]), ids=["a", "b"], texts=["x", "y"])
        store.upsert(EMB.embed_many(["green pears"]), ids=["c"], texts=["z"], metadatas=[{"n": 1}])


def _last_frame(path: Path):
    from valori_store.storage.recovery import read_log

    log = read_log(path)
    assert log.torn_bytes == 0
    return log.frames[-1], log.events


def test_a_complete_final_frame_that_fails_its_checks_is_corrupt_exit_4(cli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _small_store(store)
    frame, n = _last_frame(store)
    log = store / "events.vlog"
    data = bytearray(log.read_bytes())
    assert frame.end == len(data)
    pos = frame.offset + 16 + 4 + len(frame.payload) // 2  # the middle of its payload
    data[pos] ^= 0x01
    log.write_bytes(bytes(data))
    res = cli("verify", store, "--json")
    assert_one_line_error(res, 4, "corrupt", "final record", str(frame.end - frame.offset))
    doc = res.json()
    assert doc["ok"] is False and doc["report"]["ok"] is False
    assert doc["report"]["events"] == n - 1 and doc["report"]["torn_bytes"] == frame.end - frame.offset
    text = cli("verify", store)
    assert text.code == 4 and "FAILED" in text.out
    # inspect stays cheap and read-only but says what it saw
    ins = cli("inspect", store, "--json")
    assert ins.code == 0 and ins.json()["log"]["events"] == n - 1
    assert any("complete but fails its checks" in w for w in ins.json()["warnings"])
    assert ins.json()["log"]["torn_reason"].startswith("a damaged final frame (hash chain mismatch")
    assert log.read_bytes() == bytes(data)


def test_a_short_final_frame_is_only_a_warning(cli, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _small_store(store)
    frame, n = _last_frame(store)
    log = store / "events.vlog"
    log.write_bytes(log.read_bytes()[:-3])  # a write cut short by a crash
    res = cli("verify", store, "--json")
    assert res.code == 0, res.err
    report = res.json()["report"]
    assert report["ok"] is True and report["events"] == n - 1 and report["warnings"]
