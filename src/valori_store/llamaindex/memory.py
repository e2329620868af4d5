"""``ValoriMemoryBlock``: long-term session memory for ``llama_index.core.memory.Memory``.

Messages flushed out of ``Memory``'s short-term queue are stored as nodes in a
:class:`ValoriVectorStore` (one node per flushed batch, like ``VectorMemoryBlock``) and
retrieved by similarity to the recent conversation. Invariants:

* Every read and write is scoped to the session of *that call* (``session_id`` passed by
  ``Memory``, else the message's ``additional_kwargs["session_id"]``, else
  ``default_session_id``); the session filter is built fresh per call and ANDed with the
  block's ``filters`` — nothing is pinned to the first session seen.
* Messages passed in are never mutated.
* Node ids and positions are deterministic (session, position, text), so the same
  conversation writes the same records, state hash and retrievals.
* :meth:`asnapshot` captures one session (its records, each with the exact input
  embedding, and, given the ``Memory``, its chat history); :meth:`arestore` brings that
  session back exactly — retrieval after restore equals retrieval at snapshot time —
  without touching other sessions.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass
from typing import Any, List, Optional

import numpy as np
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.base.llms.types import ChatMessage, TextBlock
from llama_index.core.bridge.pydantic import Field, PrivateAttr
from llama_index.core.memory.memory import BaseMemoryBlock
from llama_index.core.schema import TextNode
from llama_index.core.storage.chat_store.base_db import MessageStatus
from llama_index.core.vector_stores.types import MetadataFilter, MetadataFilters, VectorStoreQuery
from typing_extensions import override

from valori_store.errors import InputError
from valori_store.llamaindex.nodes import node_to_record
from valori_store.llamaindex.vector_store import ValoriVectorStore

__all__ = ["INPUT_EMBEDDING_KEY", "SessionSnapshot", "ValoriMemoryBlock"]

INPUT_EMBEDDING_KEY = "_input_embedding"
"""Record-level metadata key: the exact input embedding (float64 little-endian, base64).

Kept so a session can be re-ingested bit for bit (the stored vector is quantised and, for
cosine, normalised — not invertible). It is not part of the rebuilt node."""
POSITION_KEY = "position"
SNAPSHOT_FORMAT = "valori-llamaindex-session-v1"


def _encode_embedding(values: List[float]) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f8").tobytes()).decode("ascii")


def _decode_embedding(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype="<f8")


def _message_text(message: ChatMessage) -> str:
    return "".join(block.text for block in message.blocks if isinstance(block, TextBlock))


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


@dataclass(frozen=True)
class SessionSnapshot:
    """One session's long-term memory (and optionally its chat history), as plain JSON data.

    ``records``: ``{"id", "text", "metadata"}`` dicts in id order (metadata holds the exact
    input embedding). ``chat_active`` / ``chat_archived``: ``ChatMessage.model_dump(mode=
    "json")`` dicts in store order, or None when no ``Memory`` was given.
    """

    session_id: str
    records: tuple[dict[str, Any], ...]
    chat_active: Optional[tuple[dict[str, Any], ...]] = None
    chat_archived: Optional[tuple[dict[str, Any], ...]] = None

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): equal snapshots, equal text."""
        return _canonical({
            "format": SNAPSHOT_FORMAT,
            "session_id": self.session_id,
            "records": list(self.records),
            "chat_active": None if self.chat_active is None else list(self.chat_active),
            "chat_archived": None if self.chat_archived is None else list(self.chat_archived),
        })

    @classmethod
    def from_json(cls, text: str) -> "SessionSnapshot":
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise InputError(f"not a {SNAPSHOT_FORMAT} snapshot")

        def opt(name: str) -> Optional[tuple[dict[str, Any], ...]]:
            return None if data[name] is None else tuple(data[name])

        return cls(data["session_id"], tuple(data["records"]), opt("chat_active"), opt("chat_archived"))

    @property
    def digest(self) -> str:
        """SHA-256 hex of :meth:`to_json`."""
        return hashlib.sha256(self.to_json().encode("utf-8")).hexdigest()


