"""Tests of the built-in HashingEmbedder and the bundled corpus.

The reference implementation below re-derives every output bit from the documented rules
(module docstring of ``valori_store.embedder``) using only hashlib, re and unicodedata,
so a change of any rule, weight, sign or rounding step fails here.
"""

from __future__ import annotations

import copy
import hashlib
import math
import os
import pickle
import re
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import valori_store.builtin.embedder as embedder_mod
from valori_store.corpus import CorpusDoc, load_corpus
from valori_store.embedder import ALGORITHM, EMPTY_FEATURE, HashingEmbedder, normalize_text
from valori_store.errors import InputError

SRC = Path(__file__).resolve().parents[2] / "src"

TEXTS = [
    "",
    "   ",
    "?!...",
    "a",
    "Hello, world!",
    "hello hello hello world",
    "Café crème brûlée",
    "Cafe\u0301 CRÈME",
    "Straße STRASSE ﬁsh Ｆｕｌｌｗｉｄｔｈ",
    "日本語のテキスト と 数字 12345",
    "snake_case_identifier x1 y2",
    "emoji 🎉 are not words but 🎉party is",
    "Compound interest means you earn interest on your interest.",
]

# sha256 of HashingEmbedder().embed_many(TEXTS) as little-endian float64 bytes.
# Committed so that every machine that runs the tests checks itself against this one.
GOLDEN_SHA256 = "31e220528a97381a31217b788f68320f054180452e012443a5952703c8901fbb"


# -- reference implementation (rules 1-5, written out naively) ------------------------


def ref_counts(
    text: str, dim: int = 384, ngram_range: tuple[int, int] = (3, 5), seed: str = "valori-v1"
) -> list[int]:
    t = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    feats: list[tuple[str, int]] = []
    for w in re.findall(r"\w+", t):
        feats.append(("w:" + w, 2))
        p = "<" + w + ">"
        for n in range(ngram_range[0], ngram_range[1] + 1):
            for i in range(len(p) - n + 1):
                feats.append(("c:" + p[i : i + n], 1))
    key = hashlib.blake2b(seed.encode("utf-8"), digest_size=32, person=b"valori-seed-key1").digest()

    def slot(f: str) -> tuple[int, int]:
        h = hashlib.blake2b(digest_size=8, key=key, person=b"valori-hash-emb1")
        h.update(f.encode("utf-8"))
        d = h.digest()
        x = int.from_bytes(d, "little")
        return (x >> 1) % dim, (-1 if x % 2 else 1)

    counts = [0] * dim
    for f, wt in feats or [("e:", 1)]:
        b, s = slot(f)
        counts[b] += s * wt
    if not any(counts):
        counts = [0] * dim
        b, s = slot("e:")
        counts[b] = s
    return counts


def ref_embed(text: str, **kw: object) -> np.ndarray:
    counts = ref_counts(text, **kw)  # type: ignore[arg-type]
    norm = math.sqrt(sum(c * c for c in counts))
    return np.array([float(c) / norm for c in counts], dtype=np.float64)


def digest(matrix: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(matrix, dtype="<f8").tobytes()).hexdigest()


@pytest.fixture(scope="module")
def emb() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="module")
def corpus() -> list[CorpusDoc]:
    return load_corpus()


# -- exactness and determinism ---------------------------------------------------------


@pytest.mark.parametrize("text", TEXTS)
def test_matches_reference_bit_for_bit(emb: HashingEmbedder, text: str) -> None:
    assert emb.counts(text).tolist() == ref_counts(text)
    assert emb.embed(text).tobytes() == ref_embed(text).tobytes()


@pytest.mark.parametrize(
    "kw",
    [
        {"dim": 1},
        {"dim": 7, "ngram_range": (1, 2)},
        {"dim": 1000, "ngram_range": (4, 4), "seed": ""},
        {"dim": 64, "seed": "ünïcödé seed " * 20},
    ],
)
def test_matches_reference_other_configs(kw: dict) -> None:
    e = HashingEmbedder(**kw)
    for text in TEXTS:
        assert e.counts(text).tolist() == ref_counts(text, **kw)
        assert e.embed(text).tobytes() == ref_embed(text, **kw).tobytes()


def test_embed_is_counts_over_norm(emb: HashingEmbedder, corpus: list[CorpusDoc]) -> None:
    for doc in corpus:
        c = emb.counts(doc.text)
        assert c.dtype == np.int64
        expected = c.astype(np.float64) / math.sqrt(int(np.sum(c * c)))
        assert emb.embed(doc.text).tobytes() == expected.tobytes()


