"""langchain-valori: the LangChain-ecosystem name for valori-store's LangChain integration.

Re-exports only; the implementation lives in :mod:`valori_store.langchain`.
"""

from valori_store.langchain import ValoriVectorStore, relevance, score_relevance_fn

__all__ = ["ValoriVectorStore", "relevance", "score_relevance_fn"]
