"""Node <-> record round trips: text, metadata, relationships and node type come back exactly."""

from __future__ import annotations

import base64
import json

import pytest

pytest.importorskip("llama_index.core")

from llama_index.core.schema import (  # noqa: E402
    Document,
    ImageDocument,
    ImageNode,
    IndexNode,
    MediaResource,
    Node,
    NodeRelationship,
    RelatedNodeInfo,
    TextNode,
)

from valori_store.llamaindex import ValoriVectorStore  # noqa: E402
from valori_store.llamaindex.nodes import node_to_record, record_to_node  # noqa: E402


def _relationships() -> dict:
    return {
        NodeRelationship.SOURCE: RelatedNodeInfo(node_id="doc-1", metadata={"page": 3}, hash="h"),
        NodeRelationship.PREVIOUS: RelatedNodeInfo(node_id="n-0"),
        NodeRelationship.NEXT: RelatedNodeInfo(node_id="n-2"),
        NodeRelationship.CHILD: [RelatedNodeInfo(node_id="c-1"), RelatedNodeInfo(node_id="c-2")],
    }


NODES = [
    TextNode(
        id_="text", text="héllo\nworld  ", metadata={"a": 1, "nested": {"x": [1, 2.5, None]}, "flag": True},
        relationships=_relationships(), start_char_idx=4, end_char_idx=17,
        excluded_llm_metadata_keys=["a"], excluded_embed_metadata_keys=["flag"], text_template="{content}!",
    ),
    TextNode(id_="empty-text", text=""),
    ImageNode(id_="image", text="caption", image_url="https://example.invalid/x.png", image_mimetype="image/png",
              relationships=_relationships()),
    IndexNode(id_="index", text="points at another index", index_id="sub-index", metadata={"k": "v"}),
    Node(id_="node", text_resource=MediaResource(text="resource text", mimetype="text/markdown"),
         metadata={"m": [1]}, relationships=_relationships()),
    Node(id_="node-no-text"),
    Document(id_="document", text="a whole document", metadata={"author": "ada"}),
    ImageDocument(id_="image-doc", text="img doc", image=base64.b64encode(b"\x89PNG not really").decode()),
]


def _dump(node) -> dict:
    return node.model_copy(update={"embedding": None}).model_dump()


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_id)
def test_record_round_trip_is_exact(node) -> None:
    rid, text, meta = node_to_record(node)
    json.dumps(meta, allow_nan=False)  # JSON-native, as the core requires
    back = record_to_node(rid, text, meta)
    assert type(back) is type(node)
    assert _dump(back) == _dump(node)
    assert back.node_id == rid == node.node_id


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.node_id)
def test_store_round_trip_is_exact(node) -> None:
    store = ValoriVectorStore(dim=3)
    original = _dump(node)
    store.add([node.model_copy(update={"embedding": [0.5, -1.0, 2.0]})])
    assert _dump(node) == original  # the caller's node is untouched
    (back,) = store.get_nodes()
    assert type(back) is type(node) and _dump(back) == original
    assert back.embedding is None  # the input embedding is not kept (the store holds Q16.16)


def test_text_lives_in_the_record_text_not_twice() -> None:
    node = NODES[0]
    _, text, meta = node_to_record(node)
    assert text == node.text
    assert json.loads(meta["_node_content"])["text"] == ""
    assert meta["ref_doc_id"] == meta["doc_id"] == meta["document_id"] == "doc-1"
    assert meta["a"] == 1 and meta["nested"] == {"x": [1, 2.5, None]}  # filterable at the top level


def test_foreign_record_becomes_a_plain_text_node() -> None:
    back = record_to_node("raw", "raw text", {"k": 1})
    assert type(back) is TextNode and (back.node_id, back.text, back.metadata) == ("raw", "raw text", {"k": 1})
    store = ValoriVectorStore(dim=2)
    store.client.upsert([[1.0, 0.0]], ids=["raw"], texts=["core"], metadatas=[{"k": 2}])
    (node,) = store.get_nodes()
    assert (node.node_id, node.text, node.metadata) == ("raw", "core", {"k": 2})


def test_flat_metadata_rejects_nested_values() -> None:
    store = ValoriVectorStore(dim=2, flat_metadata=True)
    with pytest.raises(ValueError):
        store.add([TextNode(text="x", metadata={"nested": {"a": 1}}, embedding=[1.0, 0.0])])
    assert len(store.client) == 0
