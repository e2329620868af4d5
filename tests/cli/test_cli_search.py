"""``search``: the same hits as the API with the built-in embedder, filters, MMR, receipts."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    EMB,
    _built_template,
    assert_one_line_error,
    built,
    cli,
)

from valori_store import ValoriStore
from valori_store.receipts import verify_receipt


def _rows(hits) -> list[tuple]:
    return [(h.id, str(h.raw), h.score, h.text, h.metadata) for h in hits]


@pytest.mark.parametrize("flt", [None, {"kind": "fruit"}, {"n": {"$gte": 3}}])
def test_search_matches_the_api(cli, built, flt) -> None:
    args = ["search", built.path, "red fruit", "-k", "3", "--json"]
    if flt is not None:
        import json

        args += ["--filter", json.dumps(flt)]
    res = cli(*args)
    assert res.code == 0, res.err
    doc = res.json()
    with ValoriStore.open(built.path) as store:
        want = _rows(store.search(EMB.embed("red fruit"), k=3, filter=flt))
        head = store.state_hash()
    assert [(h["id"], h["raw"], h["score"], h["text"], h["metadata"]) for h in doc["hits"]] == want
    assert [h["rank"] for h in doc["hits"]] == list(range(1, len(want) + 1))
    assert doc["state_hash"] == head and doc["filter"] == flt and doc["mode"] == "search"
    assert "receipt" not in doc


def test_mmr_matches_the_api(cli, built) -> None:
    res = cli("search", built.path, "fruit", "-k", "2", "--mmr", "--fetch-k", "4", "--lambda", "0.25", "--json")
    with ValoriStore.open(built.path) as store:
        want = _rows(store.mmr_search(EMB.embed("fruit"), k=2, fetch_k=4, lambda_mult=0.25))
    doc = res.json()
    assert doc["mode"] == "mmr"
    assert [(h["id"], h["raw"], h["score"], h["text"], h["metadata"]) for h in doc["hits"]] == want


def test_receipt_verifies_against_the_directory(cli, built) -> None:
    doc = cli("search", built.path, "squash", "--json", "--receipt").json()
    receipt = doc["receipt"]
    assert receipt["results"] == [[h["id"], h["raw"]] for h in doc["hits"]]
    assert receipt["seq"] == built.log_length - 1 and receipt["state_hash"] == built.head_hash
    assert verify_receipt(built.path, receipt).status == "match"


def test_text_output(cli, built) -> None:
    res = cli("search", built.path, "yellow bananas", "-k", "1", "--receipt")
    with ValoriStore.open(built.path) as store:
        top = store.search(EMB.embed("yellow bananas"), k=1)[0]
    lines = res.out.splitlines()
    assert lines[0].split() == ["rank", "id", "score", "text"]
    assert lines[1].split()[:3] == ["1", top.id, f"{top.score:.6f}"] and lines[1].endswith(top.text)
    assert lines[2].startswith("receipt ")
    assert cli("search", built.path, "x", "-k", "0").out.strip() == "no hits"


def test_snapshot_search(cli, built, tmp_path: Path) -> None:
    with ValoriStore.open(built.path) as store:
        store.save(tmp_path / "s.vsnap")
        want = [h.id for h in store.search(EMB.embed("pastry"), k=2)]
    assert [h["id"] for h in cli("search", tmp_path / "s.vsnap", "pastry", "-k", "2", "--json").json()["hits"]] == want


def test_search_errors(cli, built, tmp_path: Path) -> None:
    assert_one_line_error(cli("search", built.path, "q", "--filter", "{bad"), 2, "--filter is not valid JSON")
    assert_one_line_error(cli("search", built.path, "q", "--filter", "[1]"), 2, "JSON object")
    assert_one_line_error(cli("search", built.path, "q", "--filter", '{"n": {"$near": 1}}'), 2, "$near")
    assert_one_line_error(cli("search", built.path, "q", "-k", "-1"), 2, "-k")
    assert_one_line_error(cli("search", built.path, "q", "--mmr", "--lambda", "2"), 2, "lambda")
    ValoriStore.open(tmp_path / "d8", dim=8).close()
    assert_one_line_error(cli("search", tmp_path / "d8", "q"), 2, "dim 8", "384")
