"""Inclusion and absence proofs (``store.prove``, ``valori_store.verify_proof``).

Every proof verifies against the store's root and equals the proof the readable reference
(:mod:`valori_store.spec.state_tree`) derives from a plain model of the content; absent ids
prove absent; any edit to a proof (record bytes, siblings, bucket, counts, id, path length,
present/absent) or a check against another state's root fails; proofs survive JSON; their
size grows like the trie's depth; they hold after compaction and reopen; bad input raises
InputError and changes nothing.
"""

from __future__ import annotations

import base64
import copy
import json
import struct

import numpy as np
import pytest

from valori_store import IdError, InputError, StateProof, ValoriStore, verify_proof
from valori_store.spec import state_tree as ref

DIM = 5
METRIC = "dot"
CODE = ("cosine", "dot", "l2").index(METRIC)


def canonical(meta: dict | None) -> bytes:
    return json.dumps({} if meta is None else meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def rec_bytes(rid: str, rec: tuple) -> ref.RecordBytes:
    vec, text, meta = rec
    return ref.RecordBytes(rid, text, canonical(meta), None if vec is None else struct.pack(f"<{DIM}i", *vec))


def content_of(n: int, seed: int, extra: list[str] = ()) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    ids = [f"doc-{i}" if i % 17 else f"doc-{i}-ü中😀" for i in range(n)] + list(extra)
    out = {}
    for i, rid in enumerate(ids):
        vec = None if i % 6 == 5 else tuple(int(x) for x in rng.integers(-(1 << 24), 1 << 24, DIM))
        meta = {"i": i, "tags": ["a", "é"][: i % 3]} if i % 2 else None
        out[rid] = (vec, None if i % 4 == 0 else f"text «{i}»", meta)
    return out


def build(content: dict[str, tuple], store: ValoriStore | None = None) -> ValoriStore:
    s = store if store is not None else ValoriStore(dim=DIM, metric=METRIC)
    vec = [(r, v) for r, v in content.items() if v[0] is not None]
    plain = [(r, v) for r, v in content.items() if v[0] is None]
    if vec:
        s.upsert(np.array([[x / 65536.0 for x in v[0]] for _, v in vec]), ids=[r for r, _ in vec],
                 texts=[v[1] for _, v in vec], metadatas=[v[2] for _, v in vec])
    if plain:
        s.upsert_plain([r for r, _ in plain], texts=[v[1] for _, v in plain], metadatas=[v[2] for _, v in plain])
    return s


def reference_proof_dict(content: dict[str, tuple], rid: str, root: str) -> dict:
    """The proof dict as the reference derives it (its JSON layout as the docstring of
    query/proof.py describes it)."""
    recs = [rec_bytes(r, v) for r, v in content.items()]
    p = ref.prove(recs, rid, CODE, DIM)
    rec = content.get(rid)
    return {
        "version": 1, "root": root, "id": rid, "present": rec is not None, "metric_code": CODE, "dim": DIM,
        "path": [{"count": st.count, "siblings": [d.hex() for d in st.siblings]} for st in p.path],
        "bucket": [[k.hex(), v.hex()] for k, v in p.bucket],
        "text": None if rec is None else rec[1],
        "metadata": None if rec is None else canonical(rec[2]).decode("utf-8"),
        "vector": None if rec is None or rec[0] is None else base64.b64encode(
            struct.pack(f"<{DIM}i", *rec[0])).decode(),
    }


def mined(nibbles: int, want: int, n: int) -> list[str]:
    """``want`` ids whose keys share their first ``nibbles`` nibbles."""
    groups: dict[bytes, list[str]] = {}
    for i in range(n):
        rid = f"deep-{i}"
        k = ref.key_of(rid)
        head = k[: nibbles // 2] + (bytes([k[nibbles // 2] & 0xF0]) if nibbles % 2 else b"")
        groups.setdefault(head, []).append(rid)
    best = max(groups.values(), key=len)
    assert len(best) >= want
    return best[:want]


@pytest.fixture(scope="module")
def world():
    """A few hundred records plus 24 ids sharing a 3-nibble key prefix (a split depth-3 node)."""
    deep = mined(3, 24, 60000)
    content = content_of(400, 1, deep)
    store = build(content)
    root = store.state_hash()
    assert root == ref.state_root([rec_bytes(r, v) for r, v in content.items()], CODE, DIM).hex()
    return content, store, root, deep


def absent_ids(content: dict, deep: list[str]) -> list[str]:
    # neighbours of the deep group share its long prefix only by chance; add random absent
    # ids and ids of empty subtrees
    out = [f"nope-{i}" for i in range(60)] + ["doc-1 ", "Doc-1"]
    empty_bytes = set(range(256)) - {ref.key_of(r)[0] for r in content}
    i = 0
    while empty_bytes and len(out) < 80:
        rid = f"empty-{i}"
        if ref.key_of(rid)[0] in empty_bytes:
            empty_bytes.discard(ref.key_of(rid)[0])
            out.append(rid)
        i += 1
    head = ref.key_of(deep[0])
    found, i = 0, 0
    while found < 8:  # absent, inside the deep group's split depth-3 node
        rid = f"beside-{i}"
        k = ref.key_of(rid)
        if k[0] == head[0] and k[1] >> 4 == head[1] >> 4 and rid not in content:
            out.append(rid)
            found += 1
        i += 1
    return out


# --------------------------------------------------------------------------- valid proofs


def test_every_proof_verifies_and_equals_the_reference(world) -> None:
    content, store, root, deep = world
    ids = list(content)
    proofs = store.prove(ids)
    assert [p.id for p in proofs] == ids
    depths = set()
    for p in proofs:
        check = verify_proof(root, p)
        assert (check.status, check.ok, check.id) == ("present", True, p.id)
        assert p.to_dict() == reference_proof_dict(content, p.id, root)
        assert ref.verify_proof(bytes.fromhex(root), _as_ref(p))  # the reference's own checker
        depths.add(len(p.path))
        if content[p.id][0] is not None:
            assert p.vector_ints().tolist() == list(content[p.id][0])
        else:
            assert p.vector is None and p.vector_ints() is None
    assert {2, 3, 4} <= depths  # buckets at depth 2, 3 (a split subtree) and 4 (the deep group)
    for rid in deep:
        assert len(store.prove([rid])[0].path) == 4


def test_absent_ids_prove_absent(world) -> None:
    content, store, root, deep = world
    out = absent_ids(content, deep)
    proofs = store.prove(out)
    empties = 0
    for p in proofs:
        assert not p.present and p.text is None and p.metadata is None and p.vector is None
        assert verify_proof(root, p).status == "absent"
        assert p.to_dict() == reference_proof_dict(content, p.id, root)
        empties += p.bucket == []
    assert empties >= 1
    assert any(len(p.path) == 4 for p in proofs)  # an absence inside the deep group's split node
    empty = ValoriStore(dim=DIM, metric=METRIC)
    (p,) = empty.prove(["anything"])
    assert verify_proof(empty.state_hash(), p).status == "absent" and len(p.path) == 2 and p.bucket == []
    assert p.to_dict() == reference_proof_dict({}, "anything", empty.state_hash())


def test_proof_survives_json_round_trip(world) -> None:
    _, store, root, deep = world
    for p in store.prove([deep[0], "doc-5", "doc-3", "nope-1"]):
        text = json.dumps(p.to_dict(), sort_keys=True)
        back = StateProof.from_dict(json.loads(text))
        assert back == p and back.to_dict() == p.to_dict()
        assert verify_proof(root, json.loads(text)).ok  # a plain dict works too
        assert verify_proof(bytes.fromhex(root), back).ok
        assert json.dumps(back.to_dict(), sort_keys=True) == text


def test_proofs_of_an_old_state_hold_for_its_root_only(world) -> None:
    content, _, root, deep = world
    s = build(content)
    old = s.prove(["doc-1", "doc-5", "nope-3", deep[1]])
    s.upsert([[1.0] * DIM], ids=["doc-1"])  # a change in one subtree only
    s.upsert_plain(["nope-3"])
    new_root = s.state_hash()
    assert new_root != root
    for p in old:
        assert verify_proof(root, p).ok
        check = verify_proof(new_root, p)
        assert check.status == "invalid" and "another state root" in check.message
        # rewriting the proof's root field does not help: the digests lead to the old root
        forged = {**p.to_dict(), "root": new_root}
        assert verify_proof(new_root, forged).status == "invalid"
    for p in s.prove(["doc-1", "doc-5", "nope-3", deep[1]]):
        assert verify_proof(new_root, p).ok and not verify_proof(root, p).ok
    assert [verify_proof(new_root, q).status for q in s.prove(["nope-3"])] == ["present"]


# --------------------------------------------------------------------------- tampering


def _as_ref(p: StateProof | dict) -> ref.Proof:
    p = StateProof.coerce(p)
    return ref.Proof(p.id, p.record(), p.metric_code, p.dim,
                     tuple(ref.PathStep(c, tuple(bytes.fromhex(x) for x in s)) for c, s in p.path),
                     tuple((bytes.fromhex(k), bytes.fromhex(v)) for k, v in p.bucket))


def _flip(hex_digest: str) -> str:
    return ("1" if hex_digest[0] == "0" else "0") + hex_digest[1:]


def _with_vector(d: dict, edit) -> dict:
    vals = list(struct.unpack(f"<{DIM}i", base64.b64decode(d["vector"])))
    edit(vals)
    return {**d, "vector": base64.b64encode(struct.pack(f"<{len(vals)}i", *vals)).decode()}


def _tamperings(d: dict, other_root: str, other: dict) -> dict[str, dict]:
    """Edited copies of proof dict ``d`` (present, with text, metadata and a vector, a path of
    at least three steps and a bucket of at least two entries)."""
    t: dict[str, dict] = {}

    def edit(name, fn):
        e = copy.deepcopy(d)
        fn(e)
        t[name] = e

    edit("text", lambda e: e.update(text=e["text"] + "!"))
    edit("text-none", lambda e: e.update(text=None))
    edit("metadata", lambda e: e.update(metadata=e["metadata"].replace('"i":', '"j":')))
    edit("metadata-spacing", lambda e: e.update(metadata=e["metadata"].replace(":", ": ", 1)))
    t["vector-component"] = _with_vector(d, lambda v: v.__setitem__(2, v[2] + 1))
    t["vector-longer"] = _with_vector(d, lambda v: v.append(0))
    edit("vector-dropped", lambda e: e.update(vector=None))
    for level in range(len(d["path"])):
        edit(f"sibling-{level}", lambda e, lv=level: e["path"][lv]["siblings"].__setitem__(
            7, _flip(e["path"][lv]["siblings"][7])))
        edit(f"count-{level}", lambda e, lv=level: e["path"][lv].__setitem__("count", e["path"][lv]["count"] + 1))
        edit(f"siblings-swapped-{level}", lambda e, lv=level: e["path"][lv]["siblings"].reverse())
        edit(f"sibling-missing-{level}", lambda e, lv=level: e["path"][lv]["siblings"].pop())
    mine = ref.key_of(d["id"]).hex()
    others = [i for i, (k, _) in enumerate(d["bucket"]) if k != mine]
    edit("bucket-leaf", lambda e: e["bucket"][others[0]].__setitem__(1, _flip(e["bucket"][others[0]][1])))
    edit("bucket-key", lambda e: e["bucket"][others[0]].__setitem__(0, _flip(e["bucket"][others[0]][0])))
    edit("bucket-drop-other", lambda e: e["bucket"].pop(others[0]))
    edit("bucket-reversed", lambda e: e["bucket"].reverse())
    edit("bucket-duplicate", lambda e: e["bucket"].insert(0, list(e["bucket"][0])))
    edit("bucket-own-leaf", lambda e: [x.__setitem__(1, _flip(x[1])) for x in e["bucket"] if x[0] == mine])
    edit("id", lambda e: e.update(id=e["id"] + "x"))
    edit("id-case", lambda e: e.update(id=e["id"].upper()))
    edit("path-shorter", lambda e: e["path"].pop())
    edit("path-no-top", lambda e: e["path"].pop(0))
    edit("path-longer", lambda e: e["path"].append(copy.deepcopy(e["path"][-1])))
    edit("path-empty", lambda e: e.update(path=[]))
    edit("absent", lambda e: e.update(present=False, text=None, metadata=None, vector=None))
    edit("absent-own-entry-removed", lambda e: e.update(
        present=False, text=None, metadata=None, vector=None, bucket=[x for x in e["bucket"] if x[0] != mine]))
    edit("metric", lambda e: e.update(metric_code=(e["metric_code"] + 1) % 3))
    edit("dim", lambda e: e.update(dim=e["dim"] + 1))
    edit("root-field", lambda e: e.update(root=other_root))
    edit("version", lambda e: e.update(version=2))
    edit("other-record-bytes", lambda e: e.update(text=other["text"], metadata=other["metadata"],
                                                  vector=other["vector"]))
    return t


def test_any_edit_to_an_inclusion_proof_fails(world) -> None:
    content, store, root, deep = world
    # a deep record with text, metadata and a vector (4 path steps, a bucket of several entries)
    rid = next(r for r in deep if content[r][0] is not None and content[r][1] and content[r][2]
               and len(store.prove([r])[0].bucket) >= 2)
    d = store.prove([rid])[0].to_dict()
    assert verify_proof(root, d).status == "present"
    other = store.prove(["doc-3"])[0].to_dict()
    other_root = build({**content, "extra": ((1,) * DIM, None, None)}).state_hash()
    edits = _tamperings(d, other_root, other)
    assert len(edits) > 30
    for name, e in edits.items():
        assert e != d, name
        check = verify_proof(root, e)
        assert check.status == "invalid" and not check.ok, (name, check)
        if name not in ("root-field", "version"):  # fields the reference's Proof does not carry
            try:
                assert not ref.verify_proof(bytes.fromhex(root), _as_ref(e)), name
            except (ValueError, TypeError):
                pass  # not even a well-formed proof
    # proofs may be checked against the root of their own claim only
    assert verify_proof(other_root, {**d, "root": other_root}).status == "invalid"


def test_any_edit_to_an_absence_proof_fails(world) -> None:
    content, store, root, deep = world
    out = absent_ids(content, deep)
    p = max((q for q in store.prove(out) if len(q.path) == 4), key=lambda q: len(q.bucket))
    assert len(p.bucket) >= 1
    d = p.to_dict()
    assert verify_proof(root, d).status == "absent"
    present_twin = store.prove([deep[0]])[0].to_dict()
    cases = {
        "present-flag": {**d, "present": True},
        "present-with-record": {**d, "present": True, "text": present_twin["text"],
                                "metadata": present_twin["metadata"], "vector": present_twin["vector"]},
        "sibling": {**d, "path": [dict(s) for s in d["path"][:-1]] + [
            {"count": d["path"][-1]["count"], "siblings": [_flip(d["path"][-1]["siblings"][0])]
             + d["path"][-1]["siblings"][1:]}]},
        "count": {**d, "path": d["path"][:-1] + [{**d["path"][-1], "count": d["path"][-1]["count"] - 1}]},
        "bucket-entry-dropped": {**d, "bucket": d["bucket"][1:]},
        "bucket-entry-edited": {**d, "bucket": [[d["bucket"][0][0], _flip(d["bucket"][0][1])]] + d["bucket"][1:]},
        "path-shorter": {**d, "path": d["path"][:-1]},
        "another-id": {**d, "id": deep[0]},  # a present id cannot borrow the absence proof
    }
    # the present record's own proof turned into an absence claim, with its entry removed
    mine = ref.key_of(deep[0]).hex()
    cases["present-as-absent"] = {**present_twin, "present": False, "text": None, "metadata": None, "vector": None,
                                  "bucket": [x for x in present_twin["bucket"] if x[0] != mine]}
    cases["present-as-absent-kept-entry"] = {**present_twin, "present": False, "text": None, "metadata": None,
                                             "vector": None}
    for name, e in cases.items():
        check = verify_proof(root, e)
        assert check.status == "invalid", (name, check)


# --------------------------------------------------------------------------- size


def test_proof_size_grows_like_the_depth() -> None:
    small = build(content_of(200, 5))
    large = build(content_of(20000, 6))

    def sizes(store: ValoriStore, ids: list[str]) -> list[int]:
        return [len(json.dumps(p.to_dict()).encode()) for p in store.prove(ids)]

    s_small = sizes(small, [f"doc-{i}" for i in range(1, 200, 7)] + ["absent-1"])
    s_large = sizes(large, [f"doc-{i}" for i in range(1, 20000, 397)] + ["absent-1"])
    # 2 fixed levels + 1 split level at 20,000 records (about 78 per subtree), buckets of <= 16
    # entries: a few KB however large the store
    assert max(s_small) < 4500 and max(s_large) < 8000, (max(s_small), max(s_large))
    assert sum(s_large) / len(s_large) < 2.0 * sum(s_small) / len(s_small)
    assert max(len(p.path) for p in large.prove([f"doc-{i}" for i in range(0, 20000, 97)])) <= 4


# --------------------------------------------------------------------------- durable stores


def test_proofs_after_compaction_and_reopen(tmp_path) -> None:
    content = content_of(300, 8)
    s = ValoriStore.open(tmp_path / "s", dim=DIM, metric=METRIC, durability="batch")
    build(dict(list(content.items())[:150]), s)
    cp = s.checkpoint("half")
    s.write_image()
    build(dict(list(content.items())[150:]), s)
    s.delete(["doc-7", "doc-8"])
    s.checkpoint("after")
    s.upsert([[2.0] * DIM], ids=["late"], texts=["late"])
    for r in ("doc-7", "doc-8"):
        del content[r]
    content["late"] = ((2 << 16,) * DIM, "late", None)
    ids = ["doc-1", "doc-6", "doc-7", "late", "doc-200", "never"]
    before = [p.to_dict() for p in s.prove(ids)]
    root = s.state_hash()
    assert root == ref.state_root([rec_bytes(r, v) for r, v in content.items()], CODE, DIM).hex()
    assert before == [reference_proof_dict(content, r, root) for r in ids]
    s.compact(before=cp)
    assert s.state_hash() == root
    assert [p.to_dict() for p in s.prove(ids)] == before
    s.close()
    r = ValoriStore.open(tmp_path / "s", durability="batch")
    try:
        assert r.state_hash() == root
        after = r.prove(ids)
        assert [p.to_dict() for p in after] == before
        assert [verify_proof(root, p).status for p in after] == ["present", "present", "absent", "present",
                                                                 "present", "absent"]
        r.upsert([[3.0] * DIM], ids=["doc-1"])  # the reopened tree keeps updating correctly
        content["doc-1"] = ((3 << 16,) * DIM, None, None)
        new_root = r.state_hash()
        assert new_root == ref.state_root([rec_bytes(k, v) for k, v in content.items()], CODE, DIM).hex()
        assert [p.to_dict() for p in r.prove(ids)] == [reference_proof_dict(content, k, new_root) for k in ids]
    finally:
        r.close()
    ro = ValoriStore.open_readonly(tmp_path / "s")
    assert [verify_proof(new_root, p).ok for p in ro.prove(ids)] == [True] * len(ids)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("bad", ["doc-1", b"doc-1", None, 5, [5], [None], [""], [b"doc-1"], ["ok", 3],
                                 ["\ud800"], ["x" * 5000], [["doc-1"]]])
def test_bad_ids_raise_input_error_and_change_nothing(world, bad) -> None:
    content, store, root, _ = world
    events = store.log_length
    with pytest.raises(InputError):
        store.prove(bad)
    assert store.state_hash() == root and store.log_length == events and len(store) == len(content)


def test_non_str_id_is_an_id_error(world) -> None:
    _, store, _, _ = world
    with pytest.raises(IdError):
        store.prove([1])


def test_proofs_need_a_spec_2_store() -> None:
    s = build(content_of(10, 3))
    old = ValoriStore.from_bytes(s.to_bytes(spec=1))  # a 0.1 snapshot: spec-1 state digest
    with pytest.raises(InputError):
        old.prove(["doc-1"])


@pytest.mark.parametrize("bad", [None, 5, "x", [], {}, {"id": "a"}, {"path": 5}])
def test_verify_proof_rejects_garbage_without_raising(world, bad) -> None:
    _, _, root, _ = world
    assert verify_proof(root, bad).status == "invalid"


@pytest.mark.parametrize("root", [None, 5, "", "zz", "ab" * 31, b"\x00" * 31])
def test_verify_proof_rejects_bad_roots(world, root) -> None:
    _, store, _, _ = world
    assert verify_proof(root, store.prove(["doc-1"])[0]).status == "invalid"


@pytest.mark.parametrize("field,value", [("text", 5), ("metadata", 5), ("vector", 5), ("metadata", ["x"])])
def test_verify_proof_rejects_wrong_field_types_without_raising(world, field, value) -> None:
    _, store, root, _ = world
    d = {**store.prove(["doc-1"])[0].to_dict(), field: value}
    assert verify_proof(root, d).status == "invalid"
