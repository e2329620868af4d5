"""The small bundled demo corpus (``valori_store/builtin/data/corpus.jsonl``).

60 short original English documents, ids ``doc-001`` .. ``doc-060``, 12 per topic
(astronomy, cooking, finance, gardening, software). Metadata keys: ``topic`` (str),
``year`` (int, 2015-2024), ``difficulty`` (``"easy"`` or ``"hard"``) and ``tags``
(list of str). Two pairs are exact duplicates (same text and metadata under two ids:
``doc-016``/``doc-024`` and ``doc-051``/``doc-060``) so that tie-ordering by id can be shown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["CorpusDoc", "load_corpus"]

_PACKAGE = "valori_store.builtin.data"
_FILENAME = "corpus.jsonl"


@dataclass(frozen=True)
class CorpusDoc:
    """One corpus document: ``id``, ``text`` and JSON-native ``metadata``."""

    id: str
    text: str
    metadata: dict[str, Any] = field(default_factory=dict)


def load_corpus() -> list[CorpusDoc]:
    """Read the packaged corpus, in file order (ascending id).

    Each call parses the file afresh, so callers may mutate what they get.
    Raises ``ValueError`` if the packaged file is malformed (a packaging bug).
    """
    raw = resources.files(_PACKAGE).joinpath(_FILENAME).read_text(encoding="utf-8")
    docs: list[CorpusDoc] = []
    seen: set[str] = set()
    for lineno, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        obj = json.loads(line)
        doc_id, text, metadata = obj.get("id"), obj.get("text"), obj.get("metadata", {})
        if not (isinstance(doc_id, str) and isinstance(text, str) and isinstance(metadata, dict)):
            raise ValueError(
                f"{_FILENAME} line {lineno}: expected id (str), text (str), metadata (dict)"
            )
        if doc_id in seen:
            raise ValueError(f"{_FILENAME} line {lineno}: duplicate id {doc_id!r}")
        seen.add(doc_id)
        docs.append(CorpusDoc(id=doc_id, text=text, metadata=metadata))
    return docs