def test_features_rules(emb: HashingEmbedder) -> None:
    f = emb.features("Ab ab!")
    assert f["w:ab"] == 4  # word weight 2, twice
    assert f["c:<ab"] == 2 and f["c:ab>"] == 2 and f["c:<ab>"] == 2  # n-grams weight 1
    assert "c:<a" not in f  # n < 3 not used by default
    assert set(f) == {"w:ab", "c:<ab", "c:ab>", "c:<ab>"}
    assert emb.features("...") == {EMPTY_FEATURE: 1}
    assert ALGORITHM == "hashing-v1"


def test_golden_digest(emb: HashingEmbedder) -> None:
    assert digest(emb.embed_many(TEXTS)) == GOLDEN_SHA256


_CHILD = """
import hashlib, json, sys
import numpy as np
from valori_store.embedder import HashingEmbedder
texts = json.loads(sys.stdin.read())
m = HashingEmbedder().embed_many(texts)
print(hashlib.sha256(np.ascontiguousarray(m, dtype="<f8").tobytes()).hexdigest())
"""


@pytest.mark.parametrize("hashseed", ["0", "1", "4242", "random"])
def test_same_bytes_in_other_processes(emb: HashingEmbedder, hashseed: str) -> None:
    import json

    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONPATH=str(SRC))
    out = subprocess.run(
        [sys.executable, "-c", _CHILD],
        input=json.dumps(TEXTS),
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=120,
    )
    assert out.stdout.strip() == digest(emb.embed_many(TEXTS)) == GOLDEN_SHA256


def test_cache_never_changes_results(
    monkeypatch: pytest.MonkeyPatch, corpus: list[CorpusDoc]
) -> None:
    texts = [d.text for d in corpus]
    fresh = HashingEmbedder().embed_many(texts)
    warm = HashingEmbedder()
    warm.embed_many(texts[::-1])
    assert warm.embed_many(texts).tobytes() == fresh.tobytes()
    monkeypatch.setattr(embedder_mod, "_CACHE_LIMIT", 3)  # cleared constantly
    assert HashingEmbedder().embed_many(texts).tobytes() == fresh.tobytes()


def test_embed_many_rows_equal_embed(emb: HashingEmbedder) -> None:
    m = emb.embed_many(TEXTS)
    assert m.shape == (len(TEXTS), 384) and m.dtype == np.float64
    for i, t in enumerate(TEXTS):
        assert m[i].tobytes() == emb.embed(t).tobytes()
    assert emb.embed_many([]).shape == (0, 384)
    assert emb.embed_many(tuple(TEXTS)).tobytes() == m.tobytes()


def test_pickle_and_copy_roundtrip(emb: HashingEmbedder) -> None:
    for clone in (pickle.loads(pickle.dumps(emb)), copy.deepcopy(emb), copy.copy(emb)):
        assert clone == emb and hash(clone) == hash(emb)
        assert clone.embed_many(TEXTS).tobytes() == emb.embed_many(TEXTS).tobytes()


def test_seed_changes_embedding() -> None:
    a = HashingEmbedder(seed="a").embed("the same text")
    b = HashingEmbedder(seed="b").embed("the same text")
    assert a.tobytes() != b.tobytes()
    assert HashingEmbedder(seed="a") != HashingEmbedder(seed="b")


# -- norm, dimension, empty text, unicode ------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200), st.sampled_from([1, 2, 3, 17, 384]))
def test_unit_norm_never_zero(text: str, dim: int) -> None:
    v = HashingEmbedder(dim=dim).embed(text)
    assert v.shape == (dim,) and v.dtype == np.float64
    assert np.all(np.isfinite(v))
    assert abs(math.fsum(float(x) * float(x) for x in v) - 1.0) <= 1e-12
    assert np.count_nonzero(v) >= 1


@pytest.mark.parametrize("dim", [1, 2, 384, 4096])
def test_dimensions(dim: int) -> None:
    e = HashingEmbedder(dim=dim)
    assert e.dim == dim
    assert e.embed("some text").shape == (dim,)
    assert e.embed_many(["a", "b", "c"]).shape == (3, dim)
    assert len(e.embed_query("x")) == dim


def test_dim_one_is_plus_or_minus_one() -> None:
    e = HashingEmbedder(dim=1)
    for t in TEXTS:
        assert e.embed(t)[0] in (1.0, -1.0)


def test_numpy_int_dim_accepted() -> None:
    assert HashingEmbedder(dim=np.int64(16)).dim == 16


