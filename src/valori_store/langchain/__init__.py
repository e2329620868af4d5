"""LangChain integration: :class:`ValoriVectorStore`, a drop-in ``VectorStore``.

Needs ``langchain-core`` (``pip install "valori-store[langchain]"``). Importing
``valori_store`` alone never imports LangChain; importing this subpackage does.
"""

from __future__ import annotations

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "valori_store.langchain needs langchain-core; install it with: pip install 'valori-store[langchain]'"
    ) from exc

from valori_store.langchain.scores import relevance, score_relevance_fn
from valori_store.langchain.vectorstore import ValoriVectorStore

__all__ = ["ValoriVectorStore", "relevance", "score_relevance_fn"]
