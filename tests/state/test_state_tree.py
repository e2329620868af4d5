"""The state root (state spec 2, a Merkle hash trie) against independent computations.

* History independence: random operation sequences (upserts with overwrites, deletes,
  records without vectors, texts and metadata, checkpoints and restores), applied as
  given, split into single-record calls, or replaced by a one-shot rebuild of the final
  content (sorted or shuffled, with junk written and removed on the way), give one root.
* The root equals a naive recomputation with the readable reference
  (:mod:`valori_store.spec.state_tree`) from a plain Python model of the content (ints,
  canonical JSON written here), at sizes around the split boundaries, with nodes at depth 3
  crossing the bucket/split boundary (ids mined for a shared key prefix), and after random
  single updates (the dirty-subtree update must equal a full recompute).
* Thread, JIT and SHA-256 backend independence: the same content built in subprocesses
  with NUMBA_NUM_THREADS=1/2, NUMBA_DISABLE_JIT=1 and VALORI_NO_LIBCRYPTO=1 prints the
  same root, proofs and snapshot digest, equal to the reference's root.
* Shards: stores holding the records of some first key bytes each; their fixed-subtree
  digests combine (with the reference's documented split/root digests) into the single
  store's root. There is no public combine function: the per-subtree digests come from
  ``StateTree.subtree`` (the documented hook for sharded stores).
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import valori_store
from valori_store import ValoriStore, verify_proof
from valori_store.spec import state_tree as ref

SRC = Path(valori_store.__file__).resolve().parents[1]  # the package under test (src/ of this repo)
DIM = 4
METRICS = ("cosine", "dot", "l2")  # the metric code is the index (docs/format.md)

# --------------------------------------------------------------------------- the model
# A record is (vector: tuple of DIM ints (the stored Q16.16 row) or None, text, metadata dict).


def canonical(meta: dict | None) -> bytes:
    """Canonical metadata JSON, written from the spec's prose (sorted keys, no whitespace, UTF-8)."""
    return json.dumps({} if meta is None else meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def rec_bytes(rid: str, rec: tuple) -> ref.RecordBytes:
    vec, text, meta = rec
    row = None if vec is None else struct.pack(f"<{DIM}i", *vec)
    return ref.RecordBytes(rid, text, canonical(meta), row)


def ref_root(content: dict[str, tuple], metric: str = "dot") -> str:
    """The state root recomputed from scratch by the reference."""
    return ref.state_root([rec_bytes(r, v) for r, v in content.items()], METRICS.index(metric), DIM).hex()


def floats(vec) -> list[float]:
    """Inputs whose Q16.16 value is exactly ``vec`` (v / 2**16 is exact in float64)."""
    return [x / 65536.0 for x in vec]


def put(store: ValoriStore, items: list[tuple[str, tuple]], delete: list[str] = ()) -> None:
    """One atomic write: delete ``delete``, then upsert ``items`` (ids unique), with and without vectors."""
    vec = [(r, v) for r, v in items if v[0] is not None]
    plain = [(r, v) for r, v in items if v[0] is None]
    kwargs: dict = {}
    if vec:
        kwargs.update(vectors=np.array([floats(v[0]) for _, v in vec], dtype=np.float64).reshape(len(vec), DIM),
                      ids=[r for r, _ in vec], texts=[v[1] for _, v in vec], metadatas=[v[2] for _, v in vec])
    if plain:
        kwargs.update(plain_ids=[r for r, _ in plain], plain_texts=[v[1] for _, v in plain],
                      plain_metadatas=[v[2] for _, v in plain])
    store.write(delete=list(delete), **kwargs)


def put_singly(store: ValoriStore, items: list[tuple[str, tuple]], delete: list[str] = ()) -> None:
    """The same change as :func:`put`, one call per record (delete, upsert, upsert_plain)."""
    if delete:
        store.delete(list(delete))
    for rid, (vec, text, meta) in items:
        if vec is None:
            store.upsert_plain([rid], texts=[text], metadatas=[meta])
        else:
            store.upsert([floats(vec)], ids=[rid], texts=[text], metadatas=[meta])


def store_content(store: ValoriStore) -> dict[str, tuple]:
    """What the store says it holds (for comparisons where the model is the store's own view)."""
    out = {}
    for r in store.get(store.ids()):
        out[r.id] = (None if r.vector is None else tuple(int(x) for x in r.vector), r.text, r.metadata)
    return out


def rebuild(content: dict[str, tuple], order: list[str]) -> ValoriStore:
    s = ValoriStore(dim=DIM, metric="dot")
    if order:
        put(s, [(r, content[r]) for r in order])
    return s


# --------------------------------------------------------------------------- strategies

ID_POOL = ["a", "b", "c", "doc-1", "doc-10", "doc-9", "é", "中文", "😀", "Z", "x" * 40, "tie~"]
ints = st.integers(-(1 << 22), 1 << 22)
vectors = st.tuples(*[ints] * DIM)
texts = st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)
scalars = st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=4, alphabet="abcé中")
metas = st.none() | st.dictionaries(st.sampled_from(["k", "n", "topic", "ü"]), scalars | st.lists(scalars, max_size=2),
                                    max_size=3)
