"""The memory's record layout: item records without a vector, namespaces derived from the
items, listings that are not searches (no receipts), ids that decode, and stores written
by valori-store 0.1 converging to this layout when written to."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from langgraph.store.base import PutOp
from lg_fixtures import Clock

from valori_store import IdError, ValoriStore
from valori_store.embedder import HashingEmbedder
from valori_store.langgraph import ValoriMemoryStore
from valori_store.langgraph import _ids as ids

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "v0_1" / "langgraph"

labels = st.text(alphabet=st.characters(blacklist_characters=".", blacklist_categories=("Cs",)), min_size=1, max_size=5)
namespaces = st.lists(labels, min_size=1, max_size=4).map(tuple)
keys = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=5)


def _memory(core: ValoriStore | None = None, dims: int = 16) -> ValoriMemoryStore:
    index = {"dims": dims, "embed": HashingEmbedder(dims), "fields": ["text"]}
    return ValoriMemoryStore(index=index, store=core, clock=Clock())


# ---------------------------------------------------------------------- ids
@given(ns=namespaces, key=keys, ordinal=st.integers(0, 20))
def test_ids_decode_to_their_namespace_and_key(ns: tuple[str, ...], key: str, ordinal: int) -> None:
    iid, vid = ids.item_id(ns, key), ids.vector_id(ns, key, ordinal)
    assert ids.decode_item(iid) == (ns, key, "i")
    assert ids.decode_item(vid) == (ns, key, f"v{ordinal}")
    assert ids.decode_namespace(ids.namespace_text(iid)) == ns == ids.decode_namespace(ids.namespace_text(vid))


@given(a=namespaces, b=namespaces, ka=keys, kb=keys)
def test_namespace_texts_compare_like_namespaces(a: tuple, b: tuple, ka: str, kb: str) -> None:
    ta, tb = ids.namespace_text(ids.item_id(a, ka)), ids.namespace_text(ids.item_id(b, kb))
    assert (ta == tb) == (a == b)
    assert (ta.encode() < tb.encode()) == (a < b)


def test_decoding_rejects_foreign_ids() -> None:
    for bad in ["plain-id", "\x00n\x00users\x00", "a\x00k", "a\x00k\x00"]:
        with pytest.raises(IdError):
            ids.decode_item(bad)


# ---------------------------------------------------------------------- no fake vectors
def test_item_records_carry_no_vector_and_vector_records_real_embeddings() -> None:
    emb = HashingEmbedder(16)
    m = _memory()
    m.put(("a", "b"), "k1", {"text": "river bank"})
    m.put(("a",), "k2", {"text": "no index"}, index=False)
    m.batch([PutOp(("c",), "k3", {"text": "tiger"}), PutOp(("a", "b"), "k1", {"text": "mountain"})])
    records = m.store.get(m.store.ids())
    kinds = {r.id: r.metadata["lg:kind"] for r in records}
    assert sorted(kinds.values()) == ["item", "item", "item", "vec", "vec"]  # no namespace records
    for r in records:
        if kinds[r.id] == "item":
            assert r.vector is None
        else:
            fresh = ValoriStore(16)
            fresh.upsert([emb.embed_documents([r.text])[0]], ids=["x"])
            assert r.vector.tolist() == fresh.get(["x"])[0].vector.tolist()


def test_namespaces_follow_the_items_through_deletes() -> None:
    m = _memory()
    m.put(("a",), "k", {"text": "one"})
    m.put(("a", "x\x01\x02", "c"), "k", {"text": "two"})  # labels with separator characters decode back
    m.put(("b",), "k1\x00", {"text": "three"})
    m.put(("b",), "k2", {"text": "four"})
    assert m.list_namespaces() == [("a",), ("a", "x\x01\x02", "c"), ("b",)]
    assert m.list_namespaces(suffix=("c",)) == [("a", "x\x01\x02", "c")]
    m.delete(("b",), "k1\x00")
    assert m.list_namespaces() == [("a",), ("a", "x\x01\x02", "c"), ("b",)]
    m.delete(("b",), "k2")  # its last item: the namespace is gone
    assert m.list_namespaces() == [("a",), ("a", "x\x01\x02", "c")]
    m.batch([PutOp(("a",), "k", None), PutOp(("a", "x\x01\x02", "c"), "k", None)])
    assert m.list_namespaces() == [] and len(m.store) == 0


# ---------------------------------------------------------------------- listings are not searches
def test_listings_in_a_session_turn_record_no_receipt() -> None:
    core = ValoriStore(16)
    m = _memory(core)
    m.put(("u",), "scored", {"text": "apple pie"})
    m.put(("u",), "plain", {"text": "apple tart"}, index=False)
    session = core.session("s")
    with session.turn() as got:
        assert [i.key for i in m.search(("u",))] == ["plain", "scored"]
        assert m.list_namespaces() == [("u",)]
        assert [i.key for i in m.search(("u",), filter={"text": "apple tart"})] == ["plain"]
    assert got == [] and session.turns()[-1].receipts == []
    with session.turn() as got:  # a query search: one receipt, for the search over vector records
        found = m.search(("u",), query="apple pie", limit=5)
    assert [i.key for i in found] == ["scored", "plain"] and found[1].score is None
    assert len(got) == 1 and got[0].ids == [ids.vector_id(("u",), "scored", 0)]
    assert all(c.ok for c in session.verify())


# ---------------------------------------------------------------------- 0.1 stores
@pytest.fixture
def old(tmp_path: Path) -> Iterator[ValoriMemoryStore]:
    shutil.copytree(FIXTURE, tmp_path / "lg")
    mem = ValoriMemoryStore(index={"dims": 8, "embed": HashingEmbedder(dim=8), "fields": ["text"]},
                            path=str(tmp_path / "lg"), clock=Clock())
    yield mem
    mem.close()


def test_a_0_1_store_converges_to_the_current_layout_in_one_event(old: ValoriMemoryStore) -> None:
    core = old.store
    legacy = ids.legacy_namespace_id(("users", "alice"))
    assert legacy in core and core.get([ids.item_id(("users", "alice"), "pref")])[0].vector is not None
    before = core.log_length
    old.put(("users", "alice"), "pref", {"text": "rye only", "level": 6})
    assert core.log_length == before + 1  # item, its vector and the stale namespace record: one event
    assert legacy not in core
    assert core.get([ids.item_id(("users", "alice"), "pref")])[0].vector is None
    assert core.get([ids.item_id(("users", "alice"), "diet")])[0].vector is not None  # untouched: as written
    assert ids.legacy_namespace_id(("users", "bob")) in core  # other namespaces keep theirs until written
    assert old.list_namespaces() == [("docs",), ("users", "alice"), ("users", "bob"), ("users", "bob", "archive")]
    assert [i.key for i in old.search(("users", "alice"))] == ["diet", "pref"]
    assert old.search(("users", "alice"), query="rye only", limit=1)[0].key == "pref"


def test_a_0_1_namespace_disappears_with_its_last_item(old: ValoriMemoryStore) -> None:
    old.delete(("docs",), "readme")
    assert ids.legacy_namespace_id(("docs",)) not in old.store
    assert ("docs",) not in old.list_namespaces()
    assert old.search(("docs",)) == []
