"""ValoriMemoryBlock: per-call session scoping, no mutation, determinism, and exact
snapshot/restore of one session (with its chat history)."""

from __future__ import annotations

import copy

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.llms import ChatMessage  # noqa: E402
from llama_index.core.memory import Memory  # noqa: E402
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters  # noqa: E402

from valori_store.errors import InputError  # noqa: E402
from valori_store.llamaindex import SessionSnapshot, ValoriHashingEmbedding, ValoriMemoryBlock, ValoriVectorStore
from valori_store.llamaindex.memory import INPUT_EMBEDDING_KEY  # noqa: E402

DIM = 128


def _block(store: ValoriVectorStore | None = None, **kw) -> ValoriMemoryBlock:
    return ValoriMemoryBlock(
        vector_store=store or ValoriVectorStore(dim=DIM), embed_model=ValoriHashingEmbedding(dim=DIM), **kw
    )


def _user(text: str, **extra) -> ChatMessage:
    return ChatMessage(role="user", content=text, additional_kwargs=extra)


def _turn(q: str, a: str) -> list[ChatMessage]:
    return [_user(q), ChatMessage(role="assistant", content=a)]


ALICE = [("my cat is called Tom", "nice cat"), ("I live in Paris", "lovely city"), ("I like jazz", "good taste")]
BOB = [("my dog is called Rex", "nice dog"), ("I live in Oslo", "cold city"), ("I like rock", "loud")]


async def _fill(block: ValoriMemoryBlock) -> None:
    for (qa, aa), (qb, ab) in zip(ALICE, BOB):  # interleaved
        await block.aput(_turn(qa, aa), session_id="alice")
        await block.aput(_turn(qb, ab), session_id="bob")


async def test_interleaved_sessions_never_leak() -> None:
    block = _block(similarity_top_k=3)
    await _fill(block)
    for session, own, other in (("alice", ALICE, BOB), ("bob", BOB, ALICE), ("alice", ALICE, BOB)):
        text = await block.aget([_user("where do I live and what pet do I have")], session_id=session)
        assert sum(q in text for q, _ in own) == 3
        assert not any(q in text for q, _ in other), (session, text)


async def test_session_comes_from_each_call_not_the_first_one() -> None:
    """VectorMemoryBlock pins its filter to the first session it sees; this block does not."""
    block = _block(similarity_top_k=1)
    await _fill(block)
    first = await block.aget([_user("my pet is called")], session_id="alice")
    second = await block.aget([_user("my pet is called")], session_id="bob")
    assert "Tom" in first and "Rex" in second
    assert block.filters is None  # nothing was written into the block's own config


async def test_messages_are_never_mutated() -> None:
    block = _block()
    messages = [_user("hello there", note="keep"), ChatMessage(role="assistant", content="hi", additional_kwargs={})]
    frozen = copy.deepcopy(messages)
    await block.aput(messages, session_id="s1")
    await block.aput(messages, from_short_term_memory=True, session_id="s2")
    await block.aget(messages, session_id="s1")
    assert [m.model_dump() for m in messages] == [m.model_dump() for m in frozen]


async def test_session_fallbacks_and_validation() -> None:
    block = _block(default_session_id="fallback")
    await block.aput([_user("from kwargs", session_id="k1")])
    await block.aput([_user("no session at all")])
    sessions = {n.metadata["session_id"] for n in block.vector_store.get_nodes()}
    assert sessions == {"k1", "fallback"}
    with pytest.raises(InputError):
        await block.aput([_user("x")], session_id="")
    assert await block.aget([], session_id="k1") == ""
    await block.aput([ChatMessage(role="user", content="")], session_id="k1")  # no text: nothing stored
    assert len(block.vector_store.client) == 2


async def test_extra_filters_are_anded_with_the_session() -> None:
    store = ValoriVectorStore(dim=DIM)
    block = _block(store, similarity_top_k=5, filters=MetadataFilters(filters=[
        MetadataFilter(key="position", value=0)]))
    await _fill(block)
    text = await block.aget([_user("anything")], session_id="alice")
    assert ALICE[0][0] in text and ALICE[1][0] not in text and BOB[0][0] not in text


