"""A multi-turn session through the LangChain retriever and the LangGraph memory is
recorded in one process, reopened and replayed in another, and driven again from the
same inputs in a third: receipts and re-executed results are compared byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("langchain_core")
pytest.importorskip("langgraph")

from valori_store import ValoriStore  # noqa: E402
from valori_store.receipts import Receipt, record_receipts  # noqa: E402

HERE = Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"


def _run(*args: str) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{HERE}"}
    proc = subprocess.run([sys.executable, str(HERE / "session_driver.py"), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    path = tmp_path_factory.mktemp("rec") / "store"
    return path, _run("drive", str(path))


def test_each_turn_has_both_adapters_receipts(recorded: tuple[Path, list[dict]]) -> None:
    _, turns = recorded
    assert [t["number"] for t in turns] == [1, 2, 3]
    for t in turns:
        receipts = [Receipt.from_dict(r) for r in t["receipts"]]
        # The LangChain retriever, then the LangGraph memory search: one core search over
        # its vector records (the items stored without vectors that may follow the scored
        # ones are read by a listing, which is not a search and records no receipt).
        lc, *lg = receipts
        assert json.loads(lc.filter or "null") == {"source": {"$eq": "kb"}}
        assert len(lc.ids) == 2 and all(i.startswith("kb-") for i in lc.ids)
        assert len(lg) == 1 and all('"lg:kind"' in (r.filter or "") for r in lg)
        assert any(r.ids for r in lg) and not any(i.startswith("kb-") for r in lg for i in r.ids)
        assert all(r.digest == r.computed_digest() for r in receipts)


def test_reopened_in_a_new_process_every_retrieval_replays_identically(recorded: tuple[Path, list[dict]]) -> None:
    path, turns = recorded
    checks = _run("replay", str(path))
    assert [c["statuses"] for c in checks] == [["match"] * len(t["receipts"]) for t in turns]
    assert [c["actual"] for c in checks] == [[r["results"] for r in t["receipts"]] for t in turns]


def test_same_inputs_on_another_store_give_the_same_bytes(recorded: tuple[Path, list[dict]], tmp_path: Path) -> None:
    _, turns = recorded
    again = _run("drive", str(tmp_path / "store"))
    assert json.dumps(again, sort_keys=True) == json.dumps(turns, sort_keys=True)


def test_rewind_reproduces_a_turn_s_retrievals(recorded: tuple[Path, list[dict]], tmp_path: Path) -> None:
    import shutil

    import session_driver as driver  # type: ignore[import-not-found]

    path, turns = recorded
    copy = tmp_path / "copy"
    shutil.copytree(path, copy)
    with ValoriStore.open(copy) as core:
        from valori_store.embedder import HashingEmbedder
        from valori_store.langchain import ValoriVectorStore
        from valori_store.langgraph import ValoriMemoryStore

        emb = HashingEmbedder()
        session = core.session(driver.SESSION)
        session.rewind(1)
        retriever = ValoriVectorStore(emb, store=core).as_retriever(search_kwargs={"k": 2, "filter": {"source": "kb"}})
        memory = ValoriMemoryStore(store=core, index={"dims": emb.dim, "embed": emb, "fields": ["text"]})
        with record_receipts() as got:
            retriever.invoke(driver.TURNS[0][1])
            memory.search(("users", "ada"), query=driver.TURNS[0][1], limit=2)
        then = [Receipt.from_dict(r) for r in turns[0]["receipts"]]
        assert [(r.state_hash, r.results, r.query, r.filter) for r in got] == \
            [(r.state_hash, r.results, r.query, r.filter) for r in then]
