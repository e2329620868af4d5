"""Reproducible sessions: a StateGraph that writes to and reads from memory each turn,
checkpointed through ValoriCheckpointer, travels back to an earlier checkpoint and gets
bit-identical retrieval (keys, scores as exact floats, texts) and the recorded memory hash.
"""

from __future__ import annotations

import operator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph

from valori_store.embedder import HashingEmbedder
from valori_store.errors import NotFoundError
from valori_store.langgraph import ValoriCheckpointer, ValoriMemoryStore

BASE = datetime(2024, 5, 1, tzinfo=timezone.utc)
MESSAGES = [
    "I live in Lisbon and I like jazz",
    "my favourite food is grilled sardines",
    "I play jazz piano on weekends",
    "remind me what music I like",
]
USER = ("users", "u1", "memories")


class State(TypedDict, total=False):
    turn: int
    message: str
    recalled: Annotated[list, operator.add]


class TurnClock:
    """Time is a function of the turn being processed, so a replayed turn writes the same bytes."""

    def __init__(self) -> None:
        self.t = BASE

    def __call__(self) -> datetime:
        return self.t


def _recall(results: list[Any]) -> list[tuple[Any, ...]]:
    """What a turn retrieved, with scores as exact bit patterns."""
    return [(tuple(r.namespace), r.key, None if r.score is None else r.score.hex(), r.value["text"]) for r in results]


def build(clock: TurnClock, auto_rewind: bool = True) -> tuple[Any, ValoriCheckpointer, ValoriMemoryStore]:
    memory = ValoriMemoryStore(index={"dims": 64, "embed": HashingEmbedder(64), "fields": ["text"]}, clock=clock)
    saver = ValoriCheckpointer(InMemorySaver(), memory, auto_rewind=auto_rewind)

    def remember(state: State) -> dict[str, Any]:
        store = get_store()
        clock.t = BASE + timedelta(minutes=state["turn"])
        recalled = _recall(store.search(USER, query=state["message"], limit=3))  # read, then write
        store.put(USER, f"m{state['turn']}", {"text": state["message"], "turn": state["turn"]})
        return {"recalled": [recalled]}

    async def aremember(state: State) -> dict[str, Any]:
        store = get_store()
        clock.t = BASE + timedelta(minutes=state["turn"])
        recalled = _recall(await store.asearch(USER, query=state["message"], limit=3))
        await store.aput(USER, f"m{state['turn']}", {"text": state["message"], "turn": state["turn"]})
        return {"recalled": [recalled]}

    from langchain_core.runnables import RunnableLambda

    graph = StateGraph(State)
    graph.add_node("remember", RunnableLambda(remember, afunc=aremember))
    graph.add_edge(START, "remember")
    graph.add_edge("remember", END)
    return graph.compile(checkpointer=saver, store=memory), saver, memory


def _input_checkpoint(graph: Any, config: dict, turn: int) -> Any:
    """The checkpoint taken when turn ``turn``'s input arrived (its node not yet run)."""
    found = [s for s in graph.get_state_history(config) if s.next == ("remember",) and s.values.get("turn") == turn]
    assert len(found) == 1, found
    return found[0]


def _run_turns(graph: Any, memory: ValoriMemoryStore, config: dict) -> tuple[list, list[str]]:
    recalls, hashes = [], [memory.state_hash()]
    for turn, message in enumerate(MESSAGES):
        out = graph.invoke({"turn": turn, "message": message}, config, durability="sync")
        recalls.append(out["recalled"][-1])
        hashes.append(memory.state_hash())
    return recalls, hashes


def test_time_travel_restores_memory_and_retrieval_bit_for_bit() -> None:
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "s1"}}
    recalls, hashes = _run_turns(graph, memory, config)
    assert len(set(hashes)) == len(MESSAGES) + 1  # every turn changed the memory

    # every LangGraph checkpoint records the memory state it was taken in
    for snap in graph.get_state_history(config):
        rec = snap.metadata["valori"]
        turns_done = len(snap.values.get("recalled", []))
        assert rec["state_hash"] == hashes[turns_done]
        assert rec["seq"] in {cp.seq for cp in memory.store.history()}
    # idle steps reuse the memory checkpoint: one per distinct state
    assert len(memory.store.history()) == len(set(hashes))

    # today, turn 1's question retrieves something else (more memories exist)
    today = _recall(memory.search(USER, query=MESSAGES[1], limit=3))
    assert today != recalls[1]

    # travel back to the moment turn 1's input arrived and replay from there
    past = _input_checkpoint(graph, config, turn=1)
    out = graph.invoke(None, past.config, durability="sync")
    assert out["recalled"][-1] == recalls[1]  # same keys, same score bits, same texts
    assert memory.state_hash() == hashes[2]  # the replayed turn wrote the same bytes
    assert memory.store.verify().ok  # the restore is an event in the hash-chained log

    # and forward again: back to the end of the original timeline
    last = next(s for s in graph.get_state_history(config) if s.values.get("turn") == 3 and not s.next)
    graph.get_state(last.config)  # inspecting a checkpoint never moves the memory
    assert memory.state_hash() == hashes[2]
    saver.rewind(last.config)  # an explicit rewind does
    assert memory.state_hash() == hashes[4]


