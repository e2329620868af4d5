"""ValoriMemoryStore behaviour: layout, order, filters, batches, persistence, differences
from InMemoryStore that are deliberate (each one shown against InMemoryStore itself)."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langgraph.store.base import GetOp, PutOp, SearchOp
from langgraph.store.memory import InMemoryStore
from lg_fixtures import Clock, LCHashing

from valori_store import ValoriStore
from valori_store.embedder import HashingEmbedder
from valori_store.errors import DimensionError, FilterError, IdError, InputError, MetadataError
from valori_store.langgraph import ValoriMemoryStore
from valori_store.langgraph import _ids as ids
from valori_store.receipts import record_receipts


def _store(**kw: Any) -> ValoriMemoryStore:
    index = kw.pop("index", {"dims": 32, "embed": HashingEmbedder(32), "fields": ["text"]})
    return ValoriMemoryStore(index=index, **kw)


def test_import_valori_store_does_not_import_langgraph() -> None:
    code = "import sys, valori_store; print(any(m.split('.')[0] == 'langgraph' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---------------------------------------------------------------------- record ids
labels = st.text(alphabet=st.characters(blacklist_characters=".\x00", blacklist_categories=("Cs",)), min_size=1, max_size=4)
namespaces = st.lists(labels, min_size=1, max_size=3).map(tuple)
keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4)


@given(a=st.tuples(namespaces, keys), b=st.tuples(namespaces, keys))
def test_item_ids_sort_like_namespace_key_tuples(a: tuple, b: tuple) -> None:
    ia, ib = ids.item_id(*a).encode(), ids.item_id(*b).encode()
    assert (ia == ib) == (a == b)
    assert (ia < ib) == (a < b)
    va, vb = ids.vector_id(*a, 3).encode(), ids.vector_id(*b, 0).encode()
    if a != b:
        assert (va < vb) == (a < b)


def test_overlong_namespace_is_a_clear_error() -> None:
    with pytest.raises(IdError, match="limit"):
        _store().put(("n",), "k" * 5000, {"text": "x"})


# ---------------------------------------------------------------------- basics
def test_put_get_delete_and_timestamps_from_the_clock() -> None:
    clock = Clock()
    s = _store(clock=clock)
    s.put(("a", "b"), "k", {"text": "hello", "n": 1.0, "nested": {"x": [1, 2]}})
    first = clock()
    clock.tick(5)
    s.put(("a", "b"), "k", {"n": 2, "text": "hello again"})
    item = s.get(("a", "b"), "k")
    assert item.value == {"n": 2, "text": "hello again"} and list(item.value) == ["n", "text"]  # caller's key order
    assert item.created_at == first and item.updated_at == first + timedelta(seconds=5)
    assert type(s.get(("a", "b"), "k").value["n"]) is int
    s.delete(("a", "b"), "k")
    assert s.get(("a", "b"), "k") is None
    assert s.list_namespaces() == []
    assert len(s.store) == 0  # nothing left behind: no item, vector or namespace record


def test_values_must_be_json() -> None:
    s = _store()
    with pytest.raises(MetadataError, match="JSON"):
        s.put(("a",), "k", {"when": (1, 2)})
    with pytest.raises(MetadataError):
        s.put(("a",), "k", {"x": float("nan")})
    assert len(s.store) == 0


def test_several_fields_score_by_the_best_one() -> None:
    s = _store(index={"dims": 32, "embed": HashingEmbedder(32), "fields": ["title", "notes[*]"]})
    s.put(("d",), "x", {"title": "tiger stripes", "notes": ["piano lessons", "river walk"]})
    s.put(("d",), "y", {"title": "river walk", "notes": []})
    res = s.search(("d",), query="river walk")
    assert [r.key for r in res] == ["x", "y"]  # tie at the exact top score: key order
    assert res[0].score == res[1].score
    assert sorted(r.metadata["lg:path"] for r in s.store.get([ids.vector_id(("d",), "x", i) for i in range(3)])) == \
        ["notes[*].0", "notes[*].1", "title"]


def test_search_without_query_orders_by_namespace_then_key() -> None:
    s = _store()
    for ns, key in [(("b",), "1"), (("a", "z"), "2"), (("a",), "9"), (("a",), "10")]:
        s.put(ns, key, {"text": key})
    assert [(r.namespace, r.key) for r in s.search(())] == [
        (("a",), "10"), (("a",), "9"), (("a", "z"), "2"), (("b",), "1")]
    assert [r.key for r in s.search(("a",), limit=2, offset=1)] == ["9", "2"]


def test_unindexed_items_follow_scored_ones_and_pages_do_not_repeat_them() -> None:
    s = _store()
    s.put(("n",), "s1", {"text": "apple pie"})
    s.put(("n",), "u1", {"text": "apple tart"}, index=False)
    s.put(("n",), "u2", {"other": 1})
    pages = [s.search(("n",), query="apple", limit=1, offset=o) for o in range(4)]
    assert [[r.key for r in p] for p in pages] == [["s1"], ["u1"], ["u2"], []]
    assert pages[0][0].score is not None and pages[1][0].score is None
    # InMemoryStore repeats the first unscored item on every later page
    ref = InMemoryStore(index={"dims": 32, "embed": LCHashing(32), "fields": ["text"]})
    ref.put(("n",), "s1", {"text": "apple pie"})
    ref.put(("n",), "u1", {"text": "apple tart"}, index=False)
    ref.put(("n",), "u2", {"other": 1})
    assert [r.key for r in ref.search(("n",), query="apple", limit=1, offset=2)] == ["u1"]


def test_filters_run_inside_the_core_search_before_top_k() -> None:
    s = _store()
    for i in range(20):
        s.put(("f",), f"k{i:02d}", {"text": "same words", "i": i, "even": i % 2 == 0})
    res = s.search(("f",), query="same words", filter={"even": False, "i": {"$gte": 10}}, limit=3)
    assert [r.value["i"] for r in res] == [11, 13, 15]  # 3 results although most rows fail the filter


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"a": None}, ["missing", "null"]),
        ({"a": {"$ne": None}}, ["dict", "int", "list", "str", "true"]),
        ({"a": {"$ne": 1}}, ["dict", "list", "missing", "null", "str", "true"]),
        ({"a": {"b": 1}}, ["dict"]),
        ({"a": {"c": None}}, ["dict"]),
        ({"a": {}}, ["dict"]),
        ({"a": [1, 2]}, ["list"]),
        ({"a": {"$gt": 0}}, ["int"]),
        ({"a": "s"}, ["str"]),
        ({"a": {"$eq": {"b": 1}}}, []),  # $eq on a dict is exact, not partial
    ],
)
def test_filter_semantics_match_in_memory_store(flt: dict, expected: list[str]) -> None:
    values = {"missing": {}, "null": {"a": None}, "int": {"a": 1}, "str": {"a": "s"}, "true": {"a": True},
              "list": {"a": [1, 2]}, "dict": {"a": {"b": 1, "d": 2}}}
    s = ValoriMemoryStore()
    ref = InMemoryStore()
    for key, value in values.items():
        s.put(("v",), key, value)
        ref.put(("v",), key, value)
    ours = sorted(r.key for r in s.search(("v",), filter=flt))
    assert ours == expected
    if flt != {"a": {"$gt": 0}} and flt != {"a": {"$ne": 1}}:  # those two: see the next test
        assert sorted(r.key for r in ref.search(("v",), filter=flt)) == expected


def test_deliberate_filter_differences() -> None:
    s, ref = ValoriMemoryStore(), InMemoryStore()
    for store in (s, ref):
        store.put(("v",), "true", {"a": True})
        store.put(("v",), "one", {"a": 1})
        store.put(("v",), "text", {"a": "3"})
    # equality is type-strict: True is not 1
    assert [r.key for r in s.search(("v",), filter={"a": 1})] == ["one"]
    assert sorted(r.key for r in ref.search(("v",), filter={"a": 1})) == ["one", "true"]
    # ordering compares numbers with numbers; other values never match (InMemoryStore converts
    # with float(), so "3" matches and a missing value raises)
    assert [r.key for r in s.search(("v",), filter={"a": {"$gt": 0}})] == ["one"]
    assert sorted(r.key for r in ref.search(("v",), filter={"a": {"$gt": 0}})) == ["one", "text", "true"]
    with pytest.raises(TypeError):
        ref.search(("v",), filter={"zz": {"$gt": 0}})
    assert s.search(("v",), filter={"zz": {"$gt": 0}}) == []


def test_bad_filters_and_pages_are_clear_errors() -> None:
    s = _store()
    with pytest.raises(FilterError, match="unsupported operator"):
        s.search(("a",), filter={"n": {"$regex": "x"}})
    with pytest.raises(InputError, match="limit"):
        s.search(("a",), limit=-1)


# ---------------------------------------------------------------------- batches
def test_identical_texts_in_one_batch_are_embedded_once() -> None:
    emb = LCHashing(32)
    s = _store(index={"dims": 32, "embed": emb, "fields": ["text", "title"]})
    s.batch([
        PutOp(("a",), "1", {"text": "same", "title": "same"}),
        PutOp(("a",), "2", {"text": "same"}),
        PutOp(("a",), "1", {"text": "same", "title": "other"}),  # last put for a key wins
    ])
    assert emb.documents == ["same", "other"]
    assert s.get(("a",), "1").value == {"text": "same", "title": "other"}
    # InMemoryStore cannot do this batch
    ref = InMemoryStore(index={"dims": 32, "embed": LCHashing(32), "fields": ["text", "title"]})
    with pytest.raises(ValueError, match="does not match"):
        ref.put(("a",), "1", {"text": "same", "title": "same"})


def test_reads_in_a_batch_see_the_state_before_its_writes() -> None:
    s = _store()
    s.put(("a",), "k", {"text": "old"})
    got, _, found = s.batch([GetOp(("a",), "k"), PutOp(("a",), "k", {"text": "new"}), SearchOp(("a",))])
    assert got.value == {"text": "old"} and found[0].value == {"text": "old"}
    assert s.get(("a",), "k").value == {"text": "new"}


def test_a_failing_batch_changes_nothing() -> None:
    calls = []

    def bad_embed(texts: list[str]) -> list[list[float]]:
        calls.append(texts)
        return [[0.0] * 8 for _ in texts]  # zero vectors: cosine cannot store them

    s = ValoriMemoryStore(index={"dims": 8, "embed": bad_embed, "fields": ["text"]})
    s.put(("a",), "keep", {"other": 1})
    before = s.state_hash()
    with pytest.raises(InputError):
        s.batch([PutOp(("a",), "keep", None), PutOp(("a",), "new", {"text": "x"})])
    assert calls and s.state_hash() == before and s.get(("a",), "keep") is not None


def test_put_index_false_and_field_lists() -> None:
    s = _store(index={"dims": 32, "embed": HashingEmbedder(32)})  # default fields: the whole value ("$")
    s.put(("a",), "whole", {"text": "river", "n": 1})
    s.put(("a",), "none", {"text": "river"}, index=False)
    s.put(("a",), "n", {"text": "river", "n": "tiger"}, index=["n"])
    assert s.store.get([ids.vector_id(("a",), "whole", 0)])[0].text == '{"n": 1, "text": "river"}'
    assert s.get(("a",), "none") is not None
    assert ids.vector_id(("a",), "none", 0) not in s.store
    assert s.store.get([ids.vector_id(("a",), "n", 0)])[0].text == "tiger"


def test_updating_an_item_replaces_all_its_vectors() -> None:
    """InMemoryStore keeps vectors of fields a later put no longer indexes; we do not."""
    s = _store()
    ref = InMemoryStore(index={"dims": 32, "embed": LCHashing(32), "fields": ["text"]})
    for store in (s, ref):
        store.put(("a",), "k", {"text": "tiger stripes"})
        store.put(("a",), "k", {"note": "no text any more"})
    assert s.search(("a",), query="tiger stripes")[0].score is None
    assert ref.search(("a",), query="tiger stripes")[0].score > 0.99


async def test_async_embedder_function() -> None:
    inner = HashingEmbedder(16)

    async def aembed(texts: list[str]) -> list[list[float]]:
        return inner.embed_documents(list(texts))

    s = ValoriMemoryStore(index={"dims": 16, "embed": aembed, "fields": ["text"]})
    await s.aput(("a",), "k", {"text": "async memory"})
    res = await s.asearch(("a",), query="async memory")
    assert res[0].key == "k" and res[0].score == pytest.approx(1.0, abs=1e-4)
    assert await s.alist_namespaces() == [("a",)]


# ---------------------------------------------------------------------- namespaces
def test_list_namespaces_prefix_suffix_wildcards_depth() -> None:
    s = ValoriMemoryStore()
    for ns in [("a", "b", "c"), ("a", "b", "d", "e"), ("a", "b", "d", "i"), ("a", "b", "f"), ("a", "c", "f")]:
        s.put(ns, "k", {"x": 1})
    assert s.list_namespaces(prefix=("a", "b"), max_depth=3) == [("a", "b", "c"), ("a", "b", "d"), ("a", "b", "f")]
    assert s.list_namespaces(suffix=("f",)) == [("a", "b", "f"), ("a", "c", "f")]
    assert s.list_namespaces(prefix=("a", "*", "f")) == [("a", "b", "f"), ("a", "c", "f")]
    assert s.list_namespaces(prefix=("a",), suffix=("*", "e")) == [("a", "b", "d", "e")]
    assert s.list_namespaces(limit=2, offset=1) == [("a", "b", "d", "e"), ("a", "b", "d", "i")]
    s.put(("a", "c", "f"), "k2", {"x": 2})
    s.delete(("a", "c", "f"), "k")
    assert ("a", "c", "f") in s.list_namespaces()  # one item left
    s.delete(("a", "c", "f"), "k2")
    assert ("a", "c", "f") not in s.list_namespaces()


# ---------------------------------------------------------------------- persistence and state
def test_durable_directory_keeps_everything(tmp_path: Any) -> None:
    clock = Clock()
    with _store(path=tmp_path / "mem", clock=clock) as s:
        s.put(("u",), "k", {"text": "persisted memory", "n": 3})
        before = [(r.key, r.score) for r in s.search(("u",), query="memory")]
        h = s.state_hash()
    with _store(path=tmp_path / "mem") as again:
        assert again.state_hash() == h
        assert again.get(("u",), "k").created_at == clock()
        assert [(r.key, r.score) for r in again.search(("u",), query="memory")] == before


def test_wrap_an_existing_core_store_and_restore_a_checkpoint() -> None:
    core = ValoriStore(32)
    s = _store(store=core, clock=Clock())
    s.put(("u",), "a", {"text": "first"})
    cp = s.checkpoint("one")
    s.put(("u",), "b", {"text": "second"})
    s.delete(("u",), "a")
    s.restore(cp)
    assert s.state_hash() == cp.state_hash
    assert [r.key for r in s.search(("u",))] == ["a"]
    with pytest.raises(InputError, match="dims"):
        ValoriMemoryStore(index={"dims": 8, "embed": HashingEmbedder(8)}, store=core)


def test_two_stores_fed_the_same_operations_have_the_same_state() -> None:
    def run() -> tuple[str, list]:
        s = _store(clock=Clock())
        s.put(("u", "1"), "a", {"text": "alpha beta"})
        s.batch([PutOp(("u", "2"), "b", {"text": "beta gamma"}), PutOp(("u", "1"), "c", {"text": "alpha"})])
        s.delete(("u", "1"), "a")
        return s.state_hash(), [(r.key, r.score) for r in s.search(("u",), query="alpha beta")]

    assert run() == run()


# ---------------------------------------------------------------------- async batches, dims
class _ThreadSpy(ValoriStore):
    """A core store noting the thread of every search and write."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.threads: list[int] = []

    def search(self, *args: Any, **kw: Any) -> Any:
        self.threads.append(threading.get_ident())
        return super().search(*args, **kw)

    def write(self, *args: Any, **kw: Any) -> Any:
        self.threads.append(threading.get_ident())
        return super().write(*args, **kw)


