"""Restore versus replay on durable stores (state spec 2).

Random operation sequences with checkpoints, images (``write_image``), syncs and reopens:
``restore(cp)`` gives exactly ``cp.state_hash``; that equals ``state_at(cp.seq)``, the root
the readable reference computes from a plain model of the checkpoint's content, a fresh
replay of the directory (``valori_store.verify``) and the state after reopening. Every
logged position's ``state_at`` equals the model's root there. Images change the path a
restore takes (store/undo.py: events after the newest image at or before the checkpoint,
else a page of that image); restores here must take the incremental path (the full
rebuild is only a fallback) and still be exact. A deterministic test adds pages below the
fixed subtrees (a small page limit), compaction and a restore across a reopen.
"""

from __future__ import annotations

import json
import struct
from contextlib import contextmanager
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from valori_store import ValoriStore, verify
from valori_store.spec import state_tree as ref
from valori_store.state import merkle
from valori_store.store import checkpoints as cp_module

DIM = 4
METRIC = "l2"
CODE = ("cosine", "dot", "l2").index(METRIC)


def canonical(meta: dict | None) -> bytes:
    return json.dumps({} if meta is None else meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def ref_root(content: dict[str, tuple]) -> str:
    recs = [ref.RecordBytes(r, t, canonical(m), None if v is None else struct.pack(f"<{DIM}i", *v))
            for r, (v, t, m) in content.items()]
    return ref.state_root(recs, CODE, DIM).hex()


def put(store: ValoriStore, items: list[tuple[str, tuple]], delete: list[str] = ()) -> None:
    vec = [(r, v) for r, v in items if v[0] is not None]
    plain = [(r, v) for r, v in items if v[0] is None]
    kwargs: dict = {}
    if vec:
        kwargs.update(vectors=np.array([[x / 65536.0 for x in v[0]] for _, v in vec]).reshape(len(vec), DIM),
                      ids=[r for r, _ in vec], texts=[v[1] for _, v in vec], metadatas=[v[2] for _, v in vec])
    if plain:
        kwargs.update(plain_ids=[r for r, _ in plain], plain_texts=[v[1] for _, v in plain],
                      plain_metadatas=[v[2] for _, v in plain])
    store.write(delete=list(delete), **kwargs)


def content_of(store: ValoriStore) -> dict[str, tuple]:
    return {r.id: (None if r.vector is None else tuple(int(x) for x in r.vector), r.text, r.metadata or None)
            for r in store.get(store.ids())}


def normal(content: dict) -> dict:
    return {r: (v, t, m or None) for r, (v, t, m) in content.items()}


@contextmanager
def restore_paths():
    """Records whether each restore took the incremental path (True) or fell back (False)."""
    seen: list[bool] = []
    real = cp_module._restore_incrementally

    def spy(live, cp):
        ok = real(live, cp)
        seen.append(ok)
        return ok

    with mock.patch.object(cp_module, "_restore_incrementally", spy):
        yield seen


# --------------------------------------------------------------------------- strategies

IDS = [f"k{i}" for i in range(10)] + ["é", "中", "😀"]
records = st.tuples(st.none() | st.tuples(*[st.integers(-(1 << 20), 1 << 20)] * DIM),
                    st.none() | st.sampled_from(["", "t", "ü"]),
                    st.none() | st.fixed_dictionaries({"n": st.integers(0, 3)}))
batch = st.dictionaries(st.sampled_from(IDS), records, min_size=1, max_size=4).map(lambda d: list(d.items()))
op = st.one_of(
    st.tuples(st.just("write"), st.lists(st.sampled_from(IDS), max_size=2, unique=True), batch),
    st.tuples(st.just("write"), st.just([]), batch),
    st.tuples(st.just("delete"), st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True)),
    st.tuples(st.just("checkpoint")),
    st.tuples(st.just("restore"), st.integers(0, 99)),
    st.tuples(st.just("checkpoint")),
    st.tuples(st.just("restore"), st.integers(0, 99)),
    st.tuples(st.just("image")),
    st.tuples(st.just("reopen")),
    st.tuples(st.just("sync")),
)