def test_explicit_rewind_without_auto_rewind() -> None:
    graph, saver, memory = build(TurnClock(), auto_rewind=False)
    config = {"configurable": {"thread_id": "s2"}}
    recalls, hashes = _run_turns(graph, memory, config)
    past = _input_checkpoint(graph, config, turn=2)
    graph.get_state(past.config)
    assert memory.state_hash() == hashes[4]  # no side effect without auto_rewind
    cp = saver.rewind(past.config)
    assert memory.state_hash() == hashes[2] == cp.state_hash == past.metadata["valori"]["state_hash"]
    assert _recall(memory.search(USER, query=MESSAGES[2], limit=3)) == recalls[2]
    # rewinding to a checkpoint not made through the wrapper is a clear error
    with pytest.raises(NotFoundError):
        saver.rewind({"configurable": {"thread_id": "nobody"}})


def test_resuming_the_newest_checkpoint_never_rewinds() -> None:
    """Shared memory: other writers' changes survive a thread resuming its own newest checkpoint."""
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "s3"}}
    graph.invoke({"turn": 0, "message": MESSAGES[0]}, config, durability="sync")
    memory.put(("users", "u2"), "other", {"text": "written by another thread", "turn": 9})
    after_other = memory.state_hash()
    newest = graph.get_state(config)
    graph.get_state(newest.config)  # explicit id, but it is the newest: no rewind
    assert memory.state_hash() == after_other


async def test_async_time_travel() -> None:
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "s4"}}
    recalls, hashes = [], [memory.state_hash()]
    for turn, message in enumerate(MESSAGES):
        out = await graph.ainvoke({"turn": turn, "message": message}, config, durability="sync")
        recalls.append(out["recalled"][-1])
        hashes.append(memory.state_hash())
    past = None
    async for snap in graph.aget_state_history(config):
        if snap.next == ("remember",) and snap.values.get("turn") == 1:
            past = snap
    assert past is not None
    out = await graph.ainvoke(None, past.config, durability="sync")
    assert out["recalled"][-1] == recalls[1]
    assert memory.state_hash() == hashes[2]
    cp = await saver.arewind(past.config)
    assert memory.state_hash() == cp.state_hash == hashes[1]


def test_with_allowlist_clone_shares_the_memory_binding() -> None:
    memory = ValoriMemoryStore(clock=TurnClock())
    saver = ValoriCheckpointer(InMemorySaver(), memory)
    clone = saver.with_allowlist({("my_module", "MyType")})
    assert isinstance(clone, ValoriCheckpointer) and clone.memory is memory
    memory.put(("a",), "k", {"x": 1})
    first = clone.memory_checkpoint()
    assert saver.memory_checkpoint() == first  # unchanged state: the same checkpoint, reused
    assert len(memory.store.history()) == 1


def test_concurrent_writers_keep_the_memory_consistent() -> None:
    import threading

    memory = ValoriMemoryStore(index={"dims": 16, "embed": HashingEmbedder(16), "fields": ["text"]}, clock=TurnClock())
    saver = ValoriCheckpointer(InMemorySaver(), memory)

    def writer(w: int) -> None:
        for i in range(15):
            memory.put(("w", str(w)), f"k{i % 5}", {"text": f"writer {w} note {i}"})
            if i % 4 == 0:
                memory.delete(("w", str(w)), f"k{(i + 1) % 5}")
            saver.memory_checkpoint()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    items = memory.search(("w",), limit=1000)
    # every item is one item record (no vector) with its vectors; namespaces are exactly those holding items
    records = memory.store.get(memory.store.ids())
    item_records = [r for r in records if r.metadata.get("lg:kind") == "item"]
    assert len(item_records) == len(items) and all(r.vector is None for r in item_records)
    assert {r.metadata.get("lg:kind") for r in records} == {"item", "vec"}
    held: dict[tuple[str, ...], int] = {}
    for it in items:
        held[tuple(it.namespace)] = held.get(tuple(it.namespace), 0) + 1
    assert memory.list_namespaces(prefix=("w",)) == sorted(held)
    vectors = [r for r in records if r.metadata.get("lg:kind") == "vec"]
    assert len(vectors) == len(items)
    assert {(tuple(v.metadata["lg:ns"]), v.metadata["lg:key"]) for v in vectors} == \
        {(tuple(it.namespace), it.key) for it in items}
    assert all(memory.store.restore(cp) for cp in memory.store.history()[-2:])  # each checkpoint restorable
