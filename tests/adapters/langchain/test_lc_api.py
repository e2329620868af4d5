"""Construction, ids, batches, deletes, get_by_ids, lazy import, error messages."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.documents import Document
from langchain_core.vectorstores import VectorStore
from lc_fixtures import TableEmbedding

from valori_store.embedder import HashingEmbedder
from valori_store.errors import DimensionError, IdError, InputError, MetadataError, NotFoundError
from valori_store.langchain import ValoriVectorStore

SRC = Path(__file__).resolve().parents[3] / "src"


def test_importing_the_core_does_not_import_langchain() -> None:
    code = ("import sys, valori_store, valori_store.embedder; "
            "assert not any(m.split('.')[0].startswith('langchain') for m in sys.modules), 'leak'; "
            "import valori_store.langchain; assert 'langchain_core' in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(SRC), "PATH": ""}, check=False)
    assert out.stdout.strip() == "ok", out.stderr


def test_is_a_langchain_vectorstore_with_embeddings_property() -> None:
    emb = HashingEmbedder(dim=32)
    vs = ValoriVectorStore(emb)
    assert isinstance(vs, VectorStore) and vs.embeddings is emb
    assert vs.metric == "cosine" and vs.dim is None and vs.store is None
    assert vs.similarity_search("anything") == [] and vs.get_by_ids(["a"]) == []
    assert vs.delete(["a"]) is True
    vs.add_texts(["hello"])
    assert vs.dim == 32 and len(vs) == 1


def test_ids_argument_wins_over_document_ids() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    docs = [Document(id="x", page_content="one"), Document(id="y", page_content="two")]
    assert vs.add_documents(docs, ids=["a", "b"]) == ["a", "b"]
    assert vs.store.ids() == ["a", "b"]
    assert vs.add_documents(docs) == ["x", "y"]
    with pytest.raises(InputError, match="one per document"):
        vs.add_documents(docs, ids=["only-one"])
    with pytest.raises(InputError, match="one per text"):
        vs.add_texts(["a", "b"], metadatas=[{}])
    with pytest.raises(IdError, match="twice"):
        vs.add_documents(docs, ids=["same", "same"])
    with pytest.raises(IdError, match="twice"):  # repeated across batches is caught before anything is written
        vs.add_documents(docs, ids=["same", "same"], batch_size=1)
    assert vs.store.ids() == ["a", "b", "x", "y"]


def test_generated_ids_are_deterministic_strings() -> None:
    def build() -> tuple[list[str], str]:
        vs = ValoriVectorStore(HashingEmbedder(dim=32))
        ids = vs.add_texts(["a", "b", "c"])
        ids += vs.add_documents([Document(id="k", page_content="d"), Document(page_content="e"), Document(page_content="f", id="")])
        return ids, vs.state_hash()

    ids1, h1 = build()
    ids2, h2 = build()
    assert ids1 == ids2 and h1 == h2  # same history, same ids, same state
    assert all(isinstance(i, str) and i for i in ids1) and len(set(ids1)) == 6 and ids1[3] == "k"


def test_mixed_ids_in_different_histories_do_not_collide() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    first = vs.add_documents([Document(id="k1", page_content="same"), Document(page_content="same")])
    second = vs.add_documents([Document(id="k2", page_content="same"), Document(page_content="same")])
    assert first[1] != second[1] and len(vs) == 4


def test_caller_documents_and_metadata_are_not_mutated() -> None:
    meta = {"a": [1, 2], "b": {"c": 1.5}}
    docs = [Document(page_content="hello", metadata=meta), Document(page_content="bye", metadata={"x": 1})]
    before = copy.deepcopy(docs)
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    vs.add_documents(docs)
    assert docs == before and docs[0].id is None and meta == {"a": [1, 2], "b": {"c": 1.5}}
    got = vs.similarity_search("hello", k=1)[0]
    got.metadata["a"].append(3)  # changing a result changes neither the caller's dict nor the store
    assert meta == {"a": [1, 2], "b": {"c": 1.5}}
    assert vs.similarity_search("hello", k=1)[0].metadata == meta


def test_batches_are_each_atomic() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    texts = [f"text {i}" for i in range(10)]
    metas: list[dict[str, object]] = [{"i": i} for i in range(10)]
    metas[7] = {"bad": object()}  # not JSON: the third batch of 3 fails
    with pytest.raises(MetadataError):
        vs.add_texts(texts, metas, ids=[f"t{i}" for i in range(10)], batch_size=3)
    assert vs.store.ids() == [f"t{i}" for i in range(6)]  # batches 1 and 2 landed, batch 3 did not
    with pytest.raises(MetadataError):
        vs.add_texts(texts, metas, ids=[f"u{i}" for i in range(10)])  # one batch: nothing lands
    assert len(vs) == 6
    with pytest.raises(InputError, match="batch_size"):
        vs.add_texts(texts, batch_size=0)


def test_batch_size_calls_the_embedder_per_batch() -> None:
    emb = TableEmbedding({str(i): [1.0, float(i)] for i in range(7)})
    vs = ValoriVectorStore(emb)
    vs.add_texts([str(i) for i in range(7)], batch_size=3)
    assert emb.calls == 3 and len(vs) == 7


def test_delete_semantics() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    vs.add_texts(["a", "b", "c"], ids=["1", "2", "3"])
    assert vs.delete(["2", "missing"]) is True
    assert vs.store.ids() == ["1", "3"]
    with pytest.raises(InputError, match="every record"):
        vs.delete()
    with pytest.raises(InputError, match="every record"):
        vs.delete(None)
    with pytest.raises(InputError, match="single str"):
        vs.delete("1")
    assert len(vs) == 2
    vs.delete(vs.store.ids())  # the documented way to empty the store
    assert len(vs) == 0


def test_get_by_ids_keeps_input_order_and_skips_missing() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    vs.add_texts(["a", "b", "c"], metadatas=[{"n": 1}, {"n": 2}, {"n": 3}], ids=["1", "2", "3"])
    got = vs.get_by_ids(["3", "nope", "1"])
    assert got == [Document(id="3", page_content="c", metadata={"n": 3}),
                   Document(id="1", page_content="a", metadata={"n": 1})]


def test_from_texts_and_from_documents() -> None:
    emb = HashingEmbedder(dim=32)
    vs = ValoriVectorStore.from_texts(["a", "b"], emb, metadatas=[{"i": 0}, {"i": 1}], ids=["x", "y"], metric="l2")
    assert vs.metric == "l2" and vs.get_by_ids(["y"])[0].metadata == {"i": 1}
    docs = [Document(id="d1", page_content="p", metadata={"k": 1}), Document(page_content="q")]
    vs2 = ValoriVectorStore.from_documents(docs, emb, dim=32, batch_size=1)
    assert len(vs2) == 2 and vs2.get_by_ids(["d1"]) == [docs[0]]


async def test_async_constructors_and_writes() -> None:
    emb = HashingEmbedder(dim=32)
    vs = await ValoriVectorStore.afrom_texts(["a", "b"], emb, ids=["x", "y"])
    docs = [Document(id="d1", page_content="p", metadata={"k": 1}), Document(page_content="q")]
    vs2 = await ValoriVectorStore.afrom_documents(docs, emb)
    sync = ValoriVectorStore.from_documents(docs, emb)
    assert vs2.state_hash() == sync.state_hash() and len(vs) == 2
    assert await vs.aadd_texts(["c"], ids=["z"]) == ["z"]
    assert await vs.aget_by_ids(["z", "x"]) == vs.get_by_ids(["z", "x"])
    assert await vs.adelete(["x"]) is True and vs.store.ids() == ["y", "z"]
    with pytest.raises(InputError):
        await vs.adelete(None)


def test_unknown_keyword_arguments_are_rejected() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    with pytest.raises(InputError, match="filters"):
        vs.similarity_search("a", filters={"x": 1})
    with pytest.raises(InputError, match="colour"):
        vs.add_texts(["a"], colour="red")


def test_bad_inputs_raise_clear_errors(tmp_path: Path) -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=32))
    with pytest.raises(InputError, match="str"):
        vs.add_texts([b"bytes"])  # type: ignore[list-item]
    with pytest.raises(InputError):
        ValoriVectorStore(HashingEmbedder(), metric="manhattan")
    vs.add_texts(["a"])
    with pytest.raises(DimensionError):
        vs.similarity_search_by_vector([1.0, 2.0])
    with pytest.raises(InputError, match="k must be"):
        vs.similarity_search("a", k=-1)
    with pytest.raises(NotFoundError):
        vs.restore("no-such-label")


def test_shared_search_kwargs_work_for_every_search_type() -> None:
    from langchain_core.documents import Document

    from valori_store.embedder import HashingEmbedder
    from valori_store.errors import InputError
    from valori_store.langchain import ValoriVectorStore

    vs = ValoriVectorStore(HashingEmbedder())
    vs.add_documents([Document(id=f"d{i}", page_content=f"text number {i}") for i in range(6)])
    shared = {"k": 2, "fetch_k": 5, "lambda_mult": 0.5, "score_threshold": 0.0}
    for search_type in ("similarity", "mmr", "similarity_score_threshold"):
        docs = vs.as_retriever(search_type=search_type, search_kwargs=shared).invoke("text number 3")
        assert len(docs) == 2 and docs[0].id == "d3"
    assert len(vs.similarity_search("text", k=2, fetch_k=9)) == 2
    import pytest

    with pytest.raises(InputError, match="filters"):
        vs.similarity_search("text", filters={"a": 1})
