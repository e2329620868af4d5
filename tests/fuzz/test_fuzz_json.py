"""Fuzzing of the JSON loaders: receipts (parsing and verification, raw bytes and field
edits resealed with a valid digest) and state proofs (any JSON at all).

Documented results: ``Receipt.from_dict``/``from_json`` and ``StateProof.from_dict`` raise
InputError for what they cannot parse; ``verify_receipt(s)`` and ``verify_receipt_proofs``
return a ReceiptCheck (``invalid``, ``tampered``...) for a bad receipt; ``verify_proof``
never raises on bad input (it returns an ``invalid`` ProofCheck)."""

from __future__ import annotations

import copy
import json
from typing import Any

from fuzz_support import fuzz_settings, mutated, only_package_errors, seeds
import pytest
from hypothesis import given
from hypothesis import strategies as st

from valori_store import StateProof, open_readonly, verify_proof
from valori_store.errors import InputError
from valori_store.receipts import Receipt, ReceiptCheck, verify_receipt, verify_receipt_proofs, verify_receipts


#: Damaged inputs are meant to be recovered from with a warning; only errors are checked here.
pytestmark = pytest.mark.filterwarnings("ignore::valori_store.storage.image_files.RecoveryWarning")

SCALARS = (st.none() | st.booleans() | st.integers() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False) | st.text(max_size=20)
           | st.sampled_from(["", "0", "-1", "search", "mmr", "cosine", "l2", "ip", "1/2", "0/0", "1/0", "nan",
                              "zz", "00" * 32, "AAAA", "=", "\udc80", 2**63, -(2**63), 10**400 // 10**395]))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)

_STORE: Any = None


def _store() -> Any:
    global _STORE
    if _STORE is None:
        _STORE = open_readonly(seeds().store_dir)
    return _STORE


def _check_all(candidate: Any, against_dir: bool) -> None:
    """Every receipt verifier on ``candidate``: each returns ReceiptChecks (or raises a ValoriError)."""
    with only_package_errors("store.verify_receipt"):
        assert isinstance(_store().verify_receipt(candidate), ReceiptCheck)
    with only_package_errors("verify_receipt_proofs"):
        assert isinstance(verify_receipt_proofs(candidate), ReceiptCheck)
    with only_package_errors("verify_receipt(snapshot)"):
        assert isinstance(verify_receipt(seeds().snapshot_path, candidate), ReceiptCheck)
    if against_dir:
        with only_package_errors("verify_receipts(dir)"):
            checks = verify_receipts(seeds().store_dir, [candidate])
            assert len(checks) == 1 and isinstance(checks[0], ReceiptCheck)


@fuzz_settings(1.0)
@given(data=st.data(), which=st.integers(0, 2), as_text=st.booleans(), against_dir=st.booleans())
def test_receipt_bytes(data: st.DataObject, which: int, as_text: bool, against_dir: bool) -> None:
    seed = json.dumps(seeds().receipts[which], sort_keys=True).encode()
    blob = data.draw(mutated(seed))
    with only_package_errors("from_json"):
        Receipt.from_json(blob)
    candidate: Any = blob
    if as_text:
        candidate = blob.decode("utf-8", errors="surrogateescape")
    _check_all(candidate, against_dir)


def _reseal(d: dict[str, Any]) -> dict[str, Any]:
    """``d`` with the digest its content needs (when it parses at all)."""
    try:
        r = Receipt.from_dict(d)
        d = {**d, "digest": r.computed_digest()}
    except InputError:
        pass
    return d


FIELDS = ["state_hash", "seq", "metric", "dim", "query", "k", "filter", "results", "mode", "fetch_k", "lam",
          "spec_version", "version", "digest", "proofs"]


@fuzz_settings(2.0)
@given(data=st.data(), which=st.integers(0, 2), reseal=st.booleans(), against_dir=st.booleans())
def test_receipt_fields(data: st.DataObject, which: int, reseal: bool, against_dir: bool) -> None:
    """Fields replaced by any JSON, or near-miss values, then (usually) resealed so that the
    receipt passes its tamper check and gets executed."""
    d = copy.deepcopy(seeds().receipts[which])
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(FIELDS + ["unknown"]))
        action = data.draw(st.sampled_from(["json", "int", "str", "drop", "filter"]))
        if action == "drop":
            d.pop(name, None)
        elif action == "int":
            d[name] = data.draw(st.sampled_from([0, 1, -1, 3, 4, 2**31, 2**63, 2**64, -(2**63), 10**30]))
        elif action == "str" and isinstance(d.get(name), str):
            d[name] = data.draw(mutated(d[name].encode())).decode("utf-8", errors="replace")
        elif action == "filter":
            d["filter"] = json.dumps(data.draw(JSON))
        else:
            d[name] = data.draw(JSON)
    if reseal:
        d = _reseal(d)
    with only_package_errors("from_dict"):
        Receipt.from_dict(d)
    _check_all(d, against_dir)


@fuzz_settings(0.5)
@given(value=JSON)
def test_receipt_any_json(value: Any) -> None:
    with only_package_errors("from_dict"):
        Receipt.from_dict(value)
    with only_package_errors("coerce"):
        Receipt.coerce(value)
    _check_all(value, against_dir=False)


# ---------------------------------------------------------------------------- proofs
def _proof_check(root: Any, proof: Any) -> None:
    check = verify_proof(root, proof)  # documented: never raises on bad input
    assert check.status in ("present", "absent", "invalid"), check
    with only_package_errors("StateProof.from_dict"):
        StateProof.from_dict(proof)


@fuzz_settings(1.0)
@given(value=JSON, root=st.none() | st.text(max_size=70) | st.binary(max_size=40) | st.just("00" * 32))
def test_proof_any_json(value: Any, root: Any) -> None:
    _proof_check(seeds().root_hash if root is None else root, value)


@fuzz_settings(2.0)
@given(data=st.data(), which=st.integers(0, 2))
def test_proof_fields(data: st.DataObject, which: int) -> None:
    """Valid proofs with fields edited: siblings, counts, bucket entries, vector, dim..."""
    p = copy.deepcopy(seeds().proofs[which])
    for _ in range(data.draw(st.integers(1, 3))):
        name = data.draw(st.sampled_from(list(p) + ["path.count", "path.siblings", "bucket.entry"]))
        value = data.draw(JSON | st.sampled_from([0, -1, 2**31, 2**62, 2**64, "00" * 32, "0" * 63, "zz" * 32,
                                                   "AAAA", "AAA=", ""]))
        path = p.get("path") if isinstance(p.get("path"), list) and all(
            isinstance(x, dict) and isinstance(x.get("siblings"), list) for x in p["path"]) else None
        bucket = p.get("bucket") if isinstance(p.get("bucket"), list) and all(
            isinstance(x, list) and len(x) == 2 for x in p["bucket"]) else None
        if name == "path.count" and path:
            path[data.draw(st.integers(0, len(path) - 1))]["count"] = value
        elif name == "path.siblings" and path:
            step = path[data.draw(st.integers(0, len(path) - 1))]
            if step["siblings"]:
                step["siblings"][data.draw(st.integers(0, len(step["siblings"]) - 1))] = value
        elif name == "bucket.entry" and bucket:
            entry = bucket[data.draw(st.integers(0, len(bucket) - 1))]
            entry[data.draw(st.integers(0, 1))] = value
        elif name in p:
            p[name] = value
    _proof_check(seeds().root_hash, p)


@fuzz_settings(0.5)
@given(data=st.data(), which=st.integers(0, 2))
def test_proof_json_bytes(data: st.DataObject, which: int) -> None:
    blob = data.draw(mutated(json.dumps(seeds().proofs[which]).encode()))
    try:
        value = json.loads(blob)
    except ValueError:
        return
    _proof_check(seeds().root_hash, value)


def test_seed_receipts_and_proofs_verify() -> None:
    s = seeds()
    assert all(c.ok for c in verify_receipts(s.store_dir, s.receipts))
    assert [verify_proof(s.root_hash, p).status for p in s.proofs] == ["present", "present", "absent"]
