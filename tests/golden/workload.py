#!/usr/bin/env python3
"""The golden workload: a fixed sequence of store operations whose results are committed.

Run it as a script to print one line per fact (``tests/golden/golden.txt`` holds the
expected output; lines starting with ``#`` are timings/metadata and are not compared)::

    PYTHONPATH=src python tests/golden/workload.py            # print the facts
    PYTHONPATH=src python tests/golden/workload.py --check    # also diff against golden.txt

The same lines must come out on every machine: x86-64 and aarch64, any thread count, JIT
on or off. ``.ci/crossarch.sh`` runs it natively and under an emulated aarch64 CPU;
``tests/golden/test_golden.py`` runs it in-process and recomputes every search result
from the plan with plain Python integers.

Inputs are bit-identical on every platform by construction. The only randomness is the
raw 64-bit output of numpy's PCG64 bit generator (``random_raw``: the PCG64 algorithm
itself, seeded through SeedSequence, both specified and stable across numpy versions),
turned into Python ints with shifts and ``%``. Floats are made from those ints with
exact operations (int -> float64, division by a power of two) or single correctly
rounded IEEE operations (``a / 1000.0``), so every input value, and hence its Q16.16
quantisation, is the same everywhere. No numpy float arithmetic is used here.

The plan (:func:`build_plan`) is pure data: a list of operations that
:func:`run_metric` applies to a store and that the test re-applies to a plain Python
model. It covers the three metrics, ~330 records of dim 24 with str ids (non-ASCII,
including ids whose UTF-8 and UTF-16 orders differ), texts and nested metadata, upserts
in several batches and input forms (float64/float32 arrays, lists of floats, lists of
rows), overwrites, deletes (including missing ids), a checkpoint and a restore, extreme
Q16.16 magnitudes (int64 overflow territory), exact duplicate vectors under different
ids and coarse vectors (many exact ties), filtered searches, search_batch vs search,
k larger than the match count and than the store, k-prefix consistency, and a snapshot
round trip.

The ``merkle`` lines (:func:`merkle_facts`) come from a second, separate plan: a store of
4500 records of dim 4 (with and without vectors, some deleted and overwritten) whose state
root, one inclusion proof and one absence proof (both in its most crowded fixed subtree,
so the paths go below the two fixed levels) are printed as canonical JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()

HERE = Path(__file__).resolve().parent
GOLDEN = HERE / "golden.txt"

DIM = 24
SEED = 0x5EED_601D
FINE_BITS = 20  # "fine" values are a / 2**20 with |a| < 2**24: |v| < 16, exact in float32
METRICS = ("cosine", "dot", "l2")
K = 10

# ----------------------------------------------------------------------------- inputs


class Bits:
    """Deterministic integer stream: raw PCG64 64-bit words as Python ints."""

    CHUNK = 4096

    def __init__(self, seed: int):
        import numpy as np

        self._gen = np.random.PCG64(seed)
        self._buf: list[int] = []
        self._pos = 0

    def word(self) -> int:
        if self._pos == len(self._buf):
            self._buf = [int(w) for w in self._gen.random_raw(self.CHUNK).tolist()]
            self._pos = 0
        w = self._buf[self._pos]
        self._pos += 1
        return w

    def signed(self, bits: int) -> int:
        """Uniform int in [-2**(bits-1), 2**(bits-1))."""
        return (self.word() >> (64 - bits)) - (1 << (bits - 1))

    def below(self, n: int) -> int:
        return self.word() % n


def fine(bits: Bits) -> list[float]:
    """a / 2**20, |a| < 2**23: exact float64 (and float32); Q16.16 needs rounding (a / 16)."""
    return [bits.signed(24) / (1 << FINE_BITS) for _ in range(DIM)]


def coarse(bits: Bits) -> list[float]:
    """Small integers in {-2, ..., 2}: exact everywhere, produces many equal scores."""
    v = [float(bits.below(5) - 2) for _ in range(DIM)]
    if not any(v):
        v[0] = 1.0
    return v


def decimal(bits: Bits) -> list[float]:
    """a / 1000.0: one correctly rounded IEEE division (not dyadic)."""
    return [bits.signed(21) / 1000.0 for _ in range(DIM)]


Q_LO = -(1 << 31)
Q_HI = (1 << 31) - 1


def big(bits: Bits, pattern: str) -> list[float]:
    """Extreme Q16.16 magnitudes: products near 2**62, squared differences near 2**64."""
    if pattern == "max":
        q = [Q_HI] * DIM
    elif pattern == "min":
        q = [Q_LO] * DIM
    elif pattern == "alt":
        q = [Q_HI if j % 2 else Q_LO for j in range(DIM)]
    else:
        q = [bits.signed(32) for _ in range(DIM)]
    return [x / 65536.0 for x in q]  # exact: |x| <= 2**31


def scaled(v: list[float], factor: float) -> list[float]:
    return [x * factor for x in v]  # power-of-two factors only: exact


TOPICS = ("a", "b", "c", "d")
TAGS = ("x", "y", "z")


def make_meta(bits: Bits, i: int, rid: str) -> dict:
    w = bits.word()
    meta = {
        "topic": TOPICS[w % 4],
        "year": 2015 + (w >> 8) % 10,
        "flag": bool((w >> 16) & 1),
        "n": i,
        "w": ((w >> 20) % 1000) / 8,  # dyadic float
        "tags": [t for j, t in enumerate(TAGS) if (w >> (24 + j)) & 1],
        "src": {"page": (w >> 28) % 50, "lang": "fr" if (w >> 34) & 1 else "en", "ok": None},
    }
    if i % 11 == 5:
        del meta["year"]  # missing key: every field operator is false on it
    if i % 13 == 7:
        meta["note"] = "naïve café — 中文 ✓"
        meta["ratio"] = 0.1
    return meta


def make_text(i: int, rid: str) -> str | None:
    if i % 9 == 4:
        return None
    if i % 5 == 0:
        return f"record {rid}: naïve café, 中文, 😀"
    return f"record {rid}"


# ----------------------------------------------------------------------------- plan

# Exact-duplicate groups. Byte (= code point) order of the tie ids:
#   Tie-a < tie < tie-10 < tie-9 < tie-B < tie-a < tie-é < tie-～ < tie-😀
# (UTF-16 code-unit order would put tie-😀 before tie-～.)
TIE_IDS = ["tie-a", "tie-B", "tie-é", "tie-～", "tie-😀", "tie-10", "tie-9", "tie", "Tie-a"]
DUP_IDS = ["c-dup-0", "c-dup-1", "c-dup-2", "c-dup-3", "c-dup-4", "z-dup", "a-dup"]
RARE_IDS = {"doc-042", "tie-B", "dec-245"}


def _rows(ids, vecs, bits, start):
    texts, metas = [], []
    for off, rid in enumerate(ids):
        i = start + off
        texts.append(make_text(i, rid))
        m = make_meta(bits, i, rid)
        if rid in RARE_IDS:
            m["topic"] = "rare"
        metas.append(m)
    return {"ids": list(ids), "vectors": vecs, "texts": texts, "metadatas": metas}


def build_plan(seed: int = SEED) -> dict:
    """The golden workload as pure data (see module docstring)."""
    bits = Bits(seed)
    ops: list[tuple] = []

    # Batch A: 100 fine vectors, float64 array.
    ids_a = [f"doc-{i:03d}" for i in range(100)]
    ops.append(("upsert", "A", "f64", _rows(ids_a, [fine(bits) for _ in ids_a], bits, 0)))

    # Batch B: 70 fine + 30 coarse vectors, float32 array (all values exact in float32).
    ids_b = [f"doc-{i:03d}" for i in range(100, 200)]
    vecs_b = [fine(bits) if j < 70 else coarse(bits) for j in range(100)]
    ops.append(("upsert", "B", "f32", _rows(ids_b, vecs_b, bits, 100)))

    # Batch C: duplicates, scaled copies, extremes, decimals, non-ASCII ids; lists of floats.
    t1 = fine(bits)
    c1 = coarse(bits)
    ids_c: list[str] = []
    vecs_c: list[list[float]] = []
    for rid in TIE_IDS:
        ids_c.append(rid), vecs_c.append(list(t1))
    for rid in DUP_IDS:
        ids_c.append(rid), vecs_c.append(list(c1))
    for rid, f in (("tie-x2", 2.0), ("tie-x4", 4.0), ("tie-half", 0.5)):
        ids_c.append(rid), vecs_c.append(scaled(t1, f))
    for rid in ("ü-doc", "中文-1", "emoji-😀", "doc-200-~", "DOC-200"):
        ids_c.append(rid), vecs_c.append(decimal(bits))
    i = 200
    while len(ids_c) < 80:
        ids_c.append(f"dec-{i}"), vecs_c.append(decimal(bits))
        i += 1
    ops.append(("upsert", "C", "list", _rows(ids_c, vecs_c, bits, 200)))
    ops.append(("state", "after-C"))

    # Batch D: overwrite 32 existing ids (new vector/text/metadata), add 8 new; float64.
    over = [f"doc-{i:03d}" for i in range(0, 200, 7)] + ["tie-a", "tie-x2", "dec-210"]
    vecs_d = [decimal(bits) if j % 3 else fine(bits) for j in range(len(over))]
    vecs_d[over.index("tie-x2")] = scaled(t1, 2.0)  # same vector, new text/metadata
    new_d = [f"new-{i:03d}" for i in range(8)]
    vecs_d += [coarse(bits) for _ in new_d]
    ops.append(("upsert", "D", "f64", _rows(over + new_d, vecs_d, bits, 300)))
    ops.append(("state", "before-cp1"))
    ops.append(("checkpoint", "cp1"))

    # Deletes: 20 present ids + 3 absent ones.
    dels = [f"doc-{i:03d}" for i in range(3, 200, 13)] + ["tie-😀", "dec-224", "dec-230", "tie-x4"]
    dels += ["nope-1", "doc-999", "zz-absent"]
    ops.append(("delete", "del1", dels))

    # Batch E: re-add two deleted ids, 12 new ones; a list of 1-D float64 arrays.
    ids_e = ["doc-016", "doc-029"] + [f"late-{i:02d}" for i in range(12)]
    ops.append(("upsert", "E", "rows", _rows(ids_e, [decimal(bits) for _ in ids_e], bits, 400)))
    ops.append(("state", "final"))

    # Queries. All but q12/q13 keep every score inside int64 by the store's bound
    # (dim * max|q| * max|row|, or dim * (max|q| + max|row|)**2 for l2), so the numba
    # kernels (single and batched) run for every metric.
    onehot = [0.0] * DIM
    onehot[3] = 1.0
    queries = {
        "q00": list(t1),  # duplicates of t1: ties at the top
        "q01": scaled(t1, 2.0),  # cosine: ties with the scaled copies too
        "q02": list(c1),
        "q03": scaled(c1, 4.0),
        "q04": fine(bits),
        "q05": fine(bits),
        "q06": fine(bits),
        "q07": decimal(bits),
        "q08": decimal(bits),
        "q09": coarse(bits),
        "q10": coarse(bits),
        "q11": onehot,  # only coordinate 3 matters: many exact ties
        "q12": big(bits, "max"),  # extreme magnitudes: l2 needs the exact (beyond int64) path
        "q13": big(bits, "rand"),
        "q14": scaled(fine(bits), 0.25),
        "q15": [(-1.0) ** j * 0.5 for j in range(DIM)],
    }
    qn = [q for q in queries if q not in ("q12", "q13")]
    f1 = {"topic": "a", "year": {"$gte": 2020}}
    f2 = {"$or": [{"topic": "rare"}, {"year": {"$in": [2015, 2016]}}], "flag": True}
    f3 = {"topic": "rare"}
    ops += [
        ("search", "main", qn, K, None),
        ("search", "f1", qn[:7], 8, f1),
        ("search", "f2", qn[7:], 8, f2),
        ("search", "rare", ["q00", "q07", "q11"], 20, f3),  # k > number of matches
        ("search", "bigq", ["q12", "q13"], K, None),
        ("search_all", "all", ["q06", "q11", "q12"]),  # k > len(store)
        ("prefix", "prefix", ["q11", "q02"], 12),
        ("roundtrip", "bytes", ["q00", "q09", "q11", "q13"], K),
        # Extreme Q16.16 records: products near 2**62, sums and squared differences beyond
        # int64, so dot and l2 must take the exact path.
        ("upsert", "G", "f64", _rows([f"big-{n}" for n in range(6)],
                                     [big(bits, p) for p in ("max", "min", "alt", "rand", "rand", "rand")],
                                     bits, 600)),
        ("state", "with-big"),
        ("search", "big", ["q00", "q07", "q11", "q12", "q13"], K, None),
        ("search", "big-f1", ["q00", "q12"], K, f1),
        ("search_all", "all-big", ["q12", "q13"]),
        ("roundtrip", "bytes-big", ["q00", "q12"], K),
        ("delete", "del-big", ["big-1", "big-4", "doc-001"]),
        ("state", "big-deleted"),
        ("search", "big-deleted", ["q12", "q02"], K, None),
        # Back to the checkpoint (before the deletes and the extreme records).
        ("restore", "cp1"),
        ("state", "restored"),
        ("search", "restored", ["q00", "q02", "q11", "q12"], K, None),
        ("upsert", "F", "list", _rows(["post-restore", "tie-😀"], [list(t1), decimal(bits)], bits, 500)),
        ("state", "after-F"),
        ("search", "after-F", ["q00", "q07"], K, f1),
    ]
    return {"dim": DIM, "seed": seed, "ops": ops, "queries": queries}


# ----------------------------------------------------------------------------- running


def fmt_id(rid: str) -> str:
    """ASCII rendering of an id for the output lines (\\x.., \\u...., \\U........ escapes)."""
    return ascii(rid)[1:-1]


def fmt_hits(pairs) -> str:
    return ",".join(f"{fmt_id(i)}:{r}" for i, r in pairs) or "-"


def canonical_json(value) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def records_digest(items) -> str:
    """BLAKE2b-256 over (id, int32 LE vector, text, canonical metadata) sorted by id bytes.

    ``items`` yields (id, list-of-int vector, text, metadata dict). Computed independently
    of the store's own state hash, so it also checks what ``get`` returns.
    """
    h = hashlib.blake2b(digest_size=32)

    def field(b: bytes) -> None:
        h.update(len(b).to_bytes(8, "little"))
        h.update(b)

    for rid, vec, text, meta in sorted(items, key=lambda t: t[0].encode("utf-8")):
        field(rid.encode("utf-8"))
        field(b"".join(int(x).to_bytes(4, "little", signed=True) for x in vec))
        field(b"\xff" if text is None else b"T" + text.encode("utf-8"))
        field(canonical_json(meta))
    return h.hexdigest()


def hits_digest(pairs) -> str:
    h = hashlib.blake2b(digest_size=32)
    for rid, raw in pairs:
        h.update(rid.encode("utf-8") + b"\x00" + str(raw).encode() + b"\n")
    return h.hexdigest()


def _payload(form: str, vecs):
    import numpy as np

    if form == "f64":
        return np.array(vecs, dtype=np.float64)
    if form == "f32":
        arr = np.array(vecs, dtype=np.float32)
        if arr.astype(np.float64).tolist() != vecs:
            raise AssertionError("float32 batch values must be exactly representable")
        return arr
    if form == "rows":
        return [np.array(v, dtype=np.float64) for v in vecs]
    if form == "list":
        return [list(v) for v in vecs]
    raise ValueError(form)


def _narrow_search(store, query, k, flt):
    """The same search forced through the narrow scan (int8 copy + exact rescoring) when
    its int64 proof holds; it must return exactly the same hits."""
    from valori_store.query import ranking

    saved = ranking.NARROW_FROM
    ranking.NARROW_FROM = 1
    try:
        return store.search(query, k=k, filter=flt)
    finally:
        ranking.NARROW_FROM = saved


def run_metric(metric: str, plan: dict, sink: dict | None = None) -> list[str]:
    """Apply the plan to a fresh store; return the fact lines.

    ``sink`` (optional dict) receives in-process objects for the tests: ``hits`` maps
    (tag, qname) to the list of Hit, ``records`` maps a state tag to the list of Record,
    ``lines`` to the lines, ``store`` to the final store.
    """
    import numpy as np

    from valori_store import ValoriStore

    sink = {} if sink is None else sink
    sink.setdefault("hits", {})
    sink.setdefault("records", {})
    out: list[str] = []
    scores = hashlib.blake2b(digest_size=32)
    queries = plan["queries"]
    s = ValoriStore(plan["dim"], metric=metric)
    checkpoints = {}
    m = metric

    def record(tag, qname, hits):
        sink["hits"][(tag, qname)] = hits
        for h in hits:
            scores.update(f"{h.id}\x00{float(h.score).hex()}\n".encode("utf-8"))

    def pairs(hits):
        return [(h.id, int(h.raw)) for h in hits]

    for op in plan["ops"]:
        kind, tag = op[0], op[1]
        if kind == "upsert":
            form, rows = op[2], op[3]
            got = s.upsert(_payload(form, rows["vectors"]), ids=rows["ids"], texts=rows["texts"],
                           metadatas=rows["metadatas"])
            out.append(f"upsert {m} {tag} n={len(rows['ids'])} ids_returned={list(got) == rows['ids']}")
        elif kind == "delete":
            out.append(f"delete {m} {tag} requested={len(op[2])} removed={s.delete(op[2])}")
        elif kind == "state":
            ids = sorted(s.ids(), key=lambda r: r.encode("utf-8"))
            recs = s.get(ids)
            sink["records"][tag] = recs
            snap = s.to_bytes()
            out.append(f"state {m} {tag} len={len(s)} hash={s.state_hash()}")
            out.append(f"snapshot {m} {tag} bytes={len(snap)} blake2b={hashlib.blake2b(snap, digest_size=32).hexdigest()}")
            snap1 = s.to_bytes(spec=1)  # the same content as valori-store 0.1 (spec 1) hashed and wrote it
            out.append(f"state_v1 {m} {tag} hash={s.state_hash(spec=1)} bytes={len(snap1)} "
                       f"blake2b={hashlib.blake2b(snap1, digest_size=32).hexdigest()}")
            items = [(r.id, np.asarray(r.vector).tolist(), r.text, r.metadata) for r in recs]
            out.append(f"records {m} {tag} ids_sorted={[r.id for r in recs] == ids} blake2b={records_digest(items)}")
        elif kind == "checkpoint":
            cp = s.checkpoint(label=tag)
            checkpoints[tag] = cp
            out.append(f"checkpoint {m} {tag} seq={cp.seq} hash={cp.state_hash} label={cp.label}")
        elif kind == "restore":
            s.restore(tag)
            out.append(f"restore {m} {tag} len={len(s)} hash={s.state_hash()} "
                       f"equals_checkpoint={s.state_hash() == checkpoints[tag].state_hash}")
        elif kind == "search":
            qnames, k, flt = op[2], op[3], op[4]
            single = []
            for qn in qnames:
                hits = s.search(queries[qn], k=k, filter=flt)
                record(tag, qn, hits)
                single.append(pairs(hits))
                out.append(f"search {m} {tag} {qn} k={k} {fmt_hits(pairs(hits))}")
                narrow = pairs(_narrow_search(s, queries[qn], k, flt))
                if narrow != pairs(hits):  # prints nothing when the narrow scan agrees
                    out.append(f"narrow_differs {m} {tag} {qn} k={k} {fmt_hits(narrow)}")
            batch = s.search_batch(np.array([queries[q] for q in qnames], dtype=np.float64), k=k, filter=flt)
            same = [pairs(b) for b in batch] == single
            out.append(f"batch_equal {m} {tag} {same}")
            if not same:
                for qn, b in zip(qnames, batch):
                    out.append(f"search_batch {m} {tag} {qn} k={k} {fmt_hits(pairs(b))}")
        elif kind == "search_all":
            k = len(s) + 7
            for qn in op[2]:
                hits = s.search(queries[qn], k=k)
                record(tag, qn, hits)
                p = pairs(hits)
                out.append(f"search_all {m} {tag} {qn} k=len+7 n={len(p)} blake2b={hits_digest(p)} "
                           f"head={fmt_hits(p[:3])} tail={fmt_hits(p[-2:])}")
        elif kind == "prefix":
            kmax = op[3]
            for qn in op[2]:
                full = pairs(s.search(queries[qn], k=kmax))
                ok = all(pairs(s.search(queries[qn], k=k)) == full[:k] for k in range(1, kmax))
                out.append(f"prefix {m} {tag} {qn} k=1..{kmax} ok={ok}")
        elif kind == "roundtrip":
            qnames, k = op[2], op[3]
            b = s.to_bytes()
            s2 = ValoriStore.from_bytes(b)
            same_search = all(pairs(s.search(queries[q], k=k)) == pairs(s2.search(queries[q], k=k)) for q in qnames)
            out.append(f"roundtrip {m} {tag} hash_equal={s2.state_hash() == s.state_hash()} "
                       f"bytes_equal={s2.to_bytes() == b} len_equal={len(s2) == len(s)} search_equal={same_search}")
        else:
            raise ValueError(f"unknown op {kind}")
    out.append(f"scores {m} blake2b={scores.hexdigest()}")
    sink["lines"] = out
    sink["store"] = s
    return out


# ----------------------------------------------------------------------------- merkle

MERKLE_SEED = 0x57A7E
MERKLE_DIM = 4
MERKLE_N = 4500
MERKLE_METRIC = "dot"


def merkle_key(rid: str) -> bytes:
    """The state key of an id (state spec 2): ``SHA-256("valori-key-v2" || 0x00 || id)``."""
    return hashlib.sha256(b"valori-key-v2\x00" + rid.encode("utf-8")).digest()


def merkle_plan(seed: int = MERKLE_SEED) -> dict:
    """The merkle store's inputs as pure data. Vectors are ints v with |v| < 2**23, given as
    v / 65536.0 (exact), so their Q16.16 rows are exactly v (dot: no normalisation).

    ``records``: (id, vector ints or None, text, metadata) upserted in this order (records
    with vectors in one call, those without in another); then ``deletes`` are removed and
    ``overwrites`` upserted again (vectors). ``present``/``absent``: the ids to prove."""
    bits = Bits(seed)
    records = []
    for i in range(MERKLE_N):
        rid = f"m-{i:04d}" if i % 50 else f"m-{i:04d}-\u00e9\u4e2d"
        vec = None if i % 9 == 4 else [bits.signed(24) for _ in range(MERKLE_DIM)]
        text = None if i % 4 == 1 else f"text {i}" + (" \u00fc" if i % 3 == 0 else "")
        meta = {"i": i, "g": "abc"[i % 3]} if i % 2 == 0 else None
        records.append((rid, vec, text, meta))
    deletes = [records[i][0] for i in range(3, MERKLE_N, 17)]
    overwrites = [(records[i][0], [bits.signed(24) for _ in range(MERKLE_DIM)], "over", {"o": i})
                  for i in range(5, MERKLE_N, 29)]
    final = {rid: (vec, text, meta) for rid, vec, text, meta in records}
    for rid in deletes:
        del final[rid]
    for rid, vec, text, meta in overwrites:
        final[rid] = (vec, text, meta)
    counts: dict[int, list[str]] = {}
    for rid in final:
        counts.setdefault(merkle_key(rid)[0], []).append(rid)
    crowded = max(sorted(counts), key=lambda b: len(counts[b]))  # most records; lowest byte on a tie
    present = min(r for r in counts[crowded] if final[r][0] is not None and final[r][1] and final[r][2])
    absent = next(f"absent-{i}" for i in range(1 << 20) if merkle_key(f"absent-{i}")[0] == crowded)
    return {"dim": MERKLE_DIM, "metric": MERKLE_METRIC, "records": records, "deletes": deletes,
            "overwrites": overwrites, "present": present, "absent": absent}


def merkle_inputs_digest(mplan: dict) -> str:
    return hashlib.blake2b(json.dumps([mplan[k] for k in ("records", "deletes", "overwrites", "present", "absent")],
                                      sort_keys=True, ensure_ascii=True).encode("ascii"), digest_size=32).hexdigest()


def proof_json(proof_dict: dict) -> str:
    """A proof's canonical serialisation (sorted keys, no whitespace, ASCII)."""
    return json.dumps(proof_dict, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def merkle_facts(mplan: dict | None = None, sink: dict | None = None) -> list[str]:
    """The merkle lines: inputs, empty and final roots, the two proofs and their verdicts."""
    import numpy as np

    from valori_store import ValoriStore, verify_proof

    mplan = merkle_plan() if mplan is None else mplan
    dim = mplan["dim"]
    s = ValoriStore(dim, metric=mplan["metric"])
    out = [f"merkle inputs n={len(mplan['records'])} blake2b={merkle_inputs_digest(mplan)}",
           f"merkle root empty hash={s.state_hash()}"]
    vec = [r for r in mplan["records"] if r[1] is not None]
    plain = [r for r in mplan["records"] if r[1] is None]
    s.upsert(np.array([r[1] for r in vec], dtype=np.float64) / 65536.0, ids=[r[0] for r in vec],
             texts=[r[2] for r in vec], metadatas=[r[3] for r in vec])
    s.upsert_plain([r[0] for r in plain], texts=[r[2] for r in plain], metadatas=[r[3] for r in plain])
    removed = s.delete(mplan["deletes"])
    ow = mplan["overwrites"]
    s.upsert([[x / 65536.0 for x in r[1]] for r in ow], ids=[r[0] for r in ow], texts=[r[2] for r in ow],
             metadatas=[r[3] for r in ow])
    root = s.state_hash()
    out.append(f"merkle root final len={len(s)} removed={removed} hash={root}")
    proofs = s.prove([mplan["present"], mplan["absent"]])
    for kind, p in zip(("present", "absent"), proofs):
        out.append(f"merkle proof {kind} id={fmt_id(p.id)} steps={len(p.path)} bucket={len(p.bucket)} "
                   f"json={proof_json(p.to_dict())}")
    out.append(f"merkle verify {' '.join(verify_proof(root, p).status for p in proofs)}")
    if sink is not None:
        sink.update(store=s, proofs=proofs, lines=out)
    return out


def header_line(plan: dict) -> str:
    return f"workload dim={plan['dim']} seed={plan['seed']} ops={len(plan['ops'])} queries={len(plan['queries'])}"


def inputs_digest(plan: dict) -> str:
    """BLAKE2b-256 of every input: ids, texts, metadata, float.hex of each vector value."""
    h = hashlib.blake2b(digest_size=32)
    for op in plan["ops"]:
        h.update(repr(op[:2]).encode())
        if op[0] == "upsert":
            rows = op[3]
            for rid, v, text, meta in zip(rows["ids"], rows["vectors"], rows["texts"], rows["metadatas"]):
                h.update(rid.encode() + b"\x00" + repr(text).encode() + canonical_json(meta))
                h.update(b"".join(float(x).hex().encode() + b"," for x in v))
        else:
            h.update(repr(op[2:]).encode())
    for n, v in plan["queries"].items():
        h.update(n.encode() + b"".join(float(x).hex().encode() + b"," for x in v))
    return h.hexdigest()


def facts(plan: dict | None = None, metrics=METRICS, timings: list[str] | None = None,
          sinks: dict | None = None) -> list[str]:
    """All fact lines of the golden workload (no '#' lines). ``sinks``: metric -> sink dict."""
    plan = build_plan() if plan is None else plan
    lines = [header_line(plan), f"inputs blake2b={inputs_digest(plan)}"]
    for metric in metrics:
        t = time.perf_counter()
        lines += run_metric(metric, plan, None if sinks is None else sinks.setdefault(metric, {}))
        if timings is not None:
            timings.append(f"# time {metric}: {time.perf_counter() - t:.2f} s")
    t = time.perf_counter()
    lines += merkle_facts(sink=None if sinks is None else sinks.setdefault("merkle", {}))
    if timings is not None:
        timings.append(f"# time merkle: {time.perf_counter() - t:.2f} s")
    return lines


def read_golden(path: Path = GOLDEN) -> list[str]:
    return [ln for ln in path.read_text(encoding="ascii").splitlines() if ln and not ln.startswith("#")]


def _import_store():
    try:
        import valori_store  # noqa: F401
    except ImportError:
        src = HERE.parents[1] / "src"
        if (src / "valori_store").is_dir():
            sys.path.insert(0, str(src))
        import valori_store  # noqa: F401
    import valori_store

    return valori_store


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with golden.txt; exit 1 on difference")
    ap.add_argument("--golden", type=Path, default=GOLDEN)
    ap.add_argument("--write", action="store_true", help="(re)write golden.txt (only after review!)")
    args = ap.parse_args(argv)

    import numpy as np

    t_np = time.perf_counter() - _T0
    vs = _import_store()
    t_imp = time.perf_counter() - _T0
    head = [
        f"# machine={platform.machine()} python={platform.python_version()} numpy={np.__version__} "
        f"QEMU_CPU={os.environ.get('QEMU_CPU', '')} NUMBA_DISABLE_JIT={os.environ.get('NUMBA_DISABLE_JIT', '')}",
        f"# valori_store from {Path(vs.__file__).parent}",
        f"# time import numpy {t_np:.2f} s, valori_store {t_imp - t_np:.2f} s",
    ]
    try:
        import numba

        head[0] += f" numba={numba.__version__}"
    except ImportError:
        pass
    timings: list[str] = []
    t = time.perf_counter()
    plan = build_plan()
    timings.append(f"# time build_plan: {time.perf_counter() - t:.2f} s")
    lines = facts(plan, timings=timings)
    timings.append(f"# time total: {time.perf_counter() - _T0:.2f} s")
    text = "\n".join(head + lines + timings) + "\n"
    sys.stdout.buffer.write(text.encode("ascii"))
    sys.stdout.flush()
    if args.write:
        args.golden.write_text(
            "# valori-store golden workload output (tests/golden/workload.py). Do not edit by hand:\n"
            "# regenerate only for an intended format/spec change, and say why in the commit.\n"
            + "\n".join(lines) + "\n", encoding="ascii")
        print(f"# wrote {args.golden}", file=sys.stderr)
    if args.check:
        want = read_golden(args.golden)
        if want != lines:
            import difflib

            sys.stderr.writelines(difflib.unified_diff([w + "\n" for w in want], [ln + "\n" for ln in lines],
                                                       str(args.golden), "this run"))
            print("GOLDEN MISMATCH", file=sys.stderr)
            return 1
        print(f"# golden OK ({len(lines)} lines)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
