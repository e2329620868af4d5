"""Drives one multi-turn agent session through the LangChain retriever and the LangGraph
memory on one durable store; run as a script it prints the session's receipts as JSON.

Used by test_adapter_session.py in fresh processes, so "record", "reopen and replay" and
"same inputs on another store" each happen in their own interpreter.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

from langchain_core.documents import Document

from valori_store import ValoriStore
from valori_store.embedder import HashingEmbedder
from valori_store.langchain import ValoriVectorStore
from valori_store.langgraph import ValoriMemoryStore

SESSION = "agent"
KB = [
    ("kb-bread", "Knead bread dough until smooth, proof it, then bake in a hot oven.", {"topic": "cooking"}),
    ("kb-pasta", "Salt pasta water generously and stir the pasta in the first minute.", {"topic": "cooking"}),
    ("kb-rates", "Central banks raise interest rates to slow inflation.", {"topic": "finance"}),
    ("kb-tomato", "Tomatoes need full sun and steady watering.", {"topic": "gardening"}),
    ("kb-stars", "Neutron stars are the collapsed cores of massive stars.", {"topic": "astronomy"}),
]
TURNS = [
    ("My name is Ada and I bake bread every Sunday.", "how do I bake bread"),
    ("I am growing tomatoes on my balcony.", "how much sun do tomatoes need"),
    ("Actually I stopped baking; I cook pasta now.", "how do I cook pasta"),
]


def fixed_clock() -> Any:
    """A deterministic clock for the memory's timestamps (they are part of the state)."""
    ticks = iter(range(10**9))
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    return lambda: base + timedelta(seconds=next(ticks))


def drive(path: str) -> list[dict[str, Any]]:
    """Record the session on a new durable store at ``path``; returns the turns as dicts."""
    emb = HashingEmbedder()
    core = ValoriStore.open(path, dim=emb.dim, durability="batch")
    try:
        docs = ValoriVectorStore(emb, store=core)
        docs.add_documents([Document(id=i, page_content=t, metadata={"source": "kb", **m}) for i, t, m in KB])
        memory = ValoriMemoryStore(store=core, index={"dims": emb.dim, "embed": emb, "fields": ["text"]},
                                   clock=fixed_clock())
        retriever = docs.as_retriever(search_kwargs={"k": 2, "filter": {"source": "kb"}})
        session = core.session(SESSION)
        for n, (says, question) in enumerate(TURNS, 1):
            memory.put(("users", "ada"), f"fact-{n}", {"text": says, "turn": n})
            with session.turn(meta={"user": says, "question": question}):
                retriever.invoke(question)
                memory.search(("users", "ada"), query=question, limit=2)
        return [t.to_dict() for t in session.turns()]
    finally:
        core.close()


def replay(path: str) -> list[dict[str, Any]]:
    """Reopen the store and re-execute every recorded retrieval; returns per-turn checks."""
    with ValoriStore.open(path) as core:
        return [{"turn": c.turn.number, "statuses": [r.status for r in c.receipts],
                 "actual": [r.actual for r in c.receipts]} for c in core.session(SESSION).verify()]


if __name__ == "__main__":
    command, where = sys.argv[1], sys.argv[2]
    result = drive(where) if command == "drive" else replay(where)
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
