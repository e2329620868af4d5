"""``ingest``: deterministic chunks, built-in embeddings, idempotence, stale chunks, errors."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures import EMB, Result, assert_one_line_error, cli, subprocess_env  # noqa: F401

from valori_store import ValoriStore
from valori_store.cli.chunking import chunk_text
from valori_store.embedder import ALGORITHM as EMB_ALGORITHM
from valori_store.embedder import HashingEmbedder

GUIDE = """# Baking guide

Bread needs flour, water, salt and yeast. Mix them into a shaggy dough.\r
\r
Knead the dough for ten minutes until it is smooth and elastic; then let it rise.

Shape the loaf, proof it again, and bake it in a very hot oven until the crust is brown.
"""
STARS = "Stars are born in clouds of gas and dust.\nThe sun is a star of middle age.\n"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "sub").mkdir(parents=True)
    (root / "guide.md").write_bytes(GUIDE.encode("utf-8"))
    (root / "sub" / "stars.txt").write_text(STARS, encoding="utf-8")
    (root / "sub" / ".hidden.md").write_text("hidden notes", encoding="utf-8")
    (root / "notes.rst").write_text("restructured text", encoding="utf-8")
    return root


def _ingest(cli, store: Path, *files: Path | str, base: Path, extra: tuple = ()) -> Result:
    return cli("ingest", store, *files, "--base", base, "--chunk-size", "60", "--overlap", "10", "--json", *extra)


def test_ingest_chunks_ids_metadata_and_vectors(cli, docs: Path, tmp_path: Path) -> None:
    res = _ingest(cli, tmp_path / "store", docs, base=tmp_path)
    assert res.code == 0, res.err
    doc = res.json()
    assert doc["created"] is True and (doc["dim"], doc["metric"]) == (384, "cosine") and doc["files"] == 2
    with ValoriStore.open(tmp_path / "store") as store:
        records = store.get(store.ids())
        assert doc["count"] == doc["chunks"] == doc["added"] == len(records) and doc["state_hash"] == store.state_hash()
    texts = {"docs/guide.md": GUIDE.replace("\r\n", "\n"), "docs/sub/stars.txt": STARS}
    assert {r.metadata["source"] for r in records} == set(texts)  # hidden and .rst files skipped
    check = ValoriStore(384)
    for source, text in texts.items():
        mine = sorted((r for r in records if r.metadata["source"] == source), key=lambda r: r.metadata["chunk"])
        assert [r.id for r in mine] == [f"{source}#{i:05d}" for i in range(len(mine))]
        covered = set()
        for r in mine:
            off = r.metadata["offset"]
            assert text[off: off + len(r.text)] == r.text and 0 < len(r.text) <= 60
            assert r.text == r.text.strip()
            covered.update(range(off, off + len(r.text)))
        assert {i for i, ch in enumerate(text) if not ch.isspace()} <= covered  # nothing dropped
        assert [r.metadata["offset"] for r in mine] == sorted(r.metadata["offset"] for r in mine)
        # stored vectors are the built-in embedder's, quantised as the store does
        check.upsert(EMB.embed_many([r.text for r in mine]), ids=[r.id for r in mine])
        assert all((check.get([r.id])[0].vector == r.vector).all() for r in mine)


def test_reingest_is_idempotent_and_writes_nothing(cli, docs: Path, tmp_path: Path) -> None:
    first = _ingest(cli, tmp_path / "store", docs, base=tmp_path).json()
    log = tmp_path / "store" / "events.vlog"
    before = log.read_bytes()
    again = _ingest(cli, tmp_path / "store", docs, base=tmp_path).json()
    assert again["state_hash"] == first["state_hash"] and again["count"] == first["count"]
    assert (again["added"], again["updated"], again["removed"], again["unchanged"]) == (0, 0, 0, first["chunks"])
    assert log.read_bytes() == before


def test_reingest_after_edits_equals_a_fresh_ingest(cli, docs: Path, tmp_path: Path) -> None:
    _ingest(cli, tmp_path / "store", docs, base=tmp_path)
    (docs / "guide.md").write_text("Bread is flour, water and salt.\n", encoding="utf-8")
    edited = _ingest(cli, tmp_path / "store", docs, base=tmp_path).json()
    assert edited["updated"] == 1 and edited["removed"] >= 1
    fresh = _ingest(cli, tmp_path / "fresh", docs, base=tmp_path).json()
    assert edited["state_hash"] == fresh["state_hash"] and edited["count"] == fresh["count"]


def test_explicit_files_checkpoint_and_text_output(cli, docs: Path, tmp_path: Path) -> None:
    res = cli("ingest", tmp_path / "store", docs / "notes.rst", "--base", docs, "--checkpoint", "v1")
    assert res.code == 0, res.err
    assert "1 files, 1 chunks: 1 added" in res.out and "checkpoint" in res.out
    with ValoriStore.open(tmp_path / "store") as store:
        assert store.ids() == ["notes.rst#00000"]
        assert [c.label for c in store.history()] == ["v1"]


def test_other_dim_records_its_embedder_for_search(cli, docs: Path, tmp_path: Path) -> None:
    res = _ingest(cli, tmp_path / "store", docs, base=tmp_path, extra=("--dim", "64", "--metric", "dot"))
    assert res.code == 0 and (res.json()["dim"], res.json()["metric"]) == (64, "dot")
    hits = cli("search", tmp_path / "store", "bread dough", "-k", "2", "--json").json()["hits"]
    with ValoriStore.open(tmp_path / "store") as store:
        want = [h.id for h in store.search(HashingEmbedder(64).embed("bread dough"), k=2)]
    assert [h["id"] for h in hits] == want
    assert_one_line_error(cli("ingest", tmp_path / "store", docs, "--base", tmp_path, "--dim", "32"), 2, "dim=64")


def test_ingest_progress_bar_on_a_tty(docs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from valori_store.cli import main

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    tty = Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    assert main(["ingest", str(tmp_path / "store"), str(docs), "--base", str(tmp_path), "--chunk-size", "60",
                 "--overlap", "10", "--batch-size", "2"]) == 0
    assert "\ringest [" in tty.getvalue() and "100%" in tty.getvalue()


def test_ingest_errors(cli, docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    assert_one_line_error(cli("ingest", store, docs / "missing.md", "--base", tmp_path), 3, "missing.md")
    assert_one_line_error(cli("ingest", store, docs, "--base", docs / "sub"), 2, "outside the base directory")
    assert_one_line_error(cli("ingest", store, docs, "--overlap", "40", "--chunk-size", "60"), 2, "--overlap")
    assert_one_line_error(cli("ingest", store, docs, "--chunk-size", "3"), 2, "--chunk-size")
    (docs / "bin.txt").write_bytes(b"\xff\xfe\x00 binary")
    assert_one_line_error(cli("ingest", store, docs / "bin.txt", "--base", tmp_path), 2, "not UTF-8")
    (tmp_path / "afile").write_text("x")
    assert_one_line_error(cli("ingest", tmp_path / "afile", docs / "guide.md", "--base", tmp_path), 2, "is a file")
    assert not store.exists()  # nothing was created by a failing ingest


def test_chunker_rules() -> None:
    assert chunk_text("", 10, 0) == [] and chunk_text(" \n\n\t ", 10, 0) == []
    assert chunk_text("a\r\nb", 10, 0) == chunk_text("a\nb", 10, 0) == [(0, "a\nb")]
    word = "x" * 25
    assert chunk_text(word, 10, 2) == [(0, "x" * 10), (8, "x" * 10), (16, "x" * 9)]  # hard cuts, exact overlap
    text = "para one is here.\n\npara two is here too."
    assert chunk_text(text, 30, 0) == [(0, "para one is here."), (19, "para two is here too.")]
    assert chunk_text(text, 30, 5)[1] == (12, "here.\n\npara two is here too.")  # 5 back: a word start
    assert chunk_text(text, 30, 3)[1] == (19, "para two is here too.")  # 3 back is mid-word: next word
    with pytest.raises(ValueError):
        chunk_text("abc", 10, 5)


def test_ingest_in_a_subprocess(docs: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "valori_store.cli", "ingest", str(tmp_path / "store"), str(docs), "--base",
           str(tmp_path), "--json"]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # no progress bar when stderr is not a terminal
    doc = json.loads(proc.stdout)
    with ValoriStore.open(tmp_path / "store") as store:
        assert doc["state_hash"] == store.state_hash() and doc["count"] == len(store)


# ------------------------------------------------------- embedding spaces are never mixed

def _foreign_store(path: Path, n: int = 3) -> None:
    """A 384-dim store filled from Python with another embedder's vectors (no embedder note)."""
    other = HashingEmbedder(384, seed="someone-else")
    texts = [f"foreign document number {i}" for i in range(n)]
    with ValoriStore.open(path, dim=384) as store:
        store.upsert(other.embed_many(texts), ids=[f"f{i}" for i in range(n)], texts=texts)