async def test_abatch_runs_the_core_off_the_event_loop_and_keeps_receipts() -> None:
    core = _ThreadSpy(32)
    s = _store(store=core, clock=Clock())
    loop_thread = threading.get_ident()
    await s.abatch([PutOp(("u",), "a", {"text": "river bank"}), PutOp(("u",), "b", {"text": "mountain top"})])
    with record_receipts(core) as receipts:
        [found] = await s.abatch([SearchOp(("u",), query="river", limit=1)])
    assert core.threads and loop_thread not in core.threads
    assert [it.key for it in found] == ["a"]
    # the search made in the worker thread was recorded in the caller's context
    assert len(receipts) == 1 and receipts[0].state_hash == s.state_hash()
    top_id, raw = receipts[0].results[0]
    assert top_id == ids.vector_id(("u",), "a", 0) and int(raw) / 2**32 == found[0].score
    assert await s.aget(("u",), "b") is not None  # other async entry points go through abatch too


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_embeddings_of_the_wrong_length_are_rejected_before_writing(asynchronous: bool) -> None:
    s = ValoriMemoryStore(index={"dims": 16, "embed": HashingEmbedder(8), "fields": ["text"]})
    s.put(("a",), "plain", {"n": 1}, index=False)
    before = s.state_hash()
    for op in (PutOp(("a",), "k", {"text": "some words"}), SearchOp(("a",), query="words")):
        with pytest.raises(DimensionError, match=r"8.*16|16.*8") as err:
            await s.abatch([op]) if asynchronous else s.batch([op])
        assert "dims" in str(err.value)
    assert s.state_hash() == before
