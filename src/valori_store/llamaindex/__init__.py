"""LlamaIndex adapter: ``ValoriVectorStore`` and a session memory block.

Importing this package needs ``llama-index-core`` (``pip install 'valori-store[llamaindex]'``);
``import valori_store`` alone never imports LlamaIndex.
"""

from __future__ import annotations

from ._compat import require_llama_index

require_llama_index()

from .embedding import ValoriHashingEmbedding  # noqa: E402
from .errors import UnsupportedFilterError, UnsupportedQueryModeError  # noqa: E402
from .filters import query_filter, translate_filters  # noqa: E402
from .memory import SessionSnapshot, ValoriMemoryBlock  # noqa: E402
from .vector_store import ValoriVectorStore  # noqa: E402

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