def _embedder_notes(path: Path) -> list[dict]:
    from valori_store.readonly import open_readonly

    view = open_readonly(path)
    try:
        return [n.body for n in view.notes() if n.topic == "embedder"]
    finally:
        view.close()


def test_ingest_refuses_a_store_filled_by_another_embedder(cli, docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _foreign_store(store)
    before = (store / "events.vlog").read_bytes()
    res = _ingest(cli, store, docs, base=tmp_path)
    assert_one_line_error(res, 2, "3 records", "no embedder record", "--adopt-embedder")
    assert (store / "events.vlog").read_bytes() == before  # nothing written: no note, no vectors
    assert json.loads(res.out)["error"]["kind"] == "usage"
    with ValoriStore.open(store) as s:
        assert s.ids() == ["f0", "f1", "f2"]


def test_adopt_embedder_declares_the_vectors_built_in(cli, docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _foreign_store(store)
    res = _ingest(cli, store, docs, base=tmp_path, extra=("--adopt-embedder",))
    assert res.code == 0, res.err
    assert res.json()["count"] == 3 + res.json()["added"]
    assert _embedder_notes(store) == [{"algorithm": EMB_ALGORITHM, "dim": 384, "ngram_range": [3, 5],
                                       "seed": "valori-v1"}]
    again = _ingest(cli, store, docs, base=tmp_path)  # the note now exists: no flag needed
    assert again.code == 0 and again.json()["unchanged"] == again.json()["chunks"]


def test_ingest_into_an_empty_store_made_elsewhere_is_fine(cli, docs: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    ValoriStore.open(store, dim=384).close()
    assert _ingest(cli, store, docs, base=tmp_path).code == 0
    assert len(_embedder_notes(store)) == 1


@pytest.mark.parametrize("note, fragment", [
    ({"algorithm": "some-model-v2", "dim": 384, "ngram_range": [3, 5], "seed": "valori-v1"}, "some-model-v2"),
    ({"algorithm": EMB_ALGORITHM, "dim": 64, "ngram_range": [3, 5], "seed": "valori-v1"}, "dim 64"),
])
def test_ingest_refuses_a_recorded_embedder_that_differs(cli, docs: Path, tmp_path: Path, note: dict,
                                                        fragment: str) -> None:
    store = tmp_path / "store"
    with ValoriStore.open(store, dim=384) as s:
        s.annotate("embedder", note)
    before = (store / "events.vlog").read_bytes()
    for extra in ((), ("--adopt-embedder",)):  # adopting never overrides a recorded embedder
        assert_one_line_error(_ingest(cli, store, docs, base=tmp_path, extra=extra), 2, fragment)
    assert (store / "events.vlog").read_bytes() == before
