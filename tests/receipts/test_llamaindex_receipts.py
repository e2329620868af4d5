"""LlamaIndex retrievals are receipted like any core search, and the receipts verify."""

from __future__ import annotations

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex  # noqa: E402
from llama_index.core.node_parser import SentenceSplitter  # noqa: E402
from llama_index.core.vector_stores import FilterOperator, MetadataFilter, MetadataFilters  # noqa: E402

from valori_store.llamaindex import ValoriHashingEmbedding, ValoriVectorStore  # noqa: E402
from valori_store.receipts import record_receipts, verify_receipts  # noqa: E402


def test_llamaindex_retrievals_are_receipted_and_verify() -> None:
    embed = ValoriHashingEmbedding(dim=128)
    vs = ValoriVectorStore(dim=128)
    docs = [Document(id_=f"d{i}", text=t, metadata={"n": i}) for i, t in enumerate(
        ["bread needs a hot oven", "pasta needs salted water", "tomatoes need sun", "stars are far away"])]
    splitter = SentenceSplitter(chunk_size=64, chunk_overlap=0, id_func=lambda i, doc: f"{doc.doc_id}#{i}")
    index = VectorStoreIndex.from_documents(docs, storage_context=StorageContext.from_defaults(vector_store=vs),
                                            embed_model=embed, transformations=[splitter])
    filters = MetadataFilters(filters=[MetadataFilter(key="n", value=1, operator=FilterOperator.GTE)])
    with record_receipts() as receipts:
        plain = index.as_retriever(similarity_top_k=2).retrieve("what needs an oven")
        filtered = index.as_retriever(similarity_top_k=2, filters=filters).retrieve("what needs sun")
    assert [r.ids for r in receipts] == [[n.node.node_id for n in plain], [n.node.node_id for n in filtered]]
    assert receipts[1].filter is not None and '"n"' in receipts[1].filter
    vs.client.upsert([[1.0] * 128], ids=["later"])  # the store moves on; receipts still verify
    assert [c.status for c in verify_receipts(vs.client, receipts)] == ["match", "match"]