records = st.tuples(st.none() | vectors, texts, metas)
batch = st.dictionaries(st.sampled_from(ID_POOL), records, max_size=5).map(lambda d: list(d.items()))
ops = st.lists(
    st.one_of(
        st.tuples(st.just("write"), st.lists(st.sampled_from(ID_POOL), max_size=3, unique=True), batch),
        st.tuples(st.just("write"), st.just([]), batch),
        st.tuples(st.just("delete"), st.lists(st.sampled_from(ID_POOL), min_size=1, max_size=4, unique=True)),
        st.tuples(st.just("checkpoint")),
        st.tuples(st.just("restore"), st.integers(0, 50)),
        st.tuples(st.just("checkpoint")),
        st.tuples(st.just("restore"), st.integers(0, 50)),
    ),
    max_size=16,
)


def apply_model(content: dict, op: tuple, cps: list[dict]) -> dict:
    kind = op[0]
    if kind == "write":
        content = dict(content)
        for rid in op[1]:
            content.pop(rid, None)
        content.update(op[2])
    elif kind == "delete":
        content = {r: v for r, v in content.items() if r not in op[1]}
    elif kind == "checkpoint":
        cps.append(dict(content))
    elif kind == "restore" and cps:
        content = dict(cps[op[1] % len(cps)])
    return content


def run_ops(store: ValoriStore, op_list: list, singly: bool, check_each: bool) -> dict:
    """Apply ``op_list`` to ``store`` and to the model; returns the model's final content."""
    content: dict = {}
    model_cps: list[dict] = []
    store_cps = []
    for op in op_list:
        kind = op[0]
        if kind == "write":
            (put_singly if singly else put)(store, op[2], op[1])
        elif kind == "delete":
            store.delete(op[1])
        elif kind == "checkpoint":
            store_cps.append(store.checkpoint())
        elif kind == "restore" and store_cps:
            cp = store_cps[op[1] % len(store_cps)]
            assert store.restore(cp) == cp
        content = apply_model(content, op, model_cps)
        if kind == "checkpoint":
            assert store_cps[-1].state_hash == ref_root(content)
        if check_each or kind == "restore":
            assert store.state_hash() == ref_root(content), op
    return content


# --------------------------------------------------------------------------- (a) history independence


@settings(deadline=None, max_examples=40)
@given(first=batch, op_list=ops, seed=st.integers(0, 2**32 - 1))
def test_history_independence(first, op_list, seed) -> None:
    op_list = [("write", [], first), ("checkpoint",), *op_list, ("restore", seed)]
    event(f"restores: {min(sum(o[0] == 'restore' for o in op_list), 3)}")
    s1 = ValoriStore(dim=DIM, metric="dot")
    final = run_ops(s1, op_list, singly=False, check_each=True)
    want = ref_root(final)
    assert s1.state_hash() == want
    # the same operations split into single-record calls (different events, same content)
    s2 = ValoriStore(dim=DIM, metric="dot")
    assert run_ops(s2, op_list, singly=True, check_each=False) == final
    assert s2.state_hash() == want
    # rebuilt from the final content alone: sorted (one write), shuffled, and shuffled
    # one at a time after writing junk over some ids and junk records deleted again
    ids = sorted(final, key=lambda r: r.encode("utf-8"))
    assert rebuild(final, ids).state_hash() == want
    rng = random.Random(seed)
    shuffled = list(ids)
    rng.shuffle(shuffled)
    assert rebuild(final, shuffled).state_hash() == want
    s3 = ValoriStore(dim=DIM, metric="dot")
    junk = [(f"junk-{i}", ((i, 0, 0, 1), None, {"j": i})) for i in range(rng.randint(0, 40))]
    put(s3, junk)
    put(s3, [(r, ((1, 2, 3, 4), "old", None) if rng.random() < 0.5 else (None, None, None)) for r in shuffled])
    put_singly(s3, [(r, final[r]) for r in shuffled])
    s3.delete([r for r, _ in junk])
    assert s3.state_hash() == want
    # and the canonical snapshot carries the same root
    assert ValoriStore.from_bytes(s1.to_bytes()).state_hash() == want
    assert s1.to_bytes() == s2.to_bytes() == s3.to_bytes()


