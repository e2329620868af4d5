"""LlamaIndex adapter: ``ValoriVectorStore`` and a session memory block.

Importing this package needs ``llama-index-core`` (``pip install 'valori-store[llamaindex]'``);
``import valori_store`` alone never imports LlamaIndex.
"""

from __future__ import annotations

from valori_store.llamaindex._compat import require_llama_index

require_llama_index()

from valori_store.llamaindex.embedding import ValoriHashingEmbedding  # noqa: E402
from valori_store.llamaindex.errors import UnsupportedFilterError, UnsupportedQueryModeError  # noqa: E402
from valori_store.llamaindex.filters import query_filter, translate_filters  # noqa: E402
from valori_store.llamaindex.memory import SessionSnapshot, ValoriMemoryBlock  # noqa: E402
from valori_store.llamaindex.vector_store import ValoriVectorStore  # noqa: E402

__all__ = [
    "SessionSnapshot",
    "UnsupportedFilterError",
    "UnsupportedQueryModeError",
    "ValoriHashingEmbedding",
    "ValoriMemoryBlock",
    "ValoriVectorStore",
    "query_filter",
    "translate_filters",
]
