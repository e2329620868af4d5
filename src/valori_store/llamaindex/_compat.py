"""Import guard: the LlamaIndex adapter needs ``llama-index-core`` (the ``[llamaindex]`` extra).

``import valori_store`` never imports this package; importing ``valori_store.llamaindex``
checks once that the framework is present and otherwise raises an ImportError that names
the extra to install (no stand-in classes).
"""

from __future__ import annotations

import importlib.util

EXTRA_HINT = "pip install 'valori-store[llamaindex]'"


def require_llama_index() -> None:
    """Raise ImportError naming the extra when ``llama_index.core`` is not installed."""
    if importlib.util.find_spec("llama_index") is None or importlib.util.find_spec("llama_index.core") is None:
        raise ImportError(
            f"valori_store.llamaindex needs llama-index-core, which is not installed; run: {EXTRA_HINT}"
        )