def test_history_independence_of_a_larger_state() -> None:
    """Thousands of records arriving in different batchings, with interleaved deletes and
    re-inserts, and a restore that rewinds through them, give the same root."""
    rng = np.random.default_rng(7)
    n = 3000
    ids = [f"r{i:05d}" for i in range(n)]
    content = {}
    for i, rid in enumerate(ids):
        vec = None if i % 9 == 0 else tuple(int(x) for x in rng.integers(-(1 << 20), 1 << 20, DIM))
        content[rid] = (vec, None if i % 4 else f"t{i}", {"i": i} if i % 3 else None)
    want = ref_root(content)
    a = rebuild(content, ids)
    b = ValoriStore(dim=DIM, metric="dot")
    perm = rng.permutation(n)
    for chunk in np.array_split(perm, 37):
        put(b, [(ids[k], ((9, 9, 9, 9), "junk", None)) for k in chunk[::2]])  # overwritten below
        put(b, [(ids[k], content[ids[k]]) for k in chunk])
    cp = b.checkpoint("all")
    b.delete(ids[::5])
    put(b, [(f"extra{i}", ((i, 1, 1, 1), None, None)) for i in range(500)])
    assert b.state_hash() != want
    b.restore(cp)
    assert a.state_hash() == b.state_hash() == cp.state_hash == want


# --------------------------------------------------------------------------- (b) naive recomputation


def _content(n: int, seed: int, prefix: str = "r") -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        vec = None if i % 7 == 3 else tuple(int(x) for x in rng.integers(-(1 << 24), 1 << 24, DIM))
        out[f"{prefix}{i}-é" if i % 11 == 0 else f"{prefix}{i}"] = (
            vec, None if i % 5 == 0 else f"text {i}", {"i": i, "s": "中" * (i % 3)} if i % 2 else None)
    return out


@pytest.mark.parametrize("n", [0, 1, 2, 15, 16, 17, 255, 256, 257, 16 * 256, 16 * 256 + 1, 6000])
def test_root_equals_reference_at_sizes(n: int) -> None:
    content = _content(n, n)
    want = ref_root(content)
    assert rebuild(content, list(content)).state_hash() == want
    # grown in uneven batches (the dirty-subtree path) up to the same content
    s = ValoriStore(dim=DIM, metric="dot")
    items = list(content.items())
    at = 0
    for size in (1, 2, 13, 300):
        put(s, items[at:at + size])
        at += size
    put(s, items[at:])
    assert s.state_hash() == want
    for metric in ("cosine", "l2"):
        # other metrics: the root holds the metric code; the stored (for cosine: normalised)
        # rows come from the store, the tree is recomputed by the reference
        t = ValoriStore(dim=DIM, metric=metric)
        nonzero = {r: ((v[0] if v[0] is None or any(v[0]) else (1, 0, 0, 0)), v[1], v[2]) for r, v in content.items()}
        put(t, list(nonzero.items()))
        assert t.state_hash() == ref_root(store_content(t), metric)
        if metric == "l2":
            assert store_content(t) == {r: (v[0], v[1], v[2] or {}) for r, v in nonzero.items()}