@pytest.mark.parametrize("dim", [0, -1, 2.5, "8", True, None])
def test_bad_dim(dim: object) -> None:
    with pytest.raises(InputError, match="dim"):
        HashingEmbedder(dim=dim)  # type: ignore[arg-type]


@pytest.mark.parametrize("ngram_range", [(0, 3), (4, 3), (3,), (1, 65), "35", (1.0, 3), None])
def test_bad_ngram_range(ngram_range: object) -> None:
    with pytest.raises(InputError, match="ngram_range"):
        HashingEmbedder(ngram_range=ngram_range)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [None, b"bytes", 1, "\ud800"])
def test_bad_seed(seed: object) -> None:
    with pytest.raises(InputError, match="seed"):
        HashingEmbedder(seed=seed)  # type: ignore[arg-type]


def test_empty_text_is_the_empty_feature(emb: HashingEmbedder) -> None:
    e = emb.embed("")
    assert np.count_nonzero(e) == 1 and abs(e[np.flatnonzero(e)[0]]) == 1.0
    for t in ["   ", "\n\t", "?!...", "— – …", "🎉🎉"]:
        assert emb.embed(t).tobytes() == e.tobytes()
    assert emb.embed("a").tobytes() != e.tobytes()


def test_cancelled_counts_fall_back_to_empty_feature() -> None:
    # With dim=1 every feature lands in bucket 0; find a word whose signed weights cancel.
    e = HashingEmbedder(dim=1, ngram_range=(1, 1))
    words = [a + b for a in "abcdefghijklmnopqrstuvwxyz" for b in "abcdefghijklmnopqrstuvwxyz"]
    cancelling = [w for w in words if sum(s * wt for (_, s), wt in
                  ((e._slot(f), wt) for f, wt in e.features(w).items())) == 0]
    assert cancelling, "no cancelling word found; widen the search"
    w = cancelling[0]
    assert e.counts(w).tolist() == e.counts("").tolist()
    assert e.embed(w).tobytes() == e.embed("").tobytes()
    assert ref_counts(w, dim=1, ngram_range=(1, 1)) == e.counts(w).tolist()


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Café", "Cafe\u0301"),  # composed vs combining accent (NFKC)
        ("CAFÉ au lait", "café AU LAIT"),  # case
        ("Ｆｕｌｌｗｉｄｔｈ ﬁsh", "fullwidth fish"),  # compatibility forms (NFKC)
        ("Straße", "STRASSE"),  # casefold, not lower
        ("x\u00b2", "x2"),  # superscript two
    ],
)
def test_unicode_normalisation(emb: HashingEmbedder, a: str, b: str) -> None:
    assert normalize_text(a) == normalize_text(b)
    assert emb.embed(a).tobytes() == emb.embed(b).tobytes()


def test_different_texts_differ(emb: HashingEmbedder) -> None:
    assert emb.embed("cafe").tobytes() != emb.embed("café").tobytes()
    assert emb.embed("a b").tobytes() == emb.embed("b   a!").tobytes()  # bag of features


# -- quality -----------------------------------------------------------------------------


def _ranking(emb: HashingEmbedder, corpus: list[CorpusDoc], query: str) -> list[str]:
    m = emb.embed_many([d.text for d in corpus])
    scores = m @ emb.embed(query)
    order = sorted(range(len(corpus)), key=lambda i: (-scores[i], corpus[i].id.encode("utf-8")))
    return [corpus[i].id for i in order]


@pytest.mark.parametrize(
    ("query", "target"),
    [
        ("When does the Perseid meteor shower peak?", "doc-008"),
        ("how long should I rest a roast after the oven", "doc-013"),
        ("why do bond prices fall when interest rates rise", "doc-027"),
        ("hydrangea flowers blue or pink soil pH", "doc-043"),
        ("floating point addition is not associative", "doc-052"),
        ("sourdugh starter with wild yeast", "doc-015"),  # typo: n-grams still match
        ("creme brulee custard", "doc-018"),  # accents dropped in the query
        ("thread race condition", "doc-053"),
    ],
)
def test_query_ranks_its_target_first(
    emb: HashingEmbedder, corpus: list[CorpusDoc], query: str, target: str
) -> None:
    assert _ranking(emb, corpus, query)[0] == target


def test_duplicates_tie_and_order_by_id(emb: HashingEmbedder, corpus: list[CorpusDoc]) -> None:
    ranking = _ranking(emb, corpus, "salting pasta water")
    assert ranking[:2] == ["doc-016", "doc-024"]
    ranking = _ranking(emb, corpus, "unit tests should fail loudly")
    assert ranking[:2] == ["doc-051", "doc-060"]


