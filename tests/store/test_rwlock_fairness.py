"""The store's readers-writer lock is fair: readers are not starved by a write loop, writers
not by overlapping readers, and nested use on one thread does not deadlock (issue 12).

Orderings are forced with events and by waiting until a thread is blocked inside the lock
(its stack is in ``Condition.wait``); every wait and join is bounded (``TIMEOUT``, generous
for a loaded machine) and no latency is asserted. Threads are daemons, so a lock that
deadlocks fails its test instead of hanging the run.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from valori_store import ValoriStore
from valori_store.store import rwlock

TIMEOUT = 30.0  # seconds: bound of every wait below (the fair lock needs a tiny fraction)
DIM = 16


def new_lock() -> Any:
    return rwlock.ReadWriteLock()  # looked up per call (a harness may swap the class)


def start(fn: Callable[[], None], name: str) -> threading.Thread:
    t = threading.Thread(target=fn, name=name, daemon=True)
    t.start()
    return t


def join_all(*threads: threading.Thread) -> None:
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive(), f"{t.name} did not finish within {TIMEOUT:.0f} s (starved or deadlocked)"


def wait_blocked(t: threading.Thread) -> None:
    """Return once ``t`` is waiting inside a lock (its stack is in Condition.wait)."""
    deadline = time.monotonic() + TIMEOUT
    wait_code = threading.Condition.wait.__code__
    while time.monotonic() < deadline:
        frame = sys._current_frames().get(t.ident or -1)
        while frame is not None:
            if frame.f_code is wait_code:
                return
            frame = frame.f_back
        assert t.is_alive(), f"{t.name} finished instead of waiting for the lock"
        time.sleep(0.001)
    raise AssertionError(f"{t.name} never blocked on the lock")


def holder(lock: Any, mode: str, release: threading.Event, entered: threading.Event,
           order: list[str], name: str) -> Callable[[], None]:
    """A thread body: take ``lock`` in ``mode``, note ``name`` in ``order``, hold until ``release``."""
    def body() -> None:
        with getattr(lock, mode)():
            order.append(name)
            entered.set()
            assert release.wait(TIMEOUT)
    return body


def ready(*events: threading.Event) -> None:
    for e in events:
        assert e.wait(TIMEOUT)


# ---------------------------------------------------------------- orderings on the lock


def test_waiting_reader_goes_before_a_writer_that_arrives_later() -> None:
    lock, order = new_lock(), []
    go = [threading.Event() for _ in range(3)]
    entered = [threading.Event() for _ in range(3)]
    w1 = start(holder(lock, "write", go[0], entered[0], order, "w1"), "w1")
    ready(entered[0])
    r = start(holder(lock, "read", go[1], entered[1], order, "r"), "r")
    wait_blocked(r)
    w2 = start(holder(lock, "write", go[2], entered[2], order, "w2"), "w2")
    wait_blocked(w2)
    for e in go:
        e.set()
    join_all(w1, r, w2)
    assert order == ["w1", "r", "w2"]


def test_readers_arriving_while_a_writer_waits_go_after_it() -> None:
    lock, order = new_lock(), []
    go = [threading.Event() for _ in range(3)]
    entered = [threading.Event() for _ in range(3)]
    r1 = start(holder(lock, "read", go[0], entered[0], order, "r1"), "r1")
    ready(entered[0])
    w = start(holder(lock, "write", go[1], entered[1], order, "w"), "w")
    wait_blocked(w)
    r2 = start(holder(lock, "read", go[2], entered[2], order, "r2"), "r2")
    wait_blocked(r2)  # a read is held, yet r2 waits: the queued writer is ahead of it
    go[0].set()
    ready(entered[1])
    assert order == ["r1", "w"]
    go[1].set()
    go[2].set()
    join_all(r1, w, r2)
    assert order == ["r1", "w", "r2"]


def test_waiting_readers_enter_together_and_writers_keep_their_order() -> None:
    lock, order = new_lock(), []
    names = ["w0", "ra", "w1", "rb", "w2"]
    go = {n: threading.Event() for n in names}
    entered = {n: threading.Event() for n in names}
    threads = {}
    for n in names:
        threads[n] = start(holder(lock, "write" if n[0] == "w" else "read", go[n], entered[n], order, n), n)
        if n == "w0":
            ready(entered[n])
        else:
            wait_blocked(threads[n])
    go["w0"].set()
    ready(entered["ra"], entered["rb"])  # one read phase: both readers at once, ahead of w1
    assert sorted(order) == ["ra", "rb", "w0"] and not entered["w1"].is_set()
    go["ra"].set()
    go["rb"].set()
    ready(entered["w1"])
    go["w1"].set()
    go["w2"].set()
    join_all(*threads.values())
    assert order[3:] == ["w1", "w2"]


def test_reader_is_not_starved_by_two_writer_loops() -> None:
    lock, stop, reads, writes = new_lock(), threading.Event(), [], [0, 0]

    def writer(i: int) -> Callable[[], None]:
        def body() -> None:
            while not stop.is_set():
                with lock.write():
                    writes[i] += 1
                    time.sleep(0.0005)  # the other writer queues meanwhile: the loop never pauses
        return body

    def reader() -> None:
        for _ in range(50):
            with lock.read():
                reads.append(1)

    writers = [start(writer(i), f"writer-{i}") for i in range(2)]
    while min(writes) == 0:  # both loops running before the reader starts
        time.sleep(0.001)
    r = start(reader, "reader")
    try:
        join_all(r)
    finally:
        stop.set()
        join_all(*writers)
    assert len(reads) == 50


def test_writer_is_not_starved_by_overlapping_readers() -> None:
    lock, stop, writes = new_lock(), threading.Event(), []

    def reader() -> None:
        while not stop.is_set():
            with lock.read():
                time.sleep(0.0005)  # two of these overlap: some reader holds the lock almost always

    readers = [start(reader, f"reader-{i}") for i in range(2)]

    def writer() -> None:
        for _ in range(50):
            with lock.write():
                writes.append(1)

    w = start(writer, "writer")
    try:
        join_all(w)
    finally:
        stop.set()
        join_all(*readers)
    assert len(writes) == 50


# ---------------------------------------------------------------- nesting on one thread


def test_nested_read_does_not_wait_for_a_queued_writer() -> None:
    lock, order = new_lock(), []
    inner_done, w_entered = threading.Event(), threading.Event()
    outer_in, w_started = threading.Event(), threading.Event()

    def outer() -> None:
        with lock.read():
            outer_in.set()
            assert w_started.wait(TIMEOUT)
            wait_blocked(w)
            with lock.read():  # a writer is queued: a fresh reader would wait, this one must not
                order.append("inner")
            inner_done.set()

    r = start(outer, "outer")
    ready(outer_in)
    w_release = threading.Event()
    w = start(holder(lock, "write", w_release, w_entered, order, "w"), "w")
    w_started.set()
    join_all(r)
    ready(w_entered)
    w_release.set()
    join_all(w)
    assert order == ["inner", "w"]


def test_read_and_write_nest_inside_write() -> None:
    lock, done = new_lock(), []

    def body() -> None:
        with lock.write():
            with lock.read():
                with lock.write():
                    done.append("nested")
        with lock.read():  # everything was released
            done.append("after")

    join_all(start(body, "nester"))
    assert done == ["nested", "after"]
    w = start(lambda: lock.write().__enter__(), "other-writer")  # the lock is free for others
    join_all(w)


def test_write_inside_read_raises_instead_of_deadlocking() -> None:
    lock, got = new_lock(), []

    def body() -> None:
        with lock.read():
            try:
                with lock.write():
                    got.append("entered")
            except RuntimeError:
                got.append("refused")
        with lock.write():
            got.append("write after")

    join_all(start(body, "upgrader"))
    assert got == ["refused", "write after"]


# ---------------------------------------------------------------- the store


def _vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, DIM))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _filled(path: Any = None) -> ValoriStore:
    s = ValoriStore(DIM, "cosine") if path is None else ValoriStore.open(path, DIM, "cosine", durability="batch")
    s.upsert(_vectors(2_000, 1), ids=[f"base-{i}" for i in range(2_000)])
    return s


def _under_loop(store: ValoriStore, step: Callable[[int, int], None], work: Callable[[], None],
                writers: int = 1) -> list[int]:
    """Run ``step(writer, i)`` in ``writers`` continuous loops while ``work`` runs on
    another thread; ``work`` must finish within the bound. Returns each loop's count."""
    stop, counts = threading.Event(), [0] * writers

    def loop(w: int) -> Callable[[], None]:
        def body() -> None:
            while not stop.is_set():
                step(w, counts[w])
                counts[w] += 1
        return body

    loops = [start(loop(w), f"write-loop-{w}") for w in range(writers)]
    while min(counts) == 0:
        time.sleep(0.001)
    t = start(work, "work")
    try:
        join_all(t)
    finally:
        stop.set()
        join_all(*loops)
    return counts


