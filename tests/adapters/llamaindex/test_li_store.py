"""ValoriVectorStore unit tests: construction, query modes, orders, MMR, filter translation,
persistence and snapshot hooks. (Behaviour shared with SimpleVectorStore is in the
conformance suite under integrations/llamaindex/.)"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

pytest.importorskip("llama_index.core")

import fsspec  # noqa: E402
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode  # noqa: E402
from llama_index.core.vector_stores.types import (  # noqa: E402
    BasePydanticVectorStore,
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
    VectorStoreQueryMode,
)

from valori_store import ValoriStore  # noqa: E402
from valori_store.errors import CorruptFileError, InputError, NotFoundError  # noqa: E402
from valori_store.llamaindex import (
    UnsupportedFilterError,
    UnsupportedQueryModeError,
    ValoriVectorStore,
    query_filter,
    translate_filters,
)


def _node(i: int, emb: list[float], doc: str = "d0", **meta) -> TextNode:
    return TextNode(
        id_=f"n{i:02d}", text=f"text {i}", embedding=emb, metadata=meta,
        relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc)},
    )


@pytest.fixture
def store() -> ValoriVectorStore:
    s = ValoriVectorStore(dim=2)
    s.add([
        _node(3, [1.0, 0.0], "d1", g="x"), _node(1, [0.9, 0.1], "d1", g="y"), _node(2, [0.0, 1.0], "d2", g="x"),
        _node(0, [0.7, 0.7], "d2", g="y"), _node(4, [1.0, 0.05], "d3", g="x"),
    ])
    return s


# ---------------------------------------------------------------------- construction
def test_is_a_pydantic_vector_store_with_config_fields(store) -> None:
    assert isinstance(store, BasePydanticVectorStore)
    assert store.stores_text is True and ValoriVectorStore.class_name() == "ValoriVectorStore"
    assert isinstance(store.client, ValoriStore) and store.client.dim == 2
    d = store.to_dict()
    assert (d["dim"], d["metric"], d["path"], d["durability"], d["class_name"]) == (2, "cosine", None, None,
                                                                                  "ValoriVectorStore")


def test_construction_errors_and_wrapping(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="dim="):
        ValoriVectorStore()
    core = ValoriStore(3, "dot")
    wrapped = ValoriVectorStore(store=core)
    assert wrapped.client is core and (wrapped.dim, wrapped.metric) == (3, "dot")
    with pytest.raises(InputError):
        ValoriVectorStore(dim=4, store=core)
    with pytest.raises(InputError):
        ValoriVectorStore(store=core, path=tmp_path)
    durable = ValoriVectorStore(path=tmp_path / "s", dim=2, metric="l2", durability="batch")
    assert (durable.path, durable.metric, durable.durability) == (str(tmp_path / "s"), "l2", "batch")
    durable.close()


def test_add_without_embedding_changes_nothing(store) -> None:
    before = store.state_hash()
    with pytest.raises(InputError, match="n09"):
        store.add([_node(8, [1.0, 0.0]), TextNode(id_="n09", text="no vector")])
    assert store.state_hash() == before


# ---------------------------------------------------------------------- queries
def _q(**kw) -> VectorStoreQuery:
    kw.setdefault("query_embedding", [1.0, 0.0])
    kw.setdefault("similarity_top_k", 10)
    return VectorStoreQuery(**kw)


def test_default_query_is_the_core_search(store) -> None:
    res = store.query(_q(similarity_top_k=3))
    hits = store.client.search([1.0, 0.0], k=3)
    assert res.ids == [h.id for h in hits] and res.similarities == [h.score for h in hits]
    assert [n.text for n in res.nodes] == [h.text for h in hits]


@pytest.mark.parametrize("mode", [m for m in VectorStoreQueryMode if m not in ("default", "mmr")])
def test_unsupported_modes_raise(store, mode) -> None:
    with pytest.raises(UnsupportedQueryModeError, match="default and mmr") as info:
        store.query(_q(mode=mode))
    assert isinstance(info.value, ValueError)


def test_metadata_only_query_is_id_order_limited_to_top_k(store) -> None:
    res = store.query(VectorStoreQuery(query_embedding=None, similarity_top_k=3))
    assert res.ids == ["n00", "n01", "n02"] and res.similarities == [1.0, 1.0, 1.0]
    f = MetadataFilters(filters=[MetadataFilter(key="g", value="x")])
    res = store.query(VectorStoreQuery(similarity_top_k=10, filters=f, node_ids=["n04", "n02", "n01"]))
    assert res.ids == ["n02", "n04"]
    assert store.query(VectorStoreQuery(similarity_top_k=0)).ids == []


def test_empty_node_ids_and_doc_ids_restrict_nothing(store) -> None:
    everything = store.query(_q()).ids
    assert len(everything) == 5
    assert store.query(_q(node_ids=[])).ids == everything
    assert store.query(_q(doc_ids=[])).ids == everything
    assert store.query(_q(doc_ids=["d1", "d3"])).ids == [i for i in everything if i in {"n03", "n01", "n04"}]
    assert store.query(_q(doc_ids=["d2"], node_ids=["n00", "n03"])).ids == ["n00"]


def test_restrictions_apply_before_ranking(store) -> None:
    """k hits when k match, however far down the unfiltered ranking they are."""
    res = store.query(_q(similarity_top_k=2, node_ids=["n02", "n00", "n01"]))
    assert res.ids == ["n01", "n00"]  # n03 and n04 rank higher but are excluded


def test_mmr_equals_core_mmr_search(store) -> None:
    res = store.query(_q(similarity_top_k=3, mode="mmr", mmr_threshold=0.2))
    hits = store.client.mmr_search([1.0, 0.0], k=3, fetch_k=12, lambda_mult=0.2)
    assert res.ids == [h.id for h in hits] and res.similarities == [h.score for h in hits]


def test_mmr_threshold_from_query_then_kwargs_then_default(store) -> None:
    def ids(q_threshold=None, **kw):
        return store.query(_q(similarity_top_k=3, mode="mmr", mmr_threshold=q_threshold), **kw).ids

    def core(lam, fetch_k=12):
        return [h.id for h in store.client.mmr_search([1.0, 0.0], k=3, fetch_k=fetch_k, lambda_mult=lam)]

    assert core(0.0) != core(1.0)  # the threshold matters on this data
    assert ids(mmr_threshold=0.0) == core(0.0)
    assert ids(1.0, mmr_threshold=0.0) == core(1.0)  # the query's own threshold wins
    assert ids() == core(0.5)
    assert ids(1.0) == [h.id for h in store.client.search([1.0, 0.0], k=3)]  # pure relevance
    assert ids(0.0, mmr_prefetch_k=3) == core(0.0, fetch_k=3)
    assert ids(0.0, mmr_prefetch_factor=1.5) == core(0.0, fetch_k=5)
    with pytest.raises(InputError):
        ids(mmr_prefetch_factor=0.5)
    with pytest.raises(InputError):
        ids(2.0)


async def test_async_methods_run_off_the_event_loop(store, monkeypatch) -> None:
    seen: list[int] = []
    search = store.client.search

    def spy(*a, **kw):
        seen.append(threading.get_ident())
        return search(*a, **kw)

    monkeypatch.setattr(store.client, "search", spy)
    res = await store.aquery(_q(similarity_top_k=2))
    assert res.ids == store.query(_q(similarity_top_k=2)).ids
    assert seen[0] != threading.get_ident() and seen[1] == threading.get_ident()
    results = await asyncio.gather(*(store.aquery(_q(similarity_top_k=k)) for k in range(1, 5)))
    assert [r.ids for r in results] == [store.query(_q(similarity_top_k=k)).ids for k in range(1, 5)]


# ---------------------------------------------------------------------- translation
def _mf(*filters, condition=FilterCondition.AND) -> MetadataFilters:
    return MetadataFilters(filters=list(filters), condition=condition)


def _f(op: FilterOperator, value, key: str = "k") -> MetadataFilter:
    return MetadataFilter(key=key, operator=op, value=value)


@pytest.mark.parametrize(
    ("leaf", "expected"),
    [
        (_f(FilterOperator.EQ, 1), {"k": {"$eq": 1}}),
        (_f(FilterOperator.NE, "a"), {"$not": {"k": {"$eq": "a"}}}),
        (_f(FilterOperator.GT, 1.5), {"k": {"$gt": 1.5}}),
        (_f(FilterOperator.GTE, "b"), {"k": {"$gte": "b"}}),
        (_f(FilterOperator.LT, 0), {"k": {"$lt": 0}}),
        (_f(FilterOperator.LTE, 2), {"k": {"$lte": 2}}),
        (_f(FilterOperator.IN, ["a"]), {"k": {"$in": ["a"]}}),
        (_f(FilterOperator.NIN, [1, 2]), {"$not": {"k": {"$in": [1, 2]}}}),
        (_f(FilterOperator.ANY, ["a", "b"]), {"k": {"$any": ["a", "b"]}}),
        (_f(FilterOperator.ALL, ["a"]), {"k": {"$all": ["a"]}}),
        (_f(FilterOperator.CONTAINS, "x"), {"k": {"$contains": "x"}}),
        (_f(FilterOperator.TEXT_MATCH, "x"), {"k": {"$contains": "x", "$gte": ""}}),
        (_f(FilterOperator.TEXT_MATCH_INSENSITIVE, "X"), {"k": {"$icontains": "X"}}),
        (_f(FilterOperator.IS_EMPTY, None), {"k": {"$empty": True}}),
    ],
    ids=lambda v: v.operator.name if isinstance(v, MetadataFilter) else None,
)
def test_each_operator_translates(leaf, expected) -> None:
    assert translate_filters(_mf(leaf)) == expected


def test_conditions_nesting_and_query_restrictions() -> None:
    a, b = _f(FilterOperator.EQ, 1, "a"), _f(FilterOperator.EQ, 2, "b")
    assert translate_filters(None) == {} and translate_filters(_mf()) == {}
    assert translate_filters(_mf(a, b)) == {"$and": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}
    assert translate_filters(_mf(a, b, condition=FilterCondition.OR)) == {"$or": [{"a": {"$eq": 1}}, {"b": {"$eq": 2}}]}
    assert translate_filters(_mf(a, condition=FilterCondition.NOT)) == {"$not": {"a": {"$eq": 1}}}
    assert translate_filters(_mf(a, _mf(b, condition=FilterCondition.NOT), condition=FilterCondition.OR)) == {
        "$or": [{"a": {"$eq": 1}}, {"$not": {"b": {"$eq": 2}}}]}
    assert query_filter(_mf(a), node_ids=["x"], doc_ids=["d"]) == {
        "$and": [{"a": {"$eq": 1}}, {"ref_doc_id": {"$in": ["d"]}}], "$ids": ["x"]}
    assert query_filter(None, node_ids=[], doc_ids=[]) == {}
    with pytest.raises(UnsupportedFilterError):
        query_filter(None, node_ids="abc")
    with pytest.raises(UnsupportedFilterError, match="'\\$x'"):
        translate_filters(_mf(_f(FilterOperator.EQ, 1, "$x")))


def test_nan_operand_is_a_filter_error(store) -> None:
    with pytest.raises(ValueError):
        store.query(_q(filters=_mf(_f(FilterOperator.GT, float("nan"), "g"))))


# ---------------------------------------------------------------------- deletes
def test_delete_by_ref_doc_and_clear(store) -> None:
    store.delete("d2")
    assert [n.node_id for n in store.get_nodes()] == ["n01", "n03", "n04"]
    store.delete("no-such-doc")
    assert len(store.client) == 3
    with pytest.raises(InputError):
        store.delete(None)
    store.clear()
    assert store.get_nodes() == [] and len(store.client) == 0


def test_delete_nodes_without_arguments_deletes_everything(store) -> None:
    store.delete_nodes()  # as SimpleVectorStore does
    assert len(store.client) == 0


# ---------------------------------------------------------------------- persistence
def test_persist_local_is_a_verified_snapshot(store, tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "store.valori"
    store.persist(str(target))
    assert ValoriStore.load(target).to_bytes() == store.client.to_bytes()
    loaded = ValoriVectorStore.from_persist_path(str(target))
    assert loaded.state_hash() == store.state_hash()
    assert loaded.query(_q()).ids == store.query(_q()).ids
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    target.write_bytes(bytes(data))
    with pytest.raises(CorruptFileError):
        ValoriVectorStore.from_persist_path(str(target))


def test_persist_through_an_fsspec_filesystem(store) -> None:
    fs = fsspec.filesystem("memory")
    store.persist("/valori-test/sub/default__vector_store.valori", fs=fs)
    loaded = ValoriVectorStore.from_persist_dir("/valori-test/sub", fs=fs)
    assert loaded.state_hash() == store.state_hash()
    fs.rm("/valori-test", recursive=True)


def test_from_persist_dir_names_what_it_looked_for(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="default__vector_store.valori.*default__vector_store.json"):
        ValoriVectorStore.from_persist_dir(str(tmp_path))
    ValoriVectorStore(dim=2).persist(str(tmp_path / "ns__vector_store.json"))
    assert ValoriVectorStore.from_persist_dir(str(tmp_path), namespace="ns").dim == 2


def test_checkpoint_restore_and_history(store) -> None:
    before, ids_before = store.state_hash(), store.query(_q()).ids
    cp = store.checkpoint("before-delete")
    assert cp.state_hash == before and store.history() == [cp]
    store.delete("d1")
    assert store.state_hash() != before
    assert store.restore("before-delete") == cp
    assert store.state_hash() == before and store.query(_q()).ids == ids_before
