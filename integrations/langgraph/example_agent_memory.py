"""Runnable offline example: an agent graph with long-term memory that can travel back in time.

    python integrations/langgraph/example_agent_memory.py

No network, no model: HashingEmbedder is a deterministic feature-hashing embedder. The
graph remembers every user message (ValoriMemoryStore) and recalls related ones; the
checkpointer (ValoriCheckpointer around LangGraph's InMemorySaver) binds the memory's
state to each LangGraph checkpoint, so replaying from an old checkpoint recalls exactly
what was recalled then. Prints one line per turn, then the replay, and exits non-zero if
the replay differs.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone
from typing import Any, TypedDict

from langgraph.checkpoint.memory import InMemorySaver
from langgraph.config import get_store
from langgraph.graph import END, START, StateGraph

from valori_store.embedder import HashingEmbedder
from valori_store.langgraph import ValoriCheckpointer, ValoriMemoryStore

START_TIME = datetime(2024, 1, 1, tzinfo=timezone.utc)
NAMESPACE = ("users", "ada", "memories")


class State(TypedDict, total=False):
    turn: int
    message: str
    recalled: list[tuple[str, float, str]]


def main() -> int:
    now = {"t": START_TIME}
    memory = ValoriMemoryStore(
        index={"dims": 128, "embed": HashingEmbedder(128), "fields": ["text"]},
        clock=lambda: now["t"],  # injected: the memory's state hash is reproducible
    )
    checkpointer = ValoriCheckpointer(InMemorySaver(), memory)

    def remember(state: State) -> dict[str, Any]:
        store = get_store()
        now["t"] = START_TIME + timedelta(minutes=state["turn"])
        hits = store.search(NAMESPACE, query=state["message"], limit=2)
        store.put(NAMESPACE, f"turn-{state['turn']}", {"text": state["message"]})
        return {"recalled": [(h.key, h.score, h.value["text"]) for h in hits]}

    builder = StateGraph(State)
    builder.add_node("remember", remember)
    builder.add_edge(START, "remember")
    builder.add_edge("remember", END)
    graph = builder.compile(checkpointer=checkpointer, store=memory)

    config = {"configurable": {"thread_id": "ada"}}
    messages = ["I moved to Lisbon", "I like cool jazz", "recommend a jazz bar in Lisbon", "what city do I live in"]
    said = []
    for turn, message in enumerate(messages):
        out = graph.invoke({"turn": turn, "message": message}, config, durability="sync")
        said.append(out["recalled"])
        print(f"turn {turn}: {message!r:36} recalled {[k for k, _, _ in out['recalled']]}  memory {memory.state_hash()[:12]}")

    # time travel: the checkpoint taken when turn 2's input arrived
    past = next(s for s in graph.get_state_history(config) if s.next == ("remember",) and s.values["turn"] == 2)
    print(f"rewinding to checkpoint {past.config['configurable']['checkpoint_id']} "
          f"(memory {past.metadata['valori']['state_hash'][:12]}, seq {past.metadata['valori']['seq']})")
    replay = graph.invoke(None, past.config, durability="sync")["recalled"]
    same = replay == said[2]
    print(f"replayed turn 2 recalled {[k for k, _, _ in replay]}; identical to the original: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