class Run:
    """A durable store and its model, driven op by op."""

    def __init__(self, path):
        self.path = path
        self.store = ValoriStore.open(path, dim=DIM, metric=METRIC, durability="batch")
        self.content: dict[str, tuple] = {}
        self.cps: list[tuple] = []  # (Checkpoint, model content)
        self.roots: dict[int, str] = {0: ref_root({})}
        self.restored = 0

    def record(self) -> None:
        self.roots[self.store.log_length - 1] = ref_root(self.content)

    def apply(self, o: tuple) -> None:
        s, kind = self.store, o[0]
        if kind == "write":
            put(s, o[2], o[1])
            for r in o[1]:
                self.content.pop(r, None)
            self.content.update({r: (v, t, m or None) for r, (v, t, m) in o[2]})
        elif kind == "delete":
            s.delete(o[1])
            for r in o[1]:
                self.content.pop(r, None)
        elif kind == "checkpoint":
            cp = s.checkpoint(f"cp{len(self.cps)}")
            assert cp.state_hash == ref_root(self.content)
            self.cps.append((cp, dict(self.content)))
        elif kind == "restore" and self.cps:
            cp, past = self.cps[o[1] % len(self.cps)]
            got = s.restore(cp)
            assert got == cp
            self.content = dict(past)
            self.restored += 1
            assert s.state_hash() == cp.state_hash == ref_root(past)
            assert s.state_at(cp.seq).state_hash == cp.state_hash
            assert content_of(s) == past
        elif kind == "image":
            s.write_image()
        elif kind == "reopen":
            s.close()
            self.store = ValoriStore.open(self.path, durability="batch")
            assert self.store.state_hash() == ref_root(self.content)
            assert [c.seq for c in self.store.history()] == [c.seq for c, _ in self.cps]
        elif kind == "sync":
            s.sync()
        self.record()

    def finish(self, sample: int = 12) -> None:
        s = self.store
        head = s.state_hash()
        assert head == ref_root(self.content)
        seqs = sorted(self.roots)
        picks = seqs if len(seqs) <= sample else [seqs[i * (len(seqs) - 1) // (sample - 1)] for i in range(sample)]
        for seq in picks:  # every sampled position: images plus a partial replay
            assert s.state_at(seq).state_hash == self.roots[seq], seq
        s.close()
        report = verify(self.path)  # a fresh replay from the log
        assert report.ok, report.problems
        assert report.state_hash == head
        with ValoriStore.open(self.path, durability="batch") as again:
            assert again.state_hash() == head
            assert content_of(again) == self.content
            for cp, past in self.cps:  # restore across the reopen
                assert again.restore(cp).state_hash == ref_root(past) == again.state_hash()


@settings(deadline=None, max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(first=batch, ops=st.lists(op, max_size=16), last=st.integers(0, 99))
def test_restore_equals_checkpoint_state_at_and_replay(tmp_path_factory, first, ops, last) -> None:
    run = Run(tmp_path_factory.mktemp("store"))
    try:
        with restore_paths() as paths:
            for o in [("write", [], first), ("checkpoint",), *ops, ("restore", last)]:
                run.apply(o)
        assert all(paths), paths  # restores are incremental (the full path is only a fallback)
        event(f"restores: {min(run.restored, 3)}")
        run.finish()
    finally:
        run.store.close()


# --------------------------------------------------------------------------- deterministic cases


def _records(n: int, seed: int, prefix: str) -> list[tuple[str, tuple]]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        vec = None if i % 5 == 4 else tuple(int(x) for x in rng.integers(-(1 << 20), 1 << 20, DIM))
        out.append((f"{prefix}{i}", (vec, f"t{i}" if i % 3 else None, {"i": i} if i % 2 else None)))
    return out


def test_restore_through_images_at_and_around_checkpoints(tmp_path) -> None:
    """Images exactly at a checkpoint, after it (restore then reads the pages of an older
    image or replays from the start) and between checkpoints; restores in both directions."""
    run = Run(tmp_path / "s")
    try:
        with restore_paths() as paths:
            run.apply(("write", [], _records(300, 1, "a")))
            run.apply(("checkpoint",))  # cp0: no image at or before it
            run.apply(("write", [f"a{i}" for i in range(0, 300, 3)], _records(50, 2, "b")))
            run.apply(("checkpoint",))  # cp1
            run.apply(("image",))  # image exactly at cp1
            run.apply(("write", [], [(f"a{i}", ((i, i, i, i), "over", None)) for i in range(1, 300, 3)]))
            run.apply(("checkpoint",))  # cp2
            run.apply(("write", ["b1", "b2"], _records(20, 3, "a")))  # overwrites a0..a19
            run.apply(("image",))  # an image after cp2
            run.apply(("delete", [f"a{i}" for i in range(40, 120)]))
            for target in (2, 0, 1, 2, 1, 0, 2):
                run.apply(("restore", target))
                run.apply(("write", [], [(f"x{target}", ((target, 0, 0, 0), None, None))]))
            run.apply(("reopen",))
            run.apply(("restore", 1))
            run.apply(("image",))
            run.apply(("restore", 0))
        assert len(paths) == 9 and all(paths), paths
        run.finish(sample=16)
    finally:
        run.store.close()


def _crowded(n: int, first_byte: int, prefix: str) -> list[str]:
    """``n`` ids whose keys start with ``first_byte`` (all in one fixed subtree)."""
    out, i = [], 0
    while len(out) < n:
        rid = f"{prefix}{i}"
        if ref.key_of(rid)[0] == first_byte:
            out.append(rid)
        i += 1
    return out


def test_restore_and_reopen_with_pages_below_the_fixed_subtrees(tmp_path, monkeypatch) -> None:
    """A page limit of 17 records (real stores: 4096, reached only past ~1M records) and 400
    records crowded into one fixed subtree make images hold trie nodes of depth 3 and 4:
    reopening, state_at and restore (which reads single records from image pages) use them."""
    monkeypatch.setattr(merkle.StateTree.pages, "__defaults__", (17,))
    crowd = _crowded(400, 0x5A, "p")
    recs = dict(_records(len(crowd), 4, "tmp"))
    base = [(rid, recs[f"tmp{i}"]) for i, rid in enumerate(crowd)] + _records(40, 8, "o")
    run = Run(tmp_path / "s")
    try:
        with restore_paths() as paths:
            run.apply(("write", [], base))
            run.apply(("image",))
            run.apply(("checkpoint",))  # cp0, at the image
            run.apply(("write", crowd[::7], [(r, ((7, 7, 7, 7), "moved", None)) for r in crowd[1::5]]))
            run.apply(("checkpoint",))  # cp1
            run.apply(("image",))
            run.apply(("write", crowd[2::9], [(r, (None, "plain", {"n": 1})) for r in crowd[3::4]]))
            run.apply(("reopen",))
            run.apply(("restore", 0))  # values from the image pages at cp0
            run.apply(("restore", 1))
            run.apply(("reopen",))
            run.apply(("restore", 0))
        assert all(paths) and len(paths) == 3
        from valori_store.storage import page_store

        depths = {p.depth for m in page_store.manifests(run.path) for p in m.pages}
        assert {2, 3, 4} <= depths, depths
        run.finish()
    finally:
        run.store.close()


def test_restore_after_compaction_and_reopen(tmp_path) -> None:
    run = Run(tmp_path / "s")
    try:
        run.apply(("write", [], _records(200, 6, "c")))
        run.apply(("checkpoint",))
        run.apply(("write", ["c1", "c2"], _records(30, 7, "d")))
        run.apply(("checkpoint",))
        run.apply(("write", [], [("c5", ((9, 9, 9, 9), "late", None))]))
        head = run.store.state_hash()
        cp1 = run.cps[1][0]
        run.store.compact(before=cp1)
        assert run.store.state_hash() == head
        run.roots = {seq: root for seq, root in run.roots.items() if seq >= cp1.seq}
        with restore_paths() as paths:
            run.apply(("restore", 1))
            run.apply(("reopen",))
            run.apply(("write", [], [("c6", ((1, 1, 1, 1), None, None))]))
            run.apply(("restore", 1))
        assert all(paths)
        run.cps = run.cps[1:]  # cp0 is before the compaction: its state is gone
        run.finish()
    finally:
        run.store.close()


def test_in_memory_store_from_a_snapshot_restores_and_replays() -> None:
    """A store made by ``from_bytes`` logs its content as one event: restoring records that
    came from the snapshot, and state_at every position, follow the model."""
    src = ValoriStore(dim=DIM, metric=METRIC)
    put(src, _records(120, 9, "s"))
    content = normal(content_of(src))
    s = ValoriStore.from_bytes(src.to_bytes())
    roots = {s.log_length - 1: ref_root(content)}
    with restore_paths() as paths:
        cp = s.checkpoint()
        put(s, [("s1", ((1, 1, 1, 1), None, None)), ("s4", ((2, 2, 2, 2), "x", None))], ["s2", "s3", "s9"])
        s.delete(["s0"])
        roots[s.log_length - 1] = ref_root(normal(content_of(s)))
        assert s.restore(cp).state_hash == ref_root(content) == s.state_hash()
        put(s, [("s5", (None, "now plain", {"n": 5}))])
        s.restore(cp)
    assert paths == [True, True]
    assert normal(content_of(s)) == content
    for seq, root in roots.items():
        assert s.state_at(seq).state_hash == root
