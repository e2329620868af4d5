"""Conversions between core records/hits and LangChain Documents, and id assignment."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from valori_store.errors import IdError, InputError
from valori_store.format.canonical import canonical_metadata

if TYPE_CHECKING:
    from valori_store import Hit, Record

__all__ = ["assign_ids", "hit_to_document", "hits_to_documents", "hits_with_scores", "record_to_document", "resolve_ids"]


def record_to_document(rec: Record | Hit) -> Document:
    """A fresh Document: the record's id, exact text (``""`` if none) and metadata copy."""
    return Document(id=rec.id, page_content=rec.text if rec.text is not None else "", metadata=rec.metadata)


hit_to_document = record_to_document


def hits_to_documents(hits: Sequence[Hit]) -> list[Document]:
    """One fresh Document per hit, in hit order."""
    return [record_to_document(h) for h in hits]


def hits_with_scores(hits: Sequence[Hit]) -> list[tuple[Document, float]]:
    """(Document, the core's score) per hit, in hit order."""
    return [(record_to_document(h), h.score) for h in hits]


def resolve_ids(n: int, ids: Sequence[str | None] | None, doc_ids: Sequence[str | None] | None) -> list[str | None]:
    """Per-item ids: ``ids=`` wins over ``Document.id``; ``None``/``""`` mean "generate".

    Raises InputError when ``ids`` has the wrong length and IdError when an id repeats.
    """
    if ids is not None:
        if isinstance(ids, (str, bytes)) or not hasattr(ids, "__len__"):
            raise InputError(f"ids must be a list with one entry per document, got {type(ids).__name__}")
        if len(ids) != n:
            raise InputError(f"ids has {len(ids)} entries but {n} documents were given; pass one per document")
        chosen = list(ids)
    elif doc_ids is not None:
        chosen = list(doc_ids)
    else:
        chosen = [None] * n
    out: list[str | None] = [None if i is None or i == "" else i for i in chosen]
    seen: set[str] = set()
    for i in out:
        if i is None:
            continue
        if not isinstance(i, str):
            raise IdError(f"ids must be str, got {type(i).__name__} {i!r}")
        if i in seen:
            raise IdError(f"id {i!r} appears twice in one call; ids in a call must be unique")
        seen.add(i)
    return out


def assign_ids(
    ids: list[str | None], log_length: int, texts: Sequence[str], metadatas: Sequence[Any],
) -> list[str] | None:
    """Fill the missing entries of a partly-identified batch deterministically.

    ``None`` is returned when every id is missing (the core then generates its own ids
    from its hash chain). Otherwise each missing id is a UUID-shaped BLAKE2b digest of the
    store's log length, the position, and the batch's explicit ids, texts and canonical
    metadata: the same history gives the same ids, and two concurrent batches only get
    the same id if they are the same batch (then the second write is an identical upsert).
    """
    if all(i is None for i in ids):
        return None
    if all(i is not None for i in ids):
        return ids  # type: ignore[return-value]
    h = hashlib.blake2b(digest_size=32, person=b"valori-lc-batch")
    h.update(log_length.to_bytes(8, "little"))
    for pos, (rid, text, meta) in enumerate(zip(ids, texts, metadatas)):
        for part in ((rid or "").encode("utf-8"), text.encode("utf-8", "surrogatepass"), canonical_metadata(meta, pos)):
            h.update(len(part).to_bytes(8, "little"))
            h.update(part)
    base = h.digest()
    out = []
    for pos, rid in enumerate(ids):
        if rid is None:
            d = hashlib.blake2b(base + pos.to_bytes(8, "little"), digest_size=16, person=b"valori-lc-id").digest()
            rid = str(uuid.UUID(bytes=d, version=4))
        out.append(rid)
    return out
