"""The behaviours of llama-index-core's ``tests/vector_stores/test_simple.py`` (the de facto
spec for LlamaIndex vector stores), ported to ValoriVectorStore. Each body runs through the
sync and the async API (``call`` fixture). Expected ids are worked out by hand from the
three fixture nodes below, not read back from the store.

Fixture geometry (cosine): A=[1,0], B=[0,1], C=[1,1]. For the query [1,1]: C scores 1,
A and B score 1/sqrt(2) each: an exact tie, broken by id
(UTF-8 bytes: "452D..." (C) < "7D9C..." (B) < "AF3B..." (A)), so B comes before A.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from llama_index.core import MockEmbedding, StorageContext, VectorStoreIndex
from llama_index.core.schema import Document, NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.core.vector_stores.types import (
    ExactMatchFilter,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

from valori_store.llamaindex import ValoriVectorStore

A = "AF3BE6C4-5F43-4D74-B075-6B0E07900DE8"  # weight 1, rank a
B = "7D9CD555-846C-445C-A9DD-F8924A01411D"  # weight 2, rank c
C = "452D24AB-F185-414C-A352-590B4B9EE51B"  # weight 3, rank c


def _nodes() -> list[TextNode]:
    spec = [
        (A, [1.0, 0.0], "test-0", 1.0, "a", ["medium", "high"], "6FTR78Yun"),
        (B, [0.0, 1.0], "test-1", 2.0, "c", ["medium"], "6FTR78Ygl"),
        (C, [1.0, 1.0], "test-2", 3.0, "c", ["low", "medium", "high"], "6FTR78Ztl"),
    ]
    return [
        TextNode(
            text="lorem ipsum",
            id_=node_id,
            embedding=emb,
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=src)},
            metadata={"weight": w, "rank": rank, "quality": quality, "identifier": ident},
        )
        for node_id, emb, src, w, rank, quality, ident in spec
    ]


async def _store(call) -> ValoriVectorStore:
    store = ValoriVectorStore(dim=2)
    assert await call(store, "add", _nodes()) == [A, B, C]
    return store


async def _ids(call, store: ValoriVectorStore, filters: MetadataFilters | None = None, k: int = 3, **q) -> list[str]:
    result = await call(store, "query", VectorStoreQuery(query_embedding=[1.0, 1.0], similarity_top_k=k, filters=filters, **q))
    assert len(result.ids) == len(result.nodes) == len(result.similarities)
    assert [n.node_id for n in result.nodes] == result.ids
    return result.ids


def _one(key: str, op: FilterOperator, value) -> MetadataFilters:
    return MetadataFilters(filters=[MetadataFilter(key=key, operator=op, value=value)])


async def test_query_without_filters_returns_all_rows_sorted_by_similarity(call) -> None:
    store = await _store(call)
    assert await _ids(call, store) == [C, B, A]


async def test_query_with_filters_returns_multiple_matches(call) -> None:
    store = await _store(call)
    assert await _ids(call, store, MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")])) == [C, B]


async def test_query_with_filter_applies_top_k(call) -> None:
    store = await _store(call)
    assert await _ids(call, store, MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")]), k=1) == [C]


async def test_query_with_filter_applies_node_id_filter(call) -> None:
    store = await _store(call)
    f = MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c")])
    assert await _ids(call, store, f, node_ids=[C]) == [C]
    assert await _ids(call, store, f, node_ids=[A]) == []  # restrictions are ANDed


async def test_query_with_exact_filters_returns_single_match(call) -> None:
    store = await _store(call)
    f = MetadataFilters(filters=[ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=2.0)])
    assert await _ids(call, store, f, k=1) == [B]


async def test_query_with_contradictive_filter_returns_no_matches(call) -> None:
    store = await _store(call)
    f = MetadataFilters(filters=[ExactMatchFilter(key="weight", value=2), ExactMatchFilter(key="weight", value=3)])
    assert await _ids(call, store, f) == []


async def test_query_with_filter_on_unknown_field_returns_no_matches(call) -> None:
    store = await _store(call)
    assert await _ids(call, store, MetadataFilters(filters=[ExactMatchFilter(key="unknown_field", value="c")])) == []


async def test_delete_removes_document_from_query_results(call) -> None:
    store = await _store(call)
    await call(store, "delete", "test-1")
    assert await _ids(call, store, k=2) == [C, A]


async def test_query_with_filters_with_filter_condition(call) -> None:
    store = await _store(call)
    leaves = [ExactMatchFilter(key="rank", value="c"), ExactMatchFilter(key="weight", value=1.0)]
    assert await _ids(call, store, MetadataFilters(filters=leaves, condition=FilterCondition.OR)) == [C, B, A]
    assert await _ids(call, store, MetadataFilters(filters=leaves, condition=FilterCondition.AND)) == []


async def test_query_with_not_filter_returns_matches(call) -> None:
    store = await _store(call)
    f = MetadataFilters(filters=[MetadataFilter(key="rank", value="a")], condition=FilterCondition.NOT)
    assert await _ids(call, store, f) == [C, B]


@pytest.mark.parametrize(
    ("key", "op", "value", "expected"),
    [
        ("weight", FilterOperator.EQ, 1.0, [A]),
        ("weight", FilterOperator.NE, 1.0, [C, B]),
        ("weight", FilterOperator.GT, 1.5, [C, B]),
        ("weight", FilterOperator.GTE, 1.0, [C, B, A]),
        ("weight", FilterOperator.LT, 1.1, [A]),
        ("weight", FilterOperator.LTE, 1.0, [A]),
        ("rank", FilterOperator.IN, ["a", "c"], [C, B, A]),
        ("rank", FilterOperator.NIN, ["c"], [A]),
        ("quality", FilterOperator.CONTAINS, "high", [C, A]),
        ("identifier", FilterOperator.TEXT_MATCH, "6FTR78Y", [B, A]),
        ("identifier", FilterOperator.TEXT_MATCH_INSENSITIVE, "6ftr78y", [B, A]),
        ("quality", FilterOperator.ANY, ["high", "low"], [C, A]),
        ("quality", FilterOperator.ALL, ["medium", "high"], [C, A]),
        ("not_existed_key", FilterOperator.IS_EMPTY, None, [C, B, A]),
    ],
    ids=lambda v: v.name if isinstance(v, FilterOperator) else None,
)
async def test_query_with_operator_filter_returns_matches(call, key, op, value, expected) -> None:
    store = await _store(call)
    assert await _ids(call, store, _one(key, op, value)) == expected


async def test_clear(call) -> None:
    store = await _store(call)
    await call(store, "clear")
    assert await _ids(call, store) == []
    assert await call(store, "get_nodes") == []


async def test_delete_nodes(call) -> None:
    store = await _store(call)
    await call(store, "delete_nodes", [A, B])
    assert await _ids(call, store) == [C]


async def test_delete_nodes_with_filters_and_ids(call) -> None:
    store = await _store(call)
    await call(store, "delete_nodes", [A, B], filters=_one("rank", FilterOperator.EQ, "c"))
    assert await _ids(call, store) == [C, A]  # only B is both listed and rank c
    await call(store, "delete_nodes", [])  # an empty list deletes nothing
    assert await _ids(call, store) == [C, A]
    await call(store, "delete_nodes", filters=_one("weight", FilterOperator.GT, 2))
    assert await _ids(call, store) == [A]


async def test_get_nodes(call) -> None:
    store = await _store(call)
    every = await call(store, "get_nodes")
    assert [n.node_id for n in every] == sorted([A, B, C], key=lambda s: s.encode())  # id order
    assert [n.node_id for n in await call(store, "get_nodes", [A, C])] == [C, A]
    assert [n.node_id for n in await call(store, "get_nodes", filters=_one("rank", FilterOperator.EQ, "c"))] == [C, B]
    assert await call(store, "get_nodes", []) == []
    assert await call(store, "get_nodes", ["missing"]) == []


@pytest.fixture
def persist_dir(tmp_path: Path) -> str:
    """An index over one document persisted through StorageContext (as in test_simple.py)."""
    store = ValoriVectorStore(dim=1)
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex.from_documents(
        [Document(id_="1", text="1")], storage_context=ctx, embed_model=MockEmbedding(embed_dim=1)
    )
    index.storage_context.persist(str(tmp_path))
    return str(tmp_path)


def test_from_persist_dir(persist_dir: str) -> None:
    store = ValoriVectorStore.from_persist_dir(persist_dir=persist_dir)
    (node,) = store.get_nodes()
    assert node.text == "1" and node.ref_doc_id == "1"
