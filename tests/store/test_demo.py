"""Tests of the agent-session demo (valori_store.cli.demo, ``make demo``).

The demo's printed facts are parsed back and checked against an independent
recomputation with the core API only (no LangChain): the same knowledge base and memory
writes give the same state hashes, and the same questions the same retrieved ids. The
kept store on disk is then audited directly.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from valori_store import ValoriStore
from valori_store.cli import demo
from valori_store.corpus import load_corpus
from valori_store.embedder import HashingEmbedder
from valori_store.receipts import verify_receipts

pytest.importorskip("langchain_core")

TURN_ROW = re.compile(r"^\s+(\d)\s{2,}(.+?)\s{2,}((?:[\w-]+, )*[\w-]+)\s{2,}([0-9a-f]{16})\s{2,}([0-9a-f]{12})$")
HEX64 = re.compile(r"\b[0-9a-f]{64}\b")


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    root = tmp_path_factory.mktemp("demo")
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = demo.main(["--keep", str(root)])
    assert code == 0, buf.getvalue()
    return buf.getvalue(), root / "store"


def _turn_rows(out: str) -> list[tuple[int, list[str], str, str]]:
    rows = []
    for line in out.splitlines():
        m = TURN_ROW.match(line)
        if m:
            rows.append((int(m.group(1)), m.group(3).split(", "), m.group(4), m.group(5)))
    return rows


def test_printed_turns_match_an_independent_core_recomputation(kept: tuple[str, Path]) -> None:
    out, _ = kept
    rows = _turn_rows(out)
    assert [r[0] for r in rows] == [1, 2, 3, 4]
    emb = HashingEmbedder()
    core = ValoriStore(emb.dim)
    docs = load_corpus()
    core.upsert(emb.embed_many([d.text for d in docs]), ids=[d.id for d in docs], texts=[d.text for d in docs],
                metadatas=[{"kind": "knowledge", **d.metadata} for d in docs])
    kb_line = next(line for line in out.splitlines() if "state hash" in line and HEX64.search(line))
    assert HEX64.search(kb_line).group(0) == core.state_hash()  # type: ignore[union-attr]
    for (n, ids, state16, _), turn in zip(rows, demo.TURNS):
        core.upsert(emb.embed_many([turn.says]), ids=[turn.memory_id], texts=[turn.says],
                    metadatas=[{"kind": "memory", "turn": n}])
        hits = core.search(emb.embed(turn.question), k=3, filter=turn.filter)
        assert [h.id for h in hits] == ids
        assert core.state_hash()[:16] == state16


def test_kept_store_holds_the_session_and_its_receipts_verify(kept: tuple[str, Path]) -> None:
    out, path = kept
    rows = _turn_rows(out)
    with ValoriStore.open(path) as store:
        turns = store.session(demo.SESSION).turns()
        assert [t.receipts[0].digest[:12] for t in turns] == [r[3] for r in rows]
        assert [t.receipts[0].ids for t in turns] == [r[1] for r in rows]
        # The demo ended rewound to turn 2.
        assert store.state_hash() == turns[demo.REWIND_TO - 1].state_hash
        checks = verify_receipts(store, [r for t in turns for r in t.receipts])
        assert [c.status for c in checks] == ["match"] * len(turns)
    assert "turn 2's receipt with its top two results swapped: tampered" in out
    assert "the same edit with a recomputed digest: mismatch" in out


def test_output_is_reproducible(kept: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, _ = kept
    assert demo.main(["--quiet"]) == 0
    quiet = capsys.readouterr().out
    summary = out[out.index("Summary"):]
    summary = "\n".join(line for line in summary.splitlines() if not line.startswith("#"))
    assert quiet.strip() == summary.strip()
    assert "yes" in quiet and "NO" not in out


def test_bad_arguments_give_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("x")
    assert demo.main(["--keep", str(tmp_path / "file")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a directory" in err
    assert demo.main(["--bogus"]) == 2
    assert demo.main(["--help"]) == 0


def test_json_output_carries_the_same_facts(kept: tuple[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    import json

    out, _ = kept
    assert demo.main(["--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["tampering"] == {"edited": "tampered", "resealed_forgery": "mismatch"}
    rows = _turn_rows(out)
    assert [t["retrieved"] for t in data["turns"]] == [r[1] for r in rows]
    assert [t["state_hash"][:16] for t in data["turns"]] == [r[2] for r in rows]
    assert data["rewind"]["identical_to_turn"] is True
    assert all(t["matched"] == t["receipts"] for t in data["audit"]["turns"])