async def test_same_conversation_same_state() -> None:
    a, b = _block(), _block()
    await _fill(a)
    await _fill(b)
    assert a.vector_store.state_hash() == b.vector_store.state_hash()


async def test_snapshot_change_restore_gives_identical_retrieval() -> None:
    block = _block(similarity_top_k=2)
    await _fill(block)
    probes = [[_user("what pet")], [_user("which city")], [_user("music")]]
    at_snapshot = [await block.aget(p, session_id="alice") for p in probes]
    bob_before = [(n.node_id, n.text) for n in block.vector_store.get_nodes() if n.metadata["session_id"] == "bob"]
    snap = await block.asnapshot("alice")
    assert [r["id"] for r in snap.records] == sorted(r["id"] for r in snap.records)
    assert all(INPUT_EMBEDDING_KEY in r["metadata"] for r in snap.records)

    await block.aput(_turn("my cat is now called Felix, a new pet", "ok"), session_id="alice")
    await block.aput(_turn("I moved to a new city, Rome", "ok"), session_id="alice")
    await block.aput(_turn("bob likes this new city too", "ok"), session_id="bob")
    changed = [await block.aget(p, session_id="alice") for p in probes]
    assert changed != at_snapshot

    restored_from = SessionSnapshot.from_json(snap.to_json())
    assert restored_from == snap and restored_from.digest == snap.digest
    events_before = block.vector_store.client.log_length
    await block.arestore(restored_from)
    assert block.vector_store.client.log_length == events_before + 1  # one atomic event
    assert [await block.aget(p, session_id="alice") for p in probes] == at_snapshot
    again = await block.asnapshot("alice")
    assert again.to_json() == snap.to_json()  # bit-identical records, vectors included
    bob_after = [(n.node_id, n.text) for n in block.vector_store.get_nodes() if n.metadata["session_id"] == "bob"]
    assert len(bob_after) == len(bob_before) + 1  # bob's newer memory survives alice's restore


async def test_restore_rejects_foreign_records() -> None:
    block = _block()
    await _fill(block)
    snap = await block.asnapshot("alice")
    forged = SessionSnapshot("bob", snap.records)
    with pytest.raises(InputError, match="does not belong"):
        await block.arestore(forged)
    with pytest.raises(InputError):
        SessionSnapshot.from_json('{"format": "other"}')


def _memory(block: ValoriMemoryBlock, session: str) -> Memory:
    return Memory.from_defaults(
        session_id=session, token_limit=40, chat_history_token_ratio=0.5, token_flush_size=10,
        memory_blocks=[block], tokenizer_fn=lambda s: s.split(),
    )


async def test_resumed_agent_retrieves_exactly_what_it_did() -> None:
    """Memory flushes old turns into the block; snapshot session + chat history, continue
    the conversation, restore, and the agent's next context is what it was."""
    block = _block(similarity_top_k=2)
    alice, bob = _memory(block, "alice"), _memory(block, "bob")
    for (qa, aa), (qb, ab) in zip(ALICE, BOB):
        for m in _turn(qa + " and some more words to fill", aa):
            await alice.aput(m)
        for m in _turn(qb + " and some more words to fill", ab):
            await bob.aput(m)
    assert len(block.vector_store.client) > 0  # turns were flushed to long-term memory
    context_before = await alice.aget()
    history_before = await alice.aget_all()
    snap = await block.asnapshot(memory=alice)
    assert snap.session_id == "alice" and snap.chat_active is not None and snap.chat_archived
    stored_at_snapshot = len(block.vector_store.client)

    for m in _turn("forget everything, my cat is now Felix and I live in Rome", "noted"):
        await alice.aput(m)
    assert await alice.aget_all() != history_before
    assert len(block.vector_store.client) > stored_at_snapshot  # the new turn was flushed to the block

    await block.arestore(snap, memory=alice)
    assert len(block.vector_store.client) == stored_at_snapshot
    assert [m.model_dump() for m in await alice.aget_all()] == [m.model_dump() for m in history_before]
    assert [m.model_dump() for m in await alice.aget()] == [m.model_dump() for m in context_before]
    bob_context = await bob.aget()
    assert not any(q in str(bob_context) for q, _ in ALICE)
