"""A VectorStoreIndex built with ``from_documents`` on ValoriVectorStore, round-tripped
through persistence: identical retrievals (ids, scores, texts) and state hash."""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import Document, StorageContext, VectorStoreIndex, load_index_from_storage
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

from valori_store import ValoriStore
from valori_store.llamaindex import ValoriHashingEmbedding, ValoriVectorStore

DIM = 64
QUERIES = ["deterministic vector search", "the cat sat on the mat", "fixed point integers"]

TEXTS = {
    "doc-a": "Deterministic vector search returns the same ids and scores on every machine. "
    "Integer arithmetic makes the sums exact, so the order never flips.",
    "doc-b": "The cat sat on the mat. The dog sat on the log. Cats and dogs are pets.",
    "doc-c": "Fixed point integers in Q16.16 store a real value times two to the sixteenth. "
    "Snapshots are canonical bytes with a trailing digest.",
}


def _documents() -> list[Document]:
    return [Document(id_=doc_id, text=text, metadata={"source": doc_id, "year": 2020 + i})
            for i, (doc_id, text) in enumerate(sorted(TEXTS.items()))]


def _splitter() -> SentenceSplitter:
    return SentenceSplitter(chunk_size=24, chunk_overlap=0, id_func=lambda i, doc: f"{doc.doc_id}#{i}")


def _build(store: ValoriVectorStore) -> VectorStoreIndex:
    ctx = StorageContext.from_defaults(vector_store=store)
    return VectorStoreIndex.from_documents(
        _documents(), storage_context=ctx, embed_model=ValoriHashingEmbedding(dim=DIM), transformations=[_splitter()]
    )


def _retrievals(index: VectorStoreIndex, **kwargs) -> list[list[tuple[str, float, str]]]:
    retriever = index.as_retriever(similarity_top_k=3, **kwargs)
    return [[(n.node.node_id, n.score, n.node.get_content()) for n in retriever.retrieve(q)] for q in QUERIES]


async def _aretrievals(index: VectorStoreIndex, **kwargs) -> list[list[tuple[str, float, str]]]:
    retriever = index.as_retriever(similarity_top_k=3, **kwargs)
    return [[(n.node.node_id, n.score, n.node.get_content()) for n in await retriever.aretrieve(q)] for q in QUERIES]


def _load(persist_dir: Path, store: ValoriVectorStore) -> VectorStoreIndex:
    ctx = StorageContext.from_defaults(vector_store=store, persist_dir=str(persist_dir))
    return load_index_from_storage(ctx, embed_model=ValoriHashingEmbedding(dim=DIM))


def test_index_answers_from_valori() -> None:
    store = ValoriVectorStore(dim=DIM)
    index = _build(store)
    assert len(store.client) > len(TEXTS)  # chunked into several nodes
    first = _retrievals(index)
    assert [hits[0][0].split("#")[0] for hits in first] == ["doc-a", "doc-b", "doc-c"]
    for hits in first:
        scores = [s for _, s, _ in hits]
        assert scores == sorted(scores, reverse=True)


def test_persist_and_reload_gives_identical_results_and_hash(tmp_path: Path) -> None:
    store = ValoriVectorStore(dim=DIM)
    index = _build(store)
    before = _retrievals(index)
    mmr_before = _retrievals(index, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.3})
    index.storage_context.persist(persist_dir=str(tmp_path))
    # StorageContext.persist handed our persist() its JSON-suffixed name: it holds our snapshot
    assert ValoriStore.load(tmp_path / "default__vector_store.json").state_hash() == store.state_hash()

    loaded_store = ValoriVectorStore.from_persist_dir(str(tmp_path))
    assert loaded_store.state_hash() == store.state_hash()
    loaded = _load(tmp_path, loaded_store)
    assert _retrievals(loaded) == before
    assert _retrievals(loaded, vector_store_query_mode="mmr", vector_store_kwargs={"mmr_threshold": 0.3}) == mmr_before


async def test_async_retrieval_equals_sync(tmp_path: Path) -> None:
    index = _build(ValoriVectorStore(dim=DIM))
    assert await _aretrievals(index) == _retrievals(index)


def test_rebuilding_gives_the_same_state_hash() -> None:
    """Same documents, same splitter ids, same embedding: bit-identical store."""
    a, b = ValoriVectorStore(dim=DIM), ValoriVectorStore(dim=DIM)
    _build(a)
    _build(b)
    assert a.state_hash() == b.state_hash()
    assert a.client.to_bytes() == b.client.to_bytes()


def test_own_snapshot_name_takes_precedence(tmp_path: Path) -> None:
    store = ValoriVectorStore(dim=DIM)
    _build(store)
    store.persist(str(tmp_path / "default__vector_store.valori"))
    ValoriVectorStore(dim=DIM).persist(str(tmp_path / "default__vector_store.json"))  # an empty decoy
    assert ValoriVectorStore.from_persist_dir(str(tmp_path)).state_hash() == store.state_hash()


def test_durable_store_reopens_with_identical_results(tmp_path: Path) -> None:
    store = ValoriVectorStore(path=tmp_path / "valori", dim=DIM)
    index = _build(store)
    before, digest = _retrievals(index), store.state_hash()
    index.storage_context.persist(persist_dir=str(tmp_path / "ctx"))
    store.close()
    reopened = ValoriVectorStore(path=tmp_path / "valori")
    assert (reopened.dim, reopened.metric, reopened.state_hash()) == (DIM, "cosine", digest)
    assert _retrievals(_load(tmp_path / "ctx", reopened)) == before
    reopened.close()


def test_filters_and_delete_ref_doc_through_the_index() -> None:
    store = ValoriVectorStore(dim=DIM)
    index = _build(store)
    only_b = MetadataFilters(filters=[MetadataFilter(key="source", value="doc-b")])
    hits = index.as_retriever(similarity_top_k=10, filters=only_b).retrieve(QUERIES[0])
    assert hits and {h.node.ref_doc_id for h in hits} == {"doc-b"}
    newer = MetadataFilters(filters=[MetadataFilter(key="year", operator=FilterOperator.GTE, value=2021)])
    assert {h.node.ref_doc_id for h in index.as_retriever(similarity_top_k=10, filters=newer).retrieve("x")} == {
        "doc-b", "doc-c"}
    index.delete_ref_doc("doc-a")
    assert {n.ref_doc_id for n in store.get_nodes()} == {"doc-b", "doc-c"}


def test_query_engine_runs_offline() -> None:
    from llama_index.core.llms import MockLLM

    index = _build(ValoriVectorStore(dim=DIM))
    response = index.as_query_engine(llm=MockLLM(), similarity_top_k=2).query(QUERIES[1])
    assert [n.node.ref_doc_id for n in response.source_nodes] == ["doc-b", "doc-b"]


@pytest.mark.parametrize("metric", ["dot", "l2"])
def test_other_metrics_round_trip(tmp_path: Path, metric: str) -> None:
    store = ValoriVectorStore(dim=DIM, metric=metric)
    index = _build(store)
    before = _retrievals(index)
    store.persist(str(tmp_path / "s.valori"))
    loaded = ValoriVectorStore.from_persist_path(str(tmp_path / "s.valori"))
    assert loaded.metric == metric and loaded.state_hash() == store.state_hash()
    index.storage_context.persist(persist_dir=str(tmp_path))
    assert _retrievals(_load(tmp_path, loaded)) == before