def _mine(n: int, nibbles: int, want: int, skip: set[bytes] = frozenset()) -> tuple[list[str], bytes]:
    """``want`` ids whose keys share their first ``nibbles`` nibbles (cheap: hashlib over n candidates)."""
    groups: dict[bytes, list[str]] = {}
    for i in range(n):
        rid = f"m{i}"
        k = ref.key_of(rid)
        head = k[: (nibbles + 1) // 2]
        if nibbles % 2:
            head = head[:-1] + bytes([head[-1] & 0xF0])
        if head in skip:
            continue
        groups.setdefault(head, []).append(rid)
    head, best = max(groups.items(), key=lambda kv: (len(kv[1]), kv[0]))
    assert len(best) >= want, (len(best), want)
    return best[:want], head


def test_depth_3_node_crosses_the_split_boundary_both_ways() -> None:
    """A depth-3 node going 1 -> 30 -> 0 records (16 is a bucket, 17 is split) inside a split
    depth-2 node: after every single upsert/delete the root equals the reference's."""
    group, head = _mine(60000, 3, 30)
    first = head[0]
    # 20 more ids with the same first key byte but another third nibble: the depth-2 node is split
    others = [rid for rid in (f"o{i}" for i in range(20000))
              if ref.key_of(rid)[0] == first and (ref.key_of(rid)[1] >> 4) != (head[1] >> 4)][:20]
    assert len(others) == 20
    rng = random.Random(3)
    content = {rid: ((i, -i, 2 * i, 7), f"o{i}", None) for i, rid in enumerate(others)}
    content.update(_content(50, 1, "bg"))
    s = rebuild(content, list(content))
    assert s.state_hash() == ref_root(content)
    proofs_depth = set()
    for i, rid in enumerate(group):
        rec = (None, "plain", {"g": i}) if i % 4 == 0 else ((i, i + 1, rng.randint(-99, 99), 0), None, {"g": i})
        put(s, [(rid, rec)])
        content[rid] = rec
        assert s.state_hash() == ref_root(content), i
        proofs_depth.add(len(s.prove([rid])[0].path))
    assert proofs_depth == {3, 4}  # bucket at depth 3 up to 16 records, then split at depth 3
    for i, rid in enumerate(rng.sample(group, len(group))):
        if i % 3 == 0:  # overwrite first (the same key: its subtree only)
            rec = ((5, 5, 5, i), "new", None)
            put(s, [(rid, rec)])
            content[rid] = rec
            assert s.state_hash() == ref_root(content)
        s.delete([rid])
        del content[rid]
        assert s.state_hash() == ref_root(content)


def test_incremental_single_updates_equal_full_recompute() -> None:
    """Random single changes on a few thousand records (each dirties one subtree, the cached
    256 subtree digests are reused): after each, the root equals the reference's from
    scratch, and a batch touching many subtrees at once (the global-sort path) too."""
    content = _content(5000, 11)
    s = rebuild(content, list(content))
    # the reference with cached leaves (recomputing 5000 leaves per step would be slow); the
    # trie itself is rebuilt from scratch every time
    leaves = {r: (ref.key_of(r), ref.leaf_of(rec_bytes(r, v))) for r, v in content.items()}

    def root() -> str:
        return ref.root_of(ref.node_digest(sorted(leaves.values()), 0), METRICS.index("dot"), DIM).hex()

    assert s.state_hash() == root() == ref_root(content)
    rng = random.Random(5)
    names = list(content)
    kinds = ["overwrite", "delete", "insert", "to-plain", "to-vector", "text", "meta", "batch"]
    for step in range(60):
        kind = kinds[step % len(kinds)] if step < len(kinds) else rng.choice(kinds)
        written: dict[str, tuple] = {}
        removed: list[str] = []
        if kind == "batch":  # 8..40 records: enough dirty subtrees for the one-global-sort refresh
            picks = rng.sample(names, rng.randint(8, 40))
            written = {r: ((rng.randint(-9, 9), step, 1, 2), None, None) for r in picks}
            removed = [r for r in rng.sample(names, 5) if r not in written]
            put(s, list(written.items()), removed)
        elif kind == "insert":
            written = {f"new-{step}": ((step, 0, -step, 1), "n", {"step": step})}
            put(s, list(written.items()))
        elif kind == "delete":
            removed = [rng.choice(names)]
            assert s.delete(removed) == 1
        else:
            r = rng.choice(names)
            vec, text, meta = content[r]
            if kind == "overwrite":
                vec = (rng.randint(-5, 5), 1, 2, 3)
            elif kind == "to-plain":
                vec = None
            elif kind == "to-vector":
                vec = (0, 0, 0, step)
            elif kind == "text":
                text = None if text else "changed"
            else:
                meta = {"m": step}
            written = {r: (vec, text, meta)}
            put(s, list(written.items()))
        for r in removed:
            del content[r]
            del leaves[r]
            names.remove(r)
        for r, v in written.items():
            if r not in content:
                names.append(r)
            content[r] = v
            leaves[r] = (ref.key_of(r), ref.leaf_of(rec_bytes(r, v)))
        assert s.state_hash() == root(), (step, kind)
    assert s.state_hash() == ref_root(content)
    assert store_content(s) == {r: (v[0], v[1], v[2] or {}) for r, v in content.items()}


# --------------------------------------------------------------------------- (c) threads, JIT, SHA backend

_SCRIPT = r"""
import hashlib, json, sys
import numpy as np
from valori_store import ValoriStore
from valori_store.kernels.sha import SHA256_FN
DIM = 4
rng = np.random.default_rng(2024)
n = 1500
ids = [f"r{i}" if i % 13 else f"r{i}-\u00e9\u4e2d" for i in range(n)]
rows = rng.integers(-(1 << 24), 1 << 24, (n, DIM))
s = ValoriStore(dim=DIM, metric="dot")
plain = [i for i in range(n) if i % 7 == 3]
vec = [i for i in range(n) if i % 7 != 3]
for part in np.array_split(np.array(vec), 5):
    s.upsert(rows[part] / 65536.0, ids=[ids[i] for i in part], texts=[f"t{i}" if i % 3 else None for i in part],
             metadatas=[{"i": int(i)} if i % 2 else None for i in part])
s.upsert_plain([ids[i] for i in plain], texts=[f"p{i}" for i in plain], metadatas=[{"p": int(i)} for i in plain])
s.delete(ids[::10])
s.upsert(rows[:50] / 131072.0, ids=ids[:50])
cp = s.checkpoint()
s.delete(ids[100:400])
s.restore(cp)
proofs = [json.dumps(p.to_dict(), sort_keys=True) for p in s.prove([ids[1], ids[3], ids[10], "absent", ids[13]])]
print("backend", "kernel" if SHA256_FN else "hashlib")
print("root", s.state_hash())
print("proofs", hashlib.sha256("\n".join(proofs).encode()).hexdigest())
print("snapshot", hashlib.sha256(s.to_bytes()).hexdigest())
b = ValoriStore.from_bytes(s.to_bytes())
print("reloaded", b.state_hash())
"""


def _script_content() -> dict[str, tuple]:
    """The subprocess script's final content, rebuilt here with plain Python."""
    rng = np.random.default_rng(2024)
    n = 1500
    ids = [f"r{i}" if i % 13 else f"r{i}-\u00e9\u4e2d" for i in range(n)]
    rows = rng.integers(-(1 << 24), 1 << 24, (n, DIM)).tolist()
    content = {}
    for i in range(n):
        if i % 7 == 3:
            content[ids[i]] = (None, f"p{i}", {"p": i})
        else:
            content[ids[i]] = (tuple(rows[i]), f"t{i}" if i % 3 else None, {"i": i} if i % 2 else None)
    for r in ids[::10]:
        del content[r]
    for i in range(50):  # x / 131072 quantised: round half to even of x / 2
        q = tuple(round(x / 2) for x in rows[i])
        content[ids[i]] = (q, None, None)
    return content


def _run(env_extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NUMBA_DISABLE_JIT", "VALORI_NO_LIBCRYPTO",
                                                            "NUMBA_NUM_THREADS")}
    env.update({"PYTHONPATH": str(SRC), **env_extra})
    out = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600,
                         check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    return dict(line.split(" ", 1) for line in out.stdout.splitlines())


