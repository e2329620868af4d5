"""``langgraph-checkpoint-conformance`` against ValoriCheckpointer wrapping InMemorySaver.

Every capability the wrapped saver implements must be detected on the wrapper too and
pass; capabilities it lacks must be absent on the wrapper (not present-and-failing).
Run alone: ``pytest integrations/langgraph/test_lg_conformance.py``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("langgraph.checkpoint.conformance")

from langgraph.checkpoint.base import BaseCheckpointSaver  # noqa: E402
from langgraph.checkpoint.conformance import checkpointer_test, validate  # noqa: E402
from langgraph.checkpoint.conformance.capabilities import DetectedCapabilities  # noqa: E402
from langgraph.checkpoint.memory import InMemorySaver  # noqa: E402

from valori_store.embedder import HashingEmbedder  # noqa: E402
from valori_store.langgraph import ValoriCheckpointer, ValoriMemoryStore  # noqa: E402


def _memory() -> ValoriMemoryStore:
    memory = ValoriMemoryStore(index={"dims": 32, "embed": HashingEmbedder(32), "fields": ["text"]})
    memory.put(("notes",), "n1", {"text": "the memory is not empty"})
    return memory


@checkpointer_test(name="ValoriCheckpointer(InMemorySaver)")
async def wrapped_in_memory_saver():
    yield ValoriCheckpointer(InMemorySaver(), _memory())


async def test_conformance_suite_passes() -> None:
    report = await validate(wrapped_in_memory_saver)
    failures = {cap: res.failures for cap, res in report.results.items() if res.passed is False}
    assert not failures, failures
    assert report.passed_all_base()
    ran = {cap for cap, res in report.results.items() if res.passed}
    assert {"put", "put_writes", "get_tuple", "list", "delete_thread"} <= ran, report.results
    assert sum(res.tests_passed for res in report.results.values()) > 20


def test_capabilities_mirror_the_wrapped_saver() -> None:
    inner = DetectedCapabilities.from_instance(InMemorySaver())
    outer = DetectedCapabilities.from_instance(ValoriCheckpointer(InMemorySaver(), _memory()))
    assert outer.detected == inner.detected


def test_every_saved_checkpoint_records_the_memory() -> None:
    memory = _memory()
    saver = ValoriCheckpointer(InMemorySaver(), memory)
    config = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    from langgraph.checkpoint.base import empty_checkpoint

    stored = saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})
    meta = saver.get_tuple(stored).metadata["valori"]
    assert meta["state_hash"] == memory.state_hash()
    assert meta["seq"] in [cp.seq for cp in memory.store.history()]
    assert isinstance(saver, BaseCheckpointSaver)
