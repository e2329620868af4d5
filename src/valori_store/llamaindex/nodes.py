"""LlamaIndex nodes <-> core records.

A node is stored as one core record: ``id = node.node_id``, ``text`` = the node's text
(``get_content(MetadataMode.NONE)``), ``metadata`` = :func:`node_to_metadata_dict` (the
node's own metadata at the top level, so filters see it, plus ``_node_content`` — the
whole node as JSON —, ``_node_type`` and the ref-doc-id keys). Invariants:

* ``record_to_node(*node_to_record(node)[1:])`` equals ``node`` field for field except
  ``embedding``, which is not kept (the store holds the quantised vector, not the input).
* Text-node types (TextNode, ImageNode, IndexNode and TextNode subclasses) keep their text
  only in the record text (``remove_text=True``); ``Node``, ``Document`` and
  ``ImageDocument`` keep their ``text_resource`` inside ``_node_content`` because a text
  alone would not rebuild it (mimetype, path...).
* Node types ``metadata_dict_to_node`` does not know (Document, ImageDocument) are rebuilt
  with their own class; other unknown classes come back as the TextNode base.
* A record written without this adapter (no ``_node_content``) comes back as a plain
  ``TextNode(id_, text, metadata)``.
"""

from __future__ import annotations

from typing import Any

from llama_index.core.schema import BaseNode, Document, ImageDocument, MetadataMode, TextNode
from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict

__all__ = ["NODE_CONTENT_KEY", "NODE_TYPE_KEY", "REF_DOC_ID_KEY", "node_to_record", "record_to_node"]

NODE_CONTENT_KEY = "_node_content"
NODE_TYPE_KEY = "_node_type"
REF_DOC_ID_KEY = "ref_doc_id"
"""Top-level metadata key holding the source document id (``"None"`` when there is none)."""

# Node classes whose text lives in ``text_resource`` (kept verbatim in _node_content).
_RESOURCE_TYPES: dict[str, type[BaseNode]] = {
    Document.class_name(): Document,
    ImageDocument.class_name(): ImageDocument,
}
_NODE = "Node"


def node_to_record(node: BaseNode, flat_metadata: bool = False) -> tuple[str, str, dict[str, Any]]:
    """``(id, text, metadata)`` of the record that stores ``node`` (the node is not changed)."""
    text_in_record = isinstance(node, TextNode)
    metadata = node_to_metadata_dict(node, remove_text=text_in_record, flat_metadata=flat_metadata)
    return node.node_id, node.get_content(metadata_mode=MetadataMode.NONE), metadata


def record_to_node(record_id: str, text: str | None, metadata: dict[str, Any]) -> BaseNode:
    """Rebuild the node stored by :func:`node_to_record` (see the module invariants)."""
    if NODE_CONTENT_KEY not in metadata:
        return TextNode(id_=record_id, text=text or "", metadata=dict(metadata))
    node_type = metadata.get(NODE_TYPE_KEY)
    resource_cls = _RESOURCE_TYPES.get(node_type) if isinstance(node_type, str) else None
    if resource_cls is not None:
        return resource_cls.from_json(metadata[NODE_CONTENT_KEY])
    if node_type == _NODE:
        return metadata_dict_to_node(metadata)
    return metadata_dict_to_node(metadata, text=text if text is not None else "")