def test_similar_beats_unrelated(emb: HashingEmbedder) -> None:
    q = emb.embed("planets and moons of the solar system")
    similar = emb.embed("the moons of Jupiter and other planets")
    unrelated = emb.embed("a recipe for baked vanilla custard")
    assert q @ similar > q @ unrelated + 0.1


# -- bad input -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, b"bytes", 3, 1.5, ["list"], bytearray(b"x")])
def test_non_str_text_raises(emb: HashingEmbedder, bad: object) -> None:
    with pytest.raises(InputError, match="str"):
        emb.embed(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        emb.embed_query(bad)  # type: ignore[arg-type]
    with pytest.raises(InputError):
        emb.counts(bad)  # type: ignore[arg-type]


def test_bad_batch_raises_naming_index(emb: HashingEmbedder) -> None:
    with pytest.raises(InputError, match=r"texts\[1\]"):
        emb.embed_many(["ok", 3, "ok"])  # type: ignore[list-item]
    with pytest.raises(InputError, match=r"texts\[0\]"):
        emb.embed_documents([None])  # type: ignore[list-item]
    for bad in ("a string", b"bytes", 5, None, {"a", "b"}):
        with pytest.raises(InputError, match="sequence"):
            emb.embed_many(bad)  # type: ignore[arg-type]


def test_input_error_is_value_error() -> None:
    with pytest.raises(ValueError):
        HashingEmbedder().embed(None)  # type: ignore[arg-type]


# -- LangChain-shaped interface ---------------------------------------------------------


def test_langchain_shapes(emb: HashingEmbedder) -> None:
    docs = emb.embed_documents(["alpha beta", "gamma"])
    assert isinstance(docs, list) and len(docs) == 2
    assert all(isinstance(row, list) and len(row) == 384 for row in docs)
    assert all(type(x) is float for row in docs for x in row)
    assert np.array(docs).tobytes() == emb.embed_many(["alpha beta", "gamma"]).tobytes()
    q = emb.embed_query("alpha beta")
    assert type(q) is list and all(type(x) is float for x in q)
    assert q == docs[0]
    assert emb.embed_documents([]) == []


def test_does_not_import_langchain() -> None:
    code = (
        "import sys, valori_store.embedder, valori_store.corpus; "
        "print(any(m.startswith('langchain') for m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, check=True, timeout=120,
        env=dict(os.environ, PYTHONPATH=str(SRC)),
    )
    assert out.stdout.strip() == "False"


async def test_async_methods(emb: HashingEmbedder) -> None:
    assert await emb.aembed_documents(["x y", "z"]) == emb.embed_documents(["x y", "z"])
    assert await emb.aembed_query("x y") == emb.embed_query("x y")


# -- corpus ------------------------------------------------------------------------------


def test_corpus_shape(corpus: list[CorpusDoc]) -> None:
    assert len(corpus) == 60
    ids = [d.id for d in corpus]
    assert ids == [f"doc-{i:03d}" for i in range(1, 61)]
    topics = {d.metadata["topic"] for d in corpus}
    assert topics == {"astronomy", "cooking", "finance", "gardening", "software"}
    for d in corpus:
        assert d.text.strip() and len(d.text) < 400
        md = d.metadata
        assert set(md) == {"topic", "year", "difficulty", "tags"}
        assert type(md["year"]) is int and 2015 <= md["year"] <= 2024
        assert md["difficulty"] in ("easy", "hard")
        assert md["tags"] and all(isinstance(t, str) and t for t in md["tags"])
    assert {d.metadata["difficulty"] for d in corpus} == {"easy", "hard"}


def test_corpus_duplicates(corpus: list[CorpusDoc]) -> None:
    by_text: dict[str, list[str]] = {}
    for d in corpus:
        by_text.setdefault(d.text, []).append(d.id)
    dups = sorted(ids for ids in by_text.values() if len(ids) > 1)
    assert dups == [["doc-016", "doc-024"], ["doc-051", "doc-060"]]
    by_id = {d.id: d for d in corpus}
    assert by_id["doc-016"].metadata == by_id["doc-024"].metadata


def test_corpus_is_fresh_each_call(corpus: list[CorpusDoc]) -> None:
    a = load_corpus()
    a[0].metadata["topic"] = "mutated"
    assert load_corpus()[0].metadata["topic"] == "astronomy"
    assert any(not t.isascii() for t in (d.text for d in corpus))  # UTF-8 content present