def test_root_is_independent_of_threads_jit_and_sha_backend() -> None:
    variants = {
        "default": {},
        "threads-1": {"NUMBA_NUM_THREADS": "1"},
        "threads-2": {"NUMBA_NUM_THREADS": "2"},
        "jit-off": {"NUMBA_DISABLE_JIT": "1"},
        "no-libcrypto": {"VALORI_NO_LIBCRYPTO": "1"},
    }
    outs = {name: _run(env) for name, env in variants.items()}
    backends = {name: o.pop("backend") for name, o in outs.items()}
    # the variants really took the paths they name (libcrypto is available on this machine)
    assert backends == {"default": "kernel", "threads-1": "kernel", "threads-2": "kernel", "jit-off": "hashlib",
                        "no-libcrypto": "hashlib"}
    first = outs["default"]
    assert all(o == first for o in outs.values()), outs
    assert first["root"] == first["reloaded"] == ref_root(_script_content())


# --------------------------------------------------------------------------- (d) shards


def _subtrees(store: ValoriStore) -> list[tuple[bytes, int]]:
    """(digest, count) of the 256 fixed subtrees (internal: ``StateTree.subtree``)."""
    tree = store._live.table.tree
    return [tree.subtree(len(store), b) for b in range(256)]


def _combine(subs: list[tuple[bytes, int]], metric: str) -> str:
    """The root from the 256 depth-2 subtree digests, by the reference's documented rule: the
    top two levels are split nodes ``H[node](u64 count || 16 children)``."""
    level1 = [ref.split_digest(sum(c for _, c in subs[16 * h:16 * h + 16]), [d for d, _ in subs[16 * h:16 * h + 16]])
              for h in range(16)]
    top = ref.split_digest(sum(c for _, c in subs), level1)
    return ref.root_of(top, METRICS.index(metric), DIM).hex()


