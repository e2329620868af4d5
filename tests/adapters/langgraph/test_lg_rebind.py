"""The memory stays bound to the checkpoint a run resumes from: inspecting a past checkpoint
does not move it, resuming the newest checkpoint after a rewind brings it back, time travel
and update_state forks still rewind, and a run's own writes are never undone mid-run.

Expected states come from a control graph driven through the same turns without any
inspection or rewind (same clock, so the same bytes), never from the code under test."""

from __future__ import annotations

from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph
from test_lg_sessions import MESSAGES, USER, TurnClock, _input_checkpoint, build

from valori_store.embedder import HashingEmbedder
from valori_store.langgraph import ValoriCheckpointer, ValoriMemoryStore


def _turn(graph: Any, config: dict, turn: int) -> list:
    return graph.invoke({"turn": turn, "message": MESSAGES[turn]}, config, durability="sync")["recalled"][-1]


def _control() -> tuple[list, list[str]]:
    """Recalls and memory hashes of four turns with nothing else happening."""
    graph, _, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "control"}}
    recalls, hashes = [], [memory.state_hash()]
    for turn in range(len(MESSAGES)):
        recalls.append(_turn(graph, config, turn))
        hashes.append(memory.state_hash())
    return recalls, hashes


def _keys(memory: ValoriMemoryStore) -> list[str]:
    return [it.key for it in memory.search(USER, limit=100)]


def test_inspecting_a_past_checkpoint_then_resuming_keeps_every_fact() -> None:
    recalls, hashes = _control()
    graph, _, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "t"}}
    for turn in range(3):
        _turn(graph, config, turn)
    past = _input_checkpoint(graph, config, turn=1)
    snap = graph.get_state(past.config)  # inspection only
    assert snap.values["turn"] == 1
    assert memory.state_hash() == hashes[3] and _keys(memory) == ["m0", "m1", "m2"]

    assert _turn(graph, config, 3) == recalls[3]  # the turn saw every earlier fact
    assert _keys(memory) == ["m0", "m1", "m2", "m3"]
    assert memory.state_hash() == hashes[4] == graph.get_state(config).metadata["valori"]["state_hash"]


async def test_async_inspection_does_not_rewind() -> None:
    recalls, hashes = _control()
    graph, _, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "ta"}}
    for turn in range(3):
        await graph.ainvoke({"turn": turn, "message": MESSAGES[turn]}, config, durability="sync")
    past = None
    async for snap in graph.aget_state_history(config):
        if snap.next == ("remember",) and snap.values.get("turn") == 1:
            past = snap
    await graph.aget_state(past.config)
    assert memory.state_hash() == hashes[3]
    out = await graph.ainvoke({"turn": 3, "message": MESSAGES[3]}, config, durability="sync")
    assert out["recalled"][-1] == recalls[3] and memory.state_hash() == hashes[4]


def test_resuming_the_newest_checkpoint_after_rewind_comes_back() -> None:
    recalls, hashes = _control()
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "r"}}
    for turn in range(3):
        _turn(graph, config, turn)
    latest_hash = graph.get_state(config).metadata["valori"]["state_hash"]
    saver.rewind(_input_checkpoint(graph, config, turn=1).config)
    assert memory.state_hash() == hashes[1]  # explicit rewind: the memory moved
    assert _turn(graph, config, 3) == recalls[3]  # the run came back before its node ran
    assert latest_hash == hashes[3] and memory.state_hash() == hashes[4]
    assert _keys(memory) == ["m0", "m1", "m2", "m3"]


async def test_async_resume_after_arewind_comes_back() -> None:
    recalls, hashes = _control()
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "ra"}}
    for turn in range(3):
        await graph.ainvoke({"turn": turn, "message": MESSAGES[turn]}, config, durability="sync")
    await saver.arewind(_input_checkpoint(graph, config, turn=2).config)
    assert memory.state_hash() == hashes[2]
    out = await graph.ainvoke({"turn": 3, "message": MESSAGES[3]}, config, durability="sync")
    assert out["recalled"][-1] == recalls[3] and memory.state_hash() == hashes[4]


