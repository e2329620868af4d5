"""valori-store as a LangChain vector store: a runnable, offline tour.

    python integrations/langchain/example.py

Uses the built-in deterministic HashingEmbedder (no model, no network), so every number
printed here is the same on every machine.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from langchain_core.documents import Document
from langchain_valori import ValoriVectorStore

from valori_store.embedder import HashingEmbedder

DOCS = [
    Document(id="py", page_content="Python is a programming language with readable syntax",
             metadata={"topic": "code", "year": 1991}),
    Document(id="rs", page_content="Rust is a systems programming language focused on safety",
             metadata={"topic": "code", "year": 2015}),
    Document(id="py2", page_content="Python programming language: readable syntax, batteries included",
             metadata={"topic": "code", "year": 2000}),
    Document(id="nile", page_content="The Nile is a long river in Africa",
             metadata={"topic": "geo", "year": None}),
    Document(id="alps", page_content="The Alps are a mountain range in Europe",
             metadata={"topic": "geo", "tags": ["mountain", "europe"]}),
]


def main() -> None:
    vs = ValoriVectorStore(HashingEmbedder())  # cosine, in memory; dim comes from the embedder
    vs.add_documents(DOCS)

    print("similarity (score = exact cosine, higher is closer):")
    for doc, score in vs.similarity_search_with_score("readable programming language", k=3):
        print(f"  {doc.id:5} {score:.6f}")

    print("relevance in [0, 1] (a stored copy of the query scores exactly 1.0):")
    for doc, rel in vs.similarity_search_with_relevance_scores(DOCS[3].page_content, k=2):
        print(f"  {doc.id:5} {rel:.6f}")

    print("filters (dict, callable, both):")
    print("  ", [d.id for d in vs.similarity_search("language", k=3, filter={"year": {"$gte": 2000}})])
    print("  ", [d.id for d in vs.similarity_search("language", k=3, filter=lambda d: "safety" in d.page_content)])
    print("  ", [d.id for d in vs.similarity_search("river", k=3, filter=[{"topic": "geo"}, lambda d: d.id != "nile"])])

    print("MMR vs plain similarity (k=2):")
    print("   similarity", [d.id for d in vs.similarity_search("Python readable syntax", k=2)])
    print("   mmr       ", [d.id for d in vs.max_marginal_relevance_search("Python readable syntax", k=2, lambda_mult=0.3)])

    retriever = vs.as_retriever(search_type="similarity_score_threshold", search_kwargs={"score_threshold": 0.6})
    print("threshold retriever:", [d.id for d in retriever.invoke("mountains of Europe")])

    async def concurrent() -> list[list[str]]:
        results = await asyncio.gather(*(vs.asimilarity_search(q, k=1) for q in ["river", "Rust", "Alps"]))
        return [[d.id for d in r] for r in results]

    print("async:", asyncio.run(concurrent()))

    cp = vs.checkpoint("before-edit")  # snapshot() is an alias of checkpoint()
    before = vs.similarity_search_with_score("language", k=3)
    vs.delete(["py"])
    vs.add_documents([Document(id="rs", page_content="Rust, rewritten", metadata={})])
    vs.restore(cp)
    assert vs.state_hash() == cp.state_hash and vs.similarity_search_with_score("language", k=3) == before
    print("restored state hash matches:", cp.state_hash[:16], "...")

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "docs.valori"
        vs.save(path)
        again = ValoriVectorStore.load(path, HashingEmbedder())
        assert again.state_hash() == vs.state_hash()
        print("saved and reloaded:", len(again), "documents, same state hash")


if __name__ == "__main__":
    main()