@pytest.mark.parametrize("n", [40, 5000])
def test_shards_by_first_key_byte_combine_into_the_root(n: int) -> None:
    content = _content(n, 99)
    whole = rebuild(content, list(content))
    want = ref_root(content)
    assert whole.state_hash() == want
    empty = ref.bucket_digest([])
    by_byte: dict[int, list] = {}
    for rid, rec in content.items():
        k = ref.key_of(rid)
        by_byte.setdefault(k[0], []).append((k, ref.leaf_of(rec_bytes(rid, rec))))
    for grouping in (lambda b: b % 3, lambda b: b // 64, lambda b: 0 if b == 0x7F else 1):
        shards: dict[int, dict] = {}
        owner = {}
        for rid, rec in content.items():
            b = ref.key_of(rid)[0]
            shards.setdefault(grouping(b), {})[rid] = rec
        for b in range(256):
            owner[b] = grouping(b)
        stores = {g: rebuild(c, sorted(c)) for g, c in shards.items()}
        subs = []
        for b in range(256):
            g = owner[b]
            if g not in stores:
                subs.append((empty, 0))
                continue
            digest, count = _subtrees(stores[g])[b]
            mine = sorted(by_byte.get(b, []))
            assert (digest, count) == (ref.node_digest(mine, 2), len(mine)), b  # each subtree, independently
            subs.append((digest, count))
        assert _combine(subs, "dot") == want
        for g, s in stores.items():  # each shard alone: the other subtrees are empty buckets
            own = [sub if owner[b] == g else (empty, 0) for b, sub in enumerate(_subtrees(s))]
            assert s.state_hash() == _combine(own, "dot") == ref_root(shards[g])
    assert _combine(_subtrees(whole), "dot") == want


def test_concurrent_readers_compute_the_same_root() -> None:
    """Roots and proofs are computed lazily under the shared read lock: readers racing on a
    freshly dirtied tree (every subtree dirty) all get the reference's root."""
    from concurrent.futures import ThreadPoolExecutor

    content = _content(3000, 21)
    want = ref_root(content)
    for rounds in range(3):
        s = ValoriStore(dim=DIM, metric="dot")
        put(s, list(content.items()))
        ids = list(content)[rounds::97]
        with ThreadPoolExecutor(max_workers=4) as pool:
            roots = list(pool.map(lambda _: s.state_hash(), range(8)))
            proofs = list(pool.map(lambda r: s.prove([r])[0], ids))
        assert set(roots) == {want}
        assert all(p.root == want and verify_proof(want, p).status == "present" for p in proofs)


def test_updates_after_reopening_from_an_image(tmp_path: Path) -> None:
    """Reopened from an image only the 256 subtree digests are known (from the checked pages);
    the depth-3 nodes of a subtree are computed when it first changes: single changes after
    the reopen (inside a split depth-3 node, a bucket one, and another subtree) keep the root
    equal to the reference's, and so do changes after the first."""
    group, _ = _mine(60000, 3, 24)  # one depth-3 node of 24 records: split
    content = _content(3000, 5, "bg")
    content.update({rid: ((i, 1, -i, 3), None, {"g": i}) for i, rid in enumerate(group)})
    with ValoriStore.open(tmp_path / "s", dim=DIM, metric="dot", durability="none") as s:
        put(s, [(r, content[r]) for r in content])
        s.write_image()
        assert s.state_hash() == ref_root(content)
    changes = [(group[0], ((9, 9, 9, 9), "x", None)), ("bg7", ((1, 2, 3, 4), None, None)),
               (group[1], None), ("new-one", ((4, 3, 2, 1), "n", {"k": 1})), (group[2], ((0, 0, 1, 0), None, None))]
    with ValoriStore.open(tmp_path / "s") as s:
        assert s.state_hash() == ref_root(content)
        for rid, rec in changes:
            if rec is None:
                s.delete([rid])
                del content[rid]
            else:
                put(s, [(rid, rec)])
                content[rid] = rec
            assert s.state_hash() == ref_root(content), rid