def test_writes_after_a_rewind_are_never_undone() -> None:
    graph, saver, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "w"}}
    for turn in range(3):
        _turn(graph, config, turn)
    saver.rewind(_input_checkpoint(graph, config, turn=1).config)
    memory.put(("users", "u2"), "other", {"text": "written after the rewind", "turn": 9})
    after = memory.state_hash()
    graph.get_state(config)
    assert memory.state_hash() == after
    _turn(graph, config, 3)  # the memory changed since the rewind: it is left alone
    assert memory.get(("users", "u2"), "other") is not None
    assert _keys(memory) == ["m0", "m3"]


def test_time_travel_still_rewinds_and_its_fork_is_the_new_present() -> None:
    recalls, hashes = _control()
    graph, _, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "tt"}}
    for turn in range(3):
        _turn(graph, config, turn)
    past = _input_checkpoint(graph, config, turn=1)
    out = graph.invoke(None, past.config, durability="sync")
    assert out["recalled"][-1] == recalls[1] and memory.state_hash() == hashes[2]
    # the fork is now the thread's newest checkpoint: resuming it keeps the replayed memory
    assert graph.get_state(config).metadata["valori"]["state_hash"] == hashes[2]
    graph.invoke({"turn": 2, "message": MESSAGES[2]}, config, durability="sync")
    assert memory.state_hash() == hashes[3] and _keys(memory) == ["m0", "m1", "m2"]


def test_update_state_on_a_past_checkpoint_forks_with_its_memory() -> None:
    recalls, hashes = _control()
    graph, _, memory = build(TurnClock())
    config = {"configurable": {"thread_id": "u"}}
    for turn in range(3):
        _turn(graph, config, turn)
    past = _input_checkpoint(graph, config, turn=1)
    fork = graph.update_state(past.config, {"message": MESSAGES[1]})
    assert memory.state_hash() == hashes[1]
    assert graph.get_state(fork).metadata["valori"]["state_hash"] == hashes[1]
    out = graph.invoke(None, config, durability="sync")  # resumes the fork
    assert out["recalled"][-1] == recalls[1] and memory.state_hash() == hashes[2]


class Flow(TypedDict, total=False):
    turn: int
    seen: list


def test_a_runs_own_writes_survive_mid_run_checkpoint_loads() -> None:
    """A persistent subgraph loads its namespace's newest checkpoint in the middle of the
    parent's run, after the parent wrote to memory: nothing may be rewound then."""
    memory = ValoriMemoryStore(index={"dims": 32, "embed": HashingEmbedder(32), "fields": ["text"]},
                               clock=TurnClock())
    saver = ValoriCheckpointer(InMemorySaver(), memory)

    def write(state: Flow) -> dict:
        get_store().put(("f",), f"k{state['turn']}", {"text": f"fact {state['turn']}"})
        return {}

    def read(state: Flow) -> dict:
        return {"seen": sorted(it.key for it in get_store().search(("f",), limit=100))}

    sub = StateGraph(Flow)
    sub.add_node("read", read)
    sub.add_edge(START, "read")
    sub.add_edge("read", END)
    parent = StateGraph(Flow)
    parent.add_node("write", write)
    parent.add_node("sub", sub.compile(checkpointer=True))
    parent.add_edge(START, "write")
    parent.add_edge("write", "sub")
    parent.add_edge("sub", END)
    graph = parent.compile(checkpointer=saver, store=memory)
    config = {"configurable": {"thread_id": "f"}}
    for turn in range(3):
        graph.invoke({"turn": turn}, config, durability="sync")
    saver.rewind(next(s for s in graph.get_state_history(config) if s.values.get("turn") == 1).config)
    assert graph.invoke({"turn": 3}, config, durability="sync")["seen"] == ["k0", "k1", "k2", "k3"]
    assert sorted(it.key for it in memory.search(("f",), limit=100)) == ["k0", "k1", "k2", "k3"]

