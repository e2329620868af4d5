"""``llama_index.vector_stores.valori``: the ecosystem import path for valori-store.

A re-export only; the implementation is ``valori_store.llamaindex`` (installed with
``valori-store[llamaindex]``). ``llama_index`` and ``llama_index.vector_stores`` are
namespace packages: this distribution ships no ``__init__.py`` for them.
"""

from valori_store.llamaindex import ValoriVectorStore

__all__ = ["ValoriVectorStore"]
