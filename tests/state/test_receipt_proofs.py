"""Receipts with proofs: ``search_with_receipt(..., proofs=True)`` checked offline by
``valori_store.receipts.verify_receipt_proofs``.

An auditor holding only the receipt's JSON confirms every hit (its record is in the
receipt's state, its raw score is the exact score of the receipt's query with the proved
vector); edits are caught by the receipt digest ("tampered") and, when a forger reseals
the digest, by the proofs ("invalid") or the score recomputation ("mismatch"). The hits
themselves are recomputed here from a plain Python model (Python ints, (score, id bytes)
order), independently of the store's search.
"""

from __future__ import annotations

import base64
import copy
import json
import struct

import numpy as np
import pytest

from valori_store import ValoriStore
from valori_store.receipts import Receipt, verify_receipt, verify_receipt_proofs
from valori_store.spec import state_tree as ref

DIM = 6


def canonical(meta: dict | None) -> bytes:
    return json.dumps({} if meta is None else meta, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def make_content(n: int = 300, seed: int = 4) -> dict[str, tuple]:
    rng = np.random.default_rng(seed)
    out = {}
    for i in range(n):
        rid = f"doc-{i}" if i % 10 else f"doc-{i}-ß"
        vec = None if i % 8 == 7 else tuple(int(x) for x in rng.integers(-(1 << 18), 1 << 18, DIM))
        out[rid] = (vec, f"text {i}" if i % 3 else None, {"topic": "ab"[i % 2], "i": i})
    # exact ties: the same vector under ids whose byte order decides
    for rid in ("tie-b", "tie-a", "Tie", "tié"):
        out[rid] = ((1 << 20,) * DIM, None, {"topic": "a", "i": -1})
    return out


def build(metric: str, content: dict[str, tuple]) -> ValoriStore:
    s = ValoriStore(dim=DIM, metric=metric)
    vec = [(r, v) for r, v in content.items() if v[0] is not None]
    plain = [(r, v) for r, v in content.items() if v[0] is None]
    s.upsert(np.array([[x / 65536.0 for x in v[0]] for _, v in vec]), ids=[r for r, _ in vec],
             texts=[v[1] for _, v in vec], metadatas=[v[2] for _, v in vec])
    s.upsert_plain([r for r, _ in plain], texts=[v[1] for _, v in plain], metadatas=[v[2] for _, v in plain])
    return s


def model_top(metric: str, content: dict, q: list[int], k: int, topic: str | None = None) -> list[list[str]]:
    """Top k by exact Python-int scores, best first, ties by id UTF-8 bytes."""
    scored = []
    for rid, (vec, _, meta) in content.items():
        if vec is None or (topic is not None and meta["topic"] != topic):
            continue
        if metric == "l2":
            raw = sum((a - b) ** 2 for a, b in zip(q, vec))
            scored.append((raw, rid.encode("utf-8"), rid, raw))
        else:
            raw = sum(a * b for a, b in zip(q, vec))
            scored.append((-raw, rid.encode("utf-8"), rid, raw))
    scored.sort()
    return [[rid, str(raw)] for _, _, rid, raw in scored[:k]]


def ref_root(content: dict, metric: str) -> str:
    recs = [ref.RecordBytes(r, v[1], canonical(v[2]), None if v[0] is None else struct.pack(f"<{DIM}i", *v[0]))
            for r, v in content.items()]
    return ref.state_root(recs, ("cosine", "dot", "l2").index(metric), DIM).hex()


Q = [3 << 16, -(1 << 15), 1 << 16, 0, 7 << 12, 1]  # Q16.16 ints


@pytest.fixture(scope="module", params=["dot", "l2"])
def case(request):
    metric = request.param
    content = make_content()
    store = build(metric, content)
    _, receipt = store.search_with_receipt([x / 65536.0 for x in Q], k=8, proofs=True)
    return metric, content, store, receipt


def reseal(d: dict, **changes) -> dict:
    """A forger's edit: change fields and recompute the digest (proofs are outside it)."""
    r = Receipt.from_dict({**d, **changes})
    return Receipt(**{**r.body(), "digest": "", "proofs": r.proofs}).sealed().to_dict()


# --------------------------------------------------------------------------- the auditor's view


def test_auditor_with_the_json_alone_proves_the_hits(case) -> None:
    metric, content, store, receipt = case
    text = receipt.to_json()
    data = json.loads(text)
    assert len(data["proofs"]) == len(data["results"]) == 8
    # the results are the model's (not the store's search) and the root is the reference's
    assert data["results"] == model_top(metric, content, Q, 8)
    assert data["state_hash"] == ref_root(content, metric) == store.state_hash()
    for item in (text, data, Receipt.from_json(text), Receipt.from_dict(json.loads(json.dumps(data)))):
        check = verify_receipt_proofs(item)
        assert (check.status, check.ok) == ("proved", True), check
    # the proved vectors are the model's rows
    for (rid, _), proof in zip(data["results"], data["proofs"]):
        raw = base64.b64decode(proof["vector"])
        assert list(struct.unpack(f"<{DIM}i", raw)) == list(content[rid][0])
    # proofs do not change what re-execution sees
    assert verify_receipt(store, text).status == "match"


def test_filtered_search_and_exact_ties(case) -> None:
    metric, content, store, _ = case
    q = [1 << 20] * DIM  # the tie vector itself: best under both metrics
    _, r = store.search_with_receipt([16.0] * DIM, k=6, filter={"topic": "a"}, proofs=True)
    assert r.results == model_top(metric, content, q, 6, topic="a")
    assert [x[0] for x in r.results[:4]] == ["Tie", "tie-a", "tie-b", "tié"]  # equal scores: id bytes
    assert verify_receipt_proofs(Receipt.from_json(r.to_json())).status == "proved"


def test_proofs_still_hold_after_the_store_moves_on(case) -> None:
    metric, content, _, _ = case
    s = build(metric, content)
    _, r = s.search_with_receipt([x / 65536.0 for x in Q], k=5, proofs=True)
    text = r.to_json()
    s.delete([x[0] for x in r.results])
    s.upsert([[0.5] * DIM], ids=["newcomer"])
    assert s.state_hash() != r.state_hash
    assert verify_receipt_proofs(text).status == "proved"  # no store needed
    assert verify_receipt(s, text).status == "match"  # re-executed at its own state (log replay)


def test_cosine_receipts_prove_too() -> None:
    content = make_content(120, 9)
    s = build("cosine", content)
    _, r = s.search_with_receipt([0.25, -1.0, 2.0, 0.0, 1.0, 0.5], k=7, proofs=True)
    assert verify_receipt_proofs(r.to_json()).status == "proved"
    assert r.state_hash == ref_root({rid: (None if rec.vector is None else tuple(int(x) for x in rec.vector),
                                           rec.text, rec.metadata) for rid, rec in
                                     ((x.id, x) for x in s.get(s.ids()))}, "cosine")


# --------------------------------------------------------------------------- edits


@pytest.mark.parametrize("edit", ["score", "id", "query", "state_hash", "k", "order"])
def test_edited_receipt_is_tampered(case, edit) -> None:
    _, _, _, receipt = case
    d = json.loads(receipt.to_json())
    if edit == "score":
        d["results"][2][1] = str(int(d["results"][2][1]) + 1)
    elif edit == "id":
        d["results"][0][0] = "doc-1"
    elif edit == "query":
        raw = bytearray(base64.b64decode(d["query"]))
        raw[0] ^= 1
        d["query"] = base64.b64encode(bytes(raw)).decode()
    elif edit == "state_hash":
        d["state_hash"] = ("0" if d["state_hash"][0] != "0" else "1") + d["state_hash"][1:]
    elif edit == "k":
        d["k"] += 1
    else:
        d["results"][0], d["results"][1] = d["results"][1], d["results"][0]
    check = verify_receipt_proofs(json.dumps(d))
    assert check.status == "tampered" and not check.ok and "edited" in check.message


def _flip(h: str) -> str:
    return ("1" if h[0] == "0" else "0") + h[1:]


@pytest.mark.parametrize("edit", ["sibling", "text", "vector", "other-id", "swapped", "dropped", "extra",
                                  "other-state", "absent", "bucket", "none"])
def test_edited_proofs_are_invalid(case, edit) -> None:
    metric, content, store, receipt = case
    d = json.loads(receipt.to_json())
    p = d["proofs"]
    if edit == "sibling":
        p[3]["path"][1]["siblings"][4] = _flip(p[3]["path"][1]["siblings"][4])
    elif edit == "text":
        p[0]["text"] = "something else"
    elif edit == "vector":
        vals = list(struct.unpack(f"<{DIM}i", base64.b64decode(p[1]["vector"])))
        vals[0] += 1
        p[1]["vector"] = base64.b64encode(struct.pack(f"<{DIM}i", *vals)).decode()
    elif edit == "other-id":
        p[0] = store.prove(["doc-1"])[0].to_dict()  # a valid proof, of another record
    elif edit == "swapped":
        p[0], p[1] = p[1], p[0]
    elif edit == "dropped":
        p.pop()
    elif edit == "extra":
        p.append(copy.deepcopy(p[0]))
    elif edit == "other-state":
        other = build(metric, {**content, "x": ((5,) * DIM, None, None)})
        p[2] = other.prove([d["results"][2][0]])[0].to_dict()  # same record, another state's proof
    elif edit == "absent":
        p[0] = {**p[0], "present": False, "text": None, "metadata": None, "vector": None}
    elif edit == "bucket":
        p[0]["bucket"][0][1] = _flip(p[0]["bucket"][0][1])
    else:
        d["proofs"] = None
    check = verify_receipt_proofs(json.dumps(d))
    assert check.status == "invalid" and not check.ok, check
    # the receipt itself is untouched: re-execution still matches
    assert verify_receipt(store, json.dumps(d)).status == "match"


# --------------------------------------------------------------------------- resealed forgeries


def test_resealed_score_or_query_is_a_mismatch(case) -> None:
    _, _, _, receipt = case
    d = receipt.to_dict()
    results = copy.deepcopy(d["results"])
    results[4][1] = str(int(results[4][1]) - 1)
    forged = reseal(d, results=results)
    assert Receipt.from_dict(forged).computed_digest() == forged["digest"]
    check = verify_receipt_proofs(forged)
    assert check.status == "mismatch" and results[4][0] in check.message
    q = list(struct.unpack(f"<{DIM}i", base64.b64decode(d["query"])))
    q[2] += 1 << 16
    forged = reseal(d, query=base64.b64encode(struct.pack(f"<{DIM}i", *q)).decode())
    assert verify_receipt_proofs(forged).status == "mismatch"


def test_resealed_ids_or_root_are_invalid(case) -> None:
    metric, content, store, receipt = case
    d = receipt.to_dict()
    # another id in place of a hit, keeping the hit's proof
    results = copy.deepcopy(d["results"])
    results[1][0] = "doc-2"
    assert verify_receipt_proofs(reseal(d, results=results)).status == "invalid"
    # another state root: every proof leads elsewhere
    other = build(metric, {**content, "x": ((5,) * DIM, None, None)}).state_hash()
    assert verify_receipt_proofs(reseal(d, state_hash=other)).status == "invalid"
    # a record without a vector presented as a hit, with its genuine proof
    plain = next(r for r, v in content.items() if v[0] is None)
    results = copy.deepcopy(d["results"])
    results[0] = [plain, "0"]
    proofs = copy.deepcopy(d["proofs"])
    proofs[0] = store.prove([plain])[0].to_dict()
    check = verify_receipt_proofs({**reseal(d, results=results), "proofs": proofs})
    assert check.status == "invalid" and "vector" in check.message
    # a genuine record with its genuine proof, but not scored as claimed
    other_hit = next(r for r, v in content.items() if v[0] is not None and r not in [x[0] for x in d["results"]])
    results = copy.deepcopy(d["results"])
    results[0][0] = other_hit
    proofs = copy.deepcopy(d["proofs"])
    proofs[0] = store.prove([other_hit])[0].to_dict()
    assert verify_receipt_proofs({**reseal(d, results=results), "proofs": proofs}).status == "mismatch"


# --------------------------------------------------------------------------- receipts without proofs


def test_receipt_without_proofs_says_so(case) -> None:
    _, _, store, _ = case
    _, r = store.search_with_receipt([x / 65536.0 for x in Q], k=3)
    assert r.proofs is None and "proofs" not in json.loads(r.to_json())
    check = verify_receipt_proofs(r.to_json())
    assert check.status == "invalid" and not check.ok and "proofs=True" in check.message
    assert verify_receipt(store, r).status == "match"
    assert verify_receipt_proofs("not json").status == "invalid"
    assert verify_receipt_proofs({"state_hash": "x"}).status == "invalid"


def test_receipt_with_proofs_and_no_hits_is_proved() -> None:
    s = build("dot", make_content(20))
    _, r = s.search_with_receipt([1.0] * DIM, k=3, filter={"topic": "none"}, proofs=True)
    assert r.results == [] and r.proofs == []
    assert verify_receipt_proofs(r.to_json()).status == "proved"
