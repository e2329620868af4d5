"""Runnable offline example: LlamaIndex on valori-store.

    python integrations/llamaindex/example.py [WORKDIR]

Builds a VectorStoreIndex over the bundled 60-document corpus in a durable valori-store
directory, queries it (exact ties, filters, MMR), persists it through StorageContext,
reloads it and checks that retrievals and the state hash are identical, then shows
session memory snapshot/restore. No network, no model download: embeddings come from the
deterministic ValoriHashingEmbedding.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.llms import ChatMessage
from llama_index.core.memory import Memory
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from valori_store.corpus import load_corpus
from valori_store.llamaindex import ValoriHashingEmbedding, ValoriMemoryBlock, ValoriVectorStore

DIM = 384
EMBED = ValoriHashingEmbedding(dim=DIM)


def _show(title: str, hits: list) -> list[tuple[str, float]]:
    print(f"\n{title}")
    for h in hits:
        print(f"  {h.score:+.6f}  {h.node.node_id:<12} {h.node.get_content()[:60]}")
    return [(h.node.node_id, h.score) for h in hits]


def build(store: ValoriVectorStore) -> VectorStoreIndex:
    documents = [Document(id_=d.id, text=d.text, metadata=d.metadata) for d in load_corpus()]
    splitter = SentenceSplitter(chunk_size=256, chunk_overlap=0, id_func=lambda i, doc: f"{doc.doc_id}#{i}")
    return VectorStoreIndex.from_documents(
        documents, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=EMBED,
        transformations=[splitter],
    )


def queries(index: VectorStoreIndex) -> list[list[tuple[str, float]]]:
    recent_astronomy = MetadataFilters(filters=[
        MetadataFilter(key="topic", value="astronomy"),
        MetadataFilter(key="year", operator=FilterOperator.GTE, value=2020),
    ])
    duplicate = next(d.text for d in load_corpus() if d.id == "doc-016")
    return [
        _show("exact tie: doc-016 and doc-024 hold the same text; ties go to the smaller id",
              index.as_retriever(similarity_top_k=2).retrieve(duplicate)),
        _show("top 3: 'solar eclipse and the moon'", index.as_retriever(similarity_top_k=3).retrieve(
            "solar eclipse and the moon")),
        _show("astronomy since 2020: 'planets'", index.as_retriever(similarity_top_k=3, filters=recent_astronomy)
              .retrieve("planets")),
        _show("MMR (lambda 0.3): 'bread dough'", index.as_retriever(
            similarity_top_k=3, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.3})
            .retrieve("bread dough")),
    ]


async def memory_demo(store: ValoriVectorStore) -> None:
    block = ValoriMemoryBlock(vector_store=store, embed_model=EMBED, similarity_top_k=1)
    memory = Memory.from_defaults(session_id="alice", token_limit=40, chat_history_token_ratio=0.5,
                                  token_flush_size=10, memory_blocks=[block], tokenizer_fn=str.split)
    turns = [
        ("my telescope is a 200mm dobsonian on a simple wooden mount, remember it", "noted"),
        ("I observe from a dark site high in the Alps when the moon is new", "sounds great"),
        ("which eyepiece should I use for planets tonight?", "a short focal length one"),
    ]
    for user, assistant in turns:
        await memory.aput(ChatMessage(role="user", content=user))
        await memory.aput(ChatMessage(role="assistant", content=assistant))
    before = await memory.aget()
    snapshot = await block.asnapshot(memory=memory)
    await memory.aput(ChatMessage(role="user", content="actually I sold the telescope and bought binoculars"))
    await block.arestore(snapshot, memory=memory)
    after = await memory.aget()
    same = [m.model_dump() for m in before] == [m.model_dump() for m in after]
    print(f"\nsession memory: {len(snapshot.records)} long-term record(s); restored context identical: {same}")
    if not same or not snapshot.records:
        raise SystemExit("session restore did not reproduce the context")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(argv[0]) if argv else Path(tmp)
        store = ValoriVectorStore(path=work / "valori-db", dim=DIM)
        index = build(store)
        print(f"{len(store.client)} nodes, state hash {store.state_hash()[:16]}...")
        first = queries(index)

        index.storage_context.persist(persist_dir=str(work / "storage"))
        reloaded_store = ValoriVectorStore.from_persist_dir(str(work / "storage"))
        reloaded = load_index_from_storage(
            StorageContext.from_defaults(vector_store=reloaded_store, persist_dir=str(work / "storage")),
            embed_model=EMBED,
        )
        second = queries(reloaded)
        identical = first == second and reloaded_store.state_hash() == store.state_hash()
        print(f"\nreloaded from {work / 'storage'}: results and state hash identical: {identical}")
        if not identical:
            return 1
        asyncio.run(memory_demo(ValoriVectorStore(dim=DIM)))
        store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