class ValoriMemoryBlock(BaseMemoryBlock[str]):
    """Long-term memory block backed by a :class:`ValoriVectorStore` (see module docstring)."""

    name: str = Field(default="ValoriMemory", description="The name of the memory block.")
    vector_store: ValoriVectorStore = Field(description="Where memories are stored.")
    embed_model: BaseEmbedding = Field(description="Embeds stored batches and retrieval queries.")
    similarity_top_k: int = Field(default=2, description="Memories retrieved per call.")
    retrieval_context_window: int = Field(default=5, description="Recent messages forming the query.")
    default_session_id: str = Field(default="default", description="Session used when a call names none.")
    session_key: str = Field(default="session_id", description="Metadata key holding the session id.")
    filters: Optional[MetadataFilters] = Field(default=None, description="Extra filters ANDed on retrieval.")

    _lock: asyncio.Lock = PrivateAttr(default_factory=asyncio.Lock)

    # ------------------------------------------------------------------ session scoping
    def _session(self, session_id: Optional[str], messages: Optional[List[ChatMessage]] = None) -> str:
        if session_id is None and messages:
            found = messages[0].additional_kwargs.get(self.session_key)
            session_id = found if isinstance(found, str) else None
        session = self.default_session_id if session_id is None else session_id
        if not isinstance(session, str) or not session:
            raise InputError(f"session id must be a non-empty str, got {session!r}")
        return session

    def _session_filters(self, session: str) -> MetadataFilters:
        own: list[Any] = [MetadataFilter(key=self.session_key, value=session)]
        if self.filters is not None and self.filters.filters:
            own.append(self.filters)
        return MetadataFilters(filters=own)

    def _session_records(self, session: str) -> list[Any]:
        return self.vector_store.client.select({self.session_key: {"$eq": session}})

    # ------------------------------------------------------------------ BaseMemoryBlock
    @override
    async def _aget(
        self, messages: Optional[List[ChatMessage]] = None, session_id: Optional[str] = None, **block_kwargs: Any
    ) -> str:
        """Memories of this call's session most similar to the last messages, joined."""
        if not messages:
            return ""
        session = self._session(session_id)
        window = max(1, self.retrieval_context_window)
        query_text = " ".join(t for t in (_message_text(m) for m in messages[-window:]) if t)
        if not query_text:
            return ""
        embedding = await self.embed_model.aget_query_embedding(query_text)
        query = VectorStoreQuery(
            query_embedding=embedding, similarity_top_k=self.similarity_top_k, filters=self._session_filters(session)
        )
        result = await self.vector_store.aquery(query)
        return "\n\n".join(node.get_content() for node in result.nodes or [])

    @override
    async def aput(
        self, messages: List[ChatMessage], from_short_term_memory: bool = False, session_id: Optional[str] = None
    ) -> None:
        """Store ``messages`` for ``session_id`` (the base class would write the session
        into each message; this block never mutates them)."""
        if from_short_term_memory and not self.accept_short_term_memory:
            return
        await self._aput(messages, session_id=session_id)

    @override
    async def _aput(self, messages: List[ChatMessage], session_id: Optional[str] = None) -> None:
        lines = [f"{m.role.value}: {text}" for m in messages or [] if (text := _message_text(m))]
        if not lines:
            return
        session = self._session(session_id, messages)
        text = "\n".join(lines)
        embedding = list(await self.embed_model.aget_text_embedding(text))
        async with self._lock:  # positions are assigned one put at a time
            position = len(await asyncio.to_thread(self._session_records, session))
            digest = hashlib.sha256(_canonical([session, position, text]).encode("utf-8")).hexdigest()
            node = TextNode(
                id_=f"mem-{digest[:32]}",
                text=text,
                metadata={self.session_key: session, POSITION_KEY: position},
                excluded_embed_metadata_keys=[self.session_key, POSITION_KEY],
                excluded_llm_metadata_keys=[self.session_key, POSITION_KEY],
            )
            rid, rtext, meta = node_to_record(node)
            meta[INPUT_EMBEDDING_KEY] = _encode_embedding(embedding)
            await asyncio.to_thread(
                self.vector_store.client.upsert, [embedding], ids=[rid], texts=[rtext], metadatas=[meta]
            )

    # ------------------------------------------------------------------ snapshots
    async def asnapshot(self, session_id: Optional[str] = None, memory: Any = None) -> SessionSnapshot:
        """Capture one session: its memories and, given ``memory``, its chat history.

        ``session_id`` defaults to ``memory.session_id``, then ``default_session_id``.
        """
        if session_id is None and memory is not None:
            session_id = memory.session_id
        session = self._session(session_id)
        async with self._lock:
            records = await asyncio.to_thread(self._session_records, session)
        snap_records = tuple({"id": r.id, "text": r.text, "metadata": r.metadata} for r in records)
        active = archived = None
        if memory is not None:
            store = memory.sql_store
            active = tuple(m.model_dump(mode="json") for m in await store.get_messages(session, status=MessageStatus.ACTIVE))
            archived = tuple(
                m.model_dump(mode="json") for m in await store.get_messages(session, status=MessageStatus.ARCHIVED)
            )
        return SessionSnapshot(session, snap_records, active, archived)

    async def arestore(self, snapshot: SessionSnapshot, memory: Any = None) -> None:
        """Bring ``snapshot.session_id`` back to the snapshot; other sessions are untouched.

        The session's records become exactly the snapshot's (exact input embeddings) in
        ONE atomic core event (``ValoriStore.write``: stale records deleted, snapshot
        records upserted), so a crash never leaves the session half-restored. Given
        ``memory`` and a snapshot with chat history, that session's chat history is
        replaced (archived messages first, then active ones, in their original order).
        """
        session = snapshot.session_id
        for rec in snapshot.records:
            if rec["metadata"].get(self.session_key) != session or INPUT_EMBEDDING_KEY not in rec["metadata"]:
                raise InputError(f"snapshot record {rec['id']!r} does not belong to session {session!r} of this block")
        core = self.vector_store.client
        async with self._lock:
            keep = {r["id"] for r in snapshot.records}
            current = await asyncio.to_thread(self._session_records, session)
            stale = [r.id for r in current if r.id not in keep]
            if snapshot.records:
                vectors = np.stack([_decode_embedding(r["metadata"][INPUT_EMBEDDING_KEY]) for r in snapshot.records])
                await asyncio.to_thread(
                    core.write,
                    delete=stale,
                    vectors=vectors,
                    ids=[r["id"] for r in snapshot.records],
                    texts=[r["text"] for r in snapshot.records],
                    metadatas=[r["metadata"] for r in snapshot.records],
                )
            elif stale:
                await asyncio.to_thread(core.delete, stale)
        if memory is not None and snapshot.chat_active is not None:
            store = memory.sql_store
            await store.delete_messages(session)
            archived = [ChatMessage.model_validate(m) for m in snapshot.chat_archived or ()]
            active = [ChatMessage.model_validate(m) for m in snapshot.chat_active]
            if archived:
                await store.add_messages(session, archived, status=MessageStatus.ARCHIVED)
            if active:
                await store.add_messages(session, active, status=MessageStatus.ACTIVE)
