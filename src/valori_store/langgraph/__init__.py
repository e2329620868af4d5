"""LangGraph integration: agent memory (``ValoriMemoryStore``) and reproducible sessions
(``ValoriCheckpointer``).

Importing this subpackage imports LangGraph; ``import valori_store`` never does.
Install with ``pip install "valori-store[langgraph]"``.
"""

from __future__ import annotations

try:
    import langgraph.checkpoint.base  # noqa: F401
    import langgraph.store.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        'valori_store.langgraph needs LangGraph: pip install "valori-store[langgraph]"'
    ) from exc

from valori_store.langgraph.checkpointer import ValoriCheckpointer
from valori_store.langgraph.store import ValoriMemoryStore

__all__ = ["ValoriCheckpointer", "ValoriMemoryStore"]
