"""Sessions: turns (checkpoint + receipts) in the log, rewind, fork, verify, persistence."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from valori_store import InputError, NotFoundError, ValoriStore


def _vec(seed: int, n: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, 6))


def _run_turns(store: ValoriStore, name: str = "alice", turns: int = 3) -> list[list[str]]:
    """Each turn: write two records, then search twice. Returns each turn's result ids."""
    session = store.session(name)
    seen = []
    for t in range(turns):
        store.upsert(_vec(100 + t, 2), ids=[f"{name}-{t}-a", f"{name}-{t}-b"], texts=[f"t{t}a", f"t{t}b"])
        with session.turn(meta={"input": f"question {t}"}) as rec:
            ids = [h.id for h in store.search(_vec(200 + t)[0], k=3)]
            store.mmr_search(_vec(300 + t)[0], k=2, fetch_k=4)
        assert len(rec) == 2
        seen.append(ids)
    return seen


def test_turns_record_checkpoints_and_receipts() -> None:
    store = ValoriStore(6)
    seen = _run_turns(store)
    turns = store.session("alice").turns()
    assert [t.number for t in turns] == [1, 2, 3]
    assert [t.meta for t in turns] == [{"input": f"question {i}"} for i in range(3)]
    assert [t.receipts[0].ids for t in turns] == seen
    assert [t.checkpoint for t in turns] == [c for c in store.history() if c.label and c.label.startswith("alice#")]
    assert all(check.ok for check in store.session("alice").verify())


def test_rewind_restores_a_turn_state_and_retrieval() -> None:
    store = ValoriStore(6)
    _run_turns(store)
    s = store.session("alice")
    t1 = s.turn_at(1)
    s.rewind(1)
    assert store.state_hash() == t1.state_hash
    q = _vec(200)[0]
    assert [h.id for h in store.search(q, k=3)] == t1.receipts[0].ids
    assert len(s.turns()) == 3  # rewinding erases nothing


def test_fork_inherits_history_and_diverges() -> None:
    store = ValoriStore(6)
    _run_turns(store)
    fork = store.fork_session("bob", "alice", 2)
    assert store.state_hash() == store.session("alice").turn_at(2).state_hash
    store.upsert(_vec(999), ids=["bob-only"])
    with fork.turn(meta={"input": "bob asks"}):
        store.search(_vec(998)[0], k=2)
    turns = fork.turns()
    assert [(t.session, t.number) for t in turns] == [("alice", 1), ("alice", 2), ("bob", 3)]
    assert len(store.session("alice").turns()) == 3
    infos = {i.name: i for i in store.sessions()}
    assert (infos["bob"].parent, infos["bob"].from_turn, infos["bob"].turns) == ("alice", 2, 3)
    assert all(c.ok for c in fork.verify())
    with pytest.raises(InputError, match="already exists"):
        store.fork_session("bob", "alice", 1)
    with pytest.raises(NotFoundError):
        store.fork_session("carol", "nobody", 1)
    with pytest.raises(NotFoundError):
        store.fork_session("carol", "alice", 9)


def test_failed_turn_marks_nothing() -> None:
    store = ValoriStore(6)
    store.upsert(_vec(1, 3))
    s = store.session("x")
    with pytest.raises(RuntimeError):
        with s.turn():
            store.search(_vec(2)[0])
            raise RuntimeError("agent crashed")
    assert s.turns() == []


@pytest.mark.parametrize("name", ["", "-x", "a b", "x" * 200, 3, None])
def test_bad_session_names(name: object) -> None:
    with pytest.raises(InputError):
        ValoriStore(6).session(name)  # type: ignore[arg-type]


def test_bad_meta_changes_nothing() -> None:
    store = ValoriStore(6)
    store.upsert(_vec(1, 2))
    s = store.session("x")
    before = (store.log_length, store.state_hash())
    with pytest.raises(InputError):
        s.mark_turn(meta={"t": object()})
    assert (store.log_length, store.state_hash()) == before and s.turns() == []


def test_sessions_do_not_change_the_state_hash() -> None:
    plain, with_sessions = ValoriStore(6), ValoriStore(6)
    plain.upsert(_vec(5, 4), ids=list("abcd"))
    s = with_sessions.session("s")
    with_sessions.upsert(_vec(5, 4), ids=list("abcd"))
    with s.turn():
        with_sessions.search(_vec(6)[0])
    assert plain.state_hash() == with_sessions.state_hash()
    assert plain.to_bytes() == with_sessions.to_bytes()


SCRIPT = textwrap.dedent("""
    import sys
    from valori_store import ValoriStore
    store = ValoriStore.open(sys.argv[1])
    out = []
    for info in store.sessions():
        for check in store.session(info.name).verify():
            out.append(f"{info.name} {check.turn.number} {check.ok} " + " ".join(r.to_json() for r in check.turn.receipts))
    print("\\n".join(out))
""")


def test_sessions_persist_and_verify_in_a_new_process(tmp_path: Path) -> None:
    store = ValoriStore.open(tmp_path / "db", dim=6, durability="batch")
    _run_turns(store)
    store.fork_session("bob", "alice", 1)
    expected = []
    for info in store.sessions():
        for t in store.session(info.name).turns():
            expected.append(f"{info.name} {t.number} True " + " ".join(r.to_json() for r in t.receipts))
    store.close()
    src = Path(__file__).resolve().parents[2] / "src"
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "db")], capture_output=True, text=True,
                          env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == expected


def test_a_turn_records_only_its_own_store_s_retrievals() -> None:
    a, b = ValoriStore(6), ValoriStore(6)
    a.upsert(_vec(1, 3), ids=["a1", "a2", "a3"])
    b.upsert(_vec(2, 3), ids=["b1", "b2", "b3"])
    s = a.session("chat")
    from valori_store.receipts import record_receipts

    with record_receipts() as everything:
        with s.turn() as got:
            a.search(_vec(3)[0], k=1)
            b.search(_vec(3)[0], k=1)  # another store (e.g. a separate memory): not this turn's
    assert [r.ids[0][0] for r in got] == ["a"] and len(everything) == 2
    assert [len(t.receipts) for t in s.turns()] == [1]
    assert all(c.ok for c in s.verify())


def test_many_turns_stay_cheap() -> None:
    store = ValoriStore(6)
    store.upsert(_vec(1, 50))
    s = store.session("long")
    for i in range(300):
        with s.turn(meta={"i": i}):
            store.search(_vec(i)[0], k=2)
    turns = s.turns()
    assert [t.number for t in turns] == list(range(1, 301))
    assert [t.meta["i"] for t in turns] == list(range(300))
    assert s.info().turns == 300 and all(c.ok for c in s.verify())