def _upsert_step(store: ValoriStore) -> Callable[[int, int], None]:
    batch = _vectors(10, 2)
    return lambda w, i: store.upsert(batch, ids=[f"w{w}-{i}-{j}" for j in range(10)])


@pytest.mark.parametrize("writers", [1, 2])
def test_searches_complete_while_threads_upsert_in_a_loop(writers: int) -> None:
    store, queries, found = _filled(), _vectors(20, 3), []

    def searches() -> None:
        for q in queries:
            found.append(store.search(q, k=5))

    counts = _under_loop(store, _upsert_step(store), searches, writers)
    assert len(found) == 20 and all(len(h) == 5 for h in found)
    assert len(store) == 2_000 + 10 * sum(counts)


def test_searches_complete_while_a_thread_checkpoints_in_a_loop(tmp_path: Any) -> None:
    store, queries, found = _filled(tmp_path / "s"), _vectors(20, 4), []

    def searches() -> None:
        for q in queries:
            found.append(store.search(q, k=5))

    try:
        counts = _under_loop(store, lambda w, i: store.checkpoint(f"c{i}") and None, searches)
        assert len(found) == 20
        assert len(store.history()) == counts[0]
    finally:
        store.close()


def test_session_turns_complete_while_a_thread_upserts(tmp_path: Any) -> None:
    store = _filled(tmp_path / "s")
    session, queries, turns = store.session("agent"), _vectors(5, 5), []

    def turns_with_searches() -> None:
        for i, q in enumerate(queries):
            with session.turn(meta={"i": i}) as got:
                store.search(q, k=3)
            turns.append(len(got))

    try:
        _under_loop(store, _upsert_step(store), turns_with_searches)
        assert turns == [1] * 5
        assert [t.number for t in session.turns()] == [1, 2, 3, 4, 5]
        assert all(c.ok for c in session.verify())
    finally:
        store.close()


def test_search_inside_view_while_an_upsert_waits() -> None:
    store = _filled()
    in_view, upsert_started, seen = threading.Event(), threading.Event(), []

    def viewer() -> None:
        with store.view() as view:
            in_view.set()
            assert upsert_started.wait(TIMEOUT)
            wait_blocked(up)
            seen.append((view.seq, len(store.search(_vectors(1, 6)[0], k=3))))

    v = start(viewer, "viewer")
    ready(in_view)
    up = start(lambda: store.upsert(_vectors(10, 7), ids=[f"x{j}" for j in range(10)]), "upsert")
    upsert_started.set()
    join_all(v, up)
    assert seen == [(1, 3)] and len(store) == 2_010
