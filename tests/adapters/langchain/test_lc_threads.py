"""Concurrent writers and readers (threads and asyncio tasks at once) leave a consistent
store: the same count, state hash and results as a store built serially."""

from __future__ import annotations

import asyncio
import threading

from langchain_core.documents import Document

from valori_store.embedder import HashingEmbedder
from valori_store.langchain import ValoriVectorStore

THREADS, TASKS, BATCHES, PER_BATCH = 6, 6, 4, 8
QUERIES = ["alpha beta", "gamma", "delta epsilon zeta", "worker 3 batch 2"]


def _docs(owner: str, batch: int) -> list[Document]:
    return [
        Document(id=f"{owner}-{batch}-{j}", page_content=f"{owner} batch {batch} item {j} alpha gamma"[: 20 + j * 3],
                 metadata={"owner": owner, "batch": batch, "j": j, "x": j / 3})
        for j in range(PER_BATCH)
    ]


ALL = {d.id: d for o in [f"t{i}" for i in range(THREADS)] + [f"a{i}" for i in range(TASKS)]
       for b in range(BATCHES) for d in _docs(o, b)}


def _check_docs(got: list[Document], k: int) -> None:
    assert len(got) <= k
    for d in got:
        assert d == ALL[d.id]  # never a torn record: id, text and metadata belong together


def test_concurrent_threads_and_tasks() -> None:
    vs = ValoriVectorStore(HashingEmbedder(dim=96))  # lazy: the first writers race to create the store
    start = threading.Barrier(THREADS + 1)
    errors: list[BaseException] = []

    def thread_worker(i: int) -> None:
        try:
            start.wait()
            for b in range(BATCHES):
                vs.add_documents(_docs(f"t{i}", b))
                for q in QUERIES:
                    _check_docs(vs.similarity_search(q, k=5), 5)
                _check_docs(vs.max_marginal_relevance_search(QUERIES[b % 4], k=3, fetch_k=8), 3)
                _check_docs([d for d, _ in vs.similarity_search_with_relevance_scores(QUERIES[0], k=4)], 4)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    async def task_worker(i: int) -> None:
        for b in range(BATCHES):
            await vs.aadd_documents(_docs(f"a{i}", b))
            for q in QUERIES:
                _check_docs(await vs.asimilarity_search(q, k=5), 5)
            _check_docs(await vs.amax_marginal_relevance_search(QUERIES[b % 4], k=3, fetch_k=8), 3)

    async def tasks() -> None:
        start.wait()
        await asyncio.gather(*(task_worker(i) for i in range(TASKS)))

    threads = [threading.Thread(target=thread_worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    asyncio.run(tasks())
    for t in threads:
        t.join()
    assert not errors, errors

    serial = ValoriVectorStore(HashingEmbedder(dim=96))
    serial.add_documents(sorted(ALL.values(), key=lambda d: d.id))
    assert len(vs) == len(ALL) == THREADS * BATCHES * PER_BATCH + TASKS * BATCHES * PER_BATCH
    assert vs.state_hash() == serial.state_hash()
    for q in QUERIES:
        assert vs.similarity_search_with_score(q, k=10) == serial.similarity_search_with_score(q, k=10)
        assert vs.max_marginal_relevance_search(q, k=4) == serial.max_marginal_relevance_search(q, k=4)
    report = vs.store.verify()
    assert report.ok and report.state_hash == serial.state_hash(), report.problems
