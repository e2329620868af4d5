"""Index configuration: the embedder and the tokenized field paths (as LangGraph does)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph.store.base import ensure_embeddings, get_text_at_path, tokenize_path

from valori_store.errors import InputError

Path = tuple[str, Any]  # (path as written, tokens or "$")


@dataclass(frozen=True)
class Index:
    """A validated ``IndexConfig``: ``dims``, an embedder and the default field paths."""

    dims: int
    embeddings: Any
    fields: tuple[Path, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Index:
        if not isinstance(config, Mapping):
            raise InputError(f"index must be an IndexConfig dict, got {type(config).__name__}")
        dims = config.get("dims")
        if isinstance(dims, bool) or not isinstance(dims, int) or dims < 1:
            raise InputError(f"index['dims'] must be a positive int, got {dims!r}")
        embed = config.get("embed")
        if embed is None:
            raise InputError("index['embed'] is required: an Embeddings object or an (async) function of texts")
        fields = config.get("fields") or ["$"]
        if isinstance(fields, str) or not isinstance(fields, Sequence):
            raise InputError(f"index['fields'] must be a list of paths, got {fields!r}")
        return cls(dims, _embeddings(embed), tuple((p, p) if p == "$" else (p, tokenize_path(p)) for p in fields))

    def paths_for(self, index: Any) -> tuple[Path, ...]:
        """Field paths of one put: the configured ones, or the put's own ``index`` list."""
        if index is None:
            return self.fields
        if isinstance(index, str) or not isinstance(index, Sequence):
            raise InputError(f"index= must be False, None or a list of field paths, got {index!r}")
        return tuple((p, tokenize_path(p)) for p in index)


def _embeddings(embed: Any) -> Any:
    """An object with LangChain's Embeddings methods (duck-typed objects are kept as they are)."""
    if all(hasattr(embed, m) for m in ("embed_documents", "embed_query", "aembed_documents", "aembed_query")):
        return embed
    return ensure_embeddings(embed)


def texts_of(value: dict[str, Any], paths: Sequence[Path]) -> list[tuple[str, str]]:
    """``(field path, text)`` pairs to embed, named like LangGraph names them (``path.i``)."""
    out: list[tuple[str, str]] = []
    for path, tokens in paths:
        texts = get_text_at_path(value, tokens)
        if len(texts) > 1:
            out += [(f"{path}.{i}", t) for i, t in enumerate(texts)]
        elif texts:
            out.append((path, texts[0]))
    return out
