"""A built-in deterministic text embedder: feature hashing, no model, no network.

:class:`HashingEmbedder` turns text into a unit-length float64 vector. The same text,
dimension, n-gram range and seed give the same bits on every machine and in every
process (whatever ``PYTHONHASHSEED``), because every step is either exact integer
arithmetic or one correctly rounded IEEE-754 operation.

Rules (algorithm version ``hashing-v1``):

1. **Normalise.** ``t = NFKC(casefold(NFKC(text)))`` (Unicode "NFKC casefold" for
   caseless matching; ``"Café"`` and ``"Cafe\\u0301"`` become the same string).
2. **Features.** Words are the matches of the regex ``\\w+`` in ``t`` (Python ``re``,
   Unicode mode). Each word ``w`` gives one *word feature* ``"w:" + w`` with weight
   ``WORD_WEIGHT`` (2) and, for every ``n`` in ``ngram_range`` (inclusive) with
   ``n <= len(p)``, every length-``n`` substring ``g`` of the padded word
   ``p = "<" + w + ">"`` gives one *n-gram feature* ``"c:" + g`` with weight
   ``NGRAM_WEIGHT`` (1). Lengths count code points. Repeats add up (term frequency).
   A text with no word (empty, blank, punctuation only) gives the single *empty feature*
   ``"e:"`` with weight 1.
3. **Hash.** ``x = int.from_bytes(BLAKE2b(UTF-8(feature), digest_size=8, key=K,
   person=b"valori-hash-emb1"), "little")`` with ``K = BLAKE2b(UTF-8(seed),
   digest_size=32, person=b"valori-seed-key1")``. Bucket ``(x >> 1) % dim``; sign
   ``+1`` if ``x`` is even, ``-1`` if odd. Python's ``hash()`` is never used.
4. **Count.** ``counts[bucket] += sign * weight`` in Python integers (exact). If the
   counts cancel to the zero vector (only possible through hash collisions), the counts
   of the empty feature alone are used instead, so the result is never the zero vector.
5. **Normalise to unit length** with one float step per component:
   ``norm = math.sqrt(sum(c * c))`` (exact integer sum, correctly rounded conversion and
   square root) and ``v[i] = float(counts[i]) / norm`` (exact conversion for
   ``|counts[i]| <= 2**53``, correctly rounded division).

The result has ``|sum(v**2) - 1| <= ~dim * 2**-52``; cosine similarity is ``v @ u``.
"""

from __future__ import annotations

import hashlib
import math
import operator
import re
import unicodedata
from collections.abc import Sequence
from typing import Any

import numpy as np

from valori_store.errors import InputError

__all__ = [
    "ALGORITHM",
    "EMPTY_FEATURE",
    "NGRAM_WEIGHT",
    "WORD_WEIGHT",
    "HashingEmbedder",
    "normalize_text",
]

ALGORITHM = "hashing-v1"
"""Version tag of the rules above; changes whenever any output bit could change."""

WORD_WEIGHT = 2
"""Integer weight of a whole-word feature."""

NGRAM_WEIGHT = 1
"""Integer weight of a character n-gram feature."""

EMPTY_FEATURE = "e:"
"""The feature used for a text without words (and for fully cancelled counts)."""

_TOKEN_RE = re.compile(r"\w+")
_FEATURE_PERSON = b"valori-hash-emb1"  # BLAKE2b personalisation (16 bytes max)
_SEED_PERSON = b"valori-seed-key1"
_CACHE_LIMIT = 1 << 16  # words cached per embedder; the cache is cleared when full
_MAX_NGRAM = 64


def normalize_text(text: str) -> str:
    """Return ``NFKC(casefold(NFKC(text)))``, the form features are taken from."""
    _check_text(text)
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())


def _check_text(text: object, where: str = "text") -> str:
    if not isinstance(text, str):
        raise InputError(f"{where} must be a str, got {type(text).__name__}")
    return text


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool):
        raise InputError(f"{name} must be an int, got bool")
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise InputError(f"{name} must be an int, got {type(value).__name__}") from None


class HashingEmbedder:
    """Deterministic feature-hashing text embedder (see the module docstring for the rules).

    Args:
        dim: output dimension, an int >= 1.
        ngram_range: inclusive ``(min_n, max_n)`` character n-gram lengths,
            ``1 <= min_n <= max_n <= 64``.
        seed: any str; it keys the hash, so different seeds give unrelated embeddings.

    Outputs are float64, unit L2 norm (never the zero vector), and a pure function of
    ``(text, dim, ngram_range, seed)``. Instances are thread-safe and picklable.
    LangChain-``Embeddings``-shaped methods are provided without importing LangChain.
    """

    __slots__ = ("_dim", "_ngram_range", "_seed", "_base", "_cache", "_empty")

    def __init__(
        self,
        dim: int = 384,
        ngram_range: tuple[int, int] = (3, 5),
        seed: str = "valori-v1",
    ) -> None:
        dim = _check_int(dim, "dim")
        if dim < 1:
            raise InputError(f"dim must be >= 1, got {dim}")
        if not isinstance(ngram_range, (tuple, list)) or len(ngram_range) != 2:
            raise InputError(f"ngram_range must be a (min_n, max_n) pair, got {ngram_range!r}")
        lo = _check_int(ngram_range[0], "ngram_range[0]")
        hi = _check_int(ngram_range[1], "ngram_range[1]")
        if not 1 <= lo <= hi <= _MAX_NGRAM:
            raise InputError(
                f"ngram_range must satisfy 1 <= min_n <= max_n <= {_MAX_NGRAM}, got ({lo}, {hi})"
            )
        if not isinstance(seed, str):
            raise InputError(f"seed must be a str, got {type(seed).__name__}")
        try:
            seed_bytes = seed.encode("utf-8")
        except UnicodeEncodeError:
            raise InputError("seed must be valid Unicode (no lone surrogates)") from None
        key = hashlib.blake2b(seed_bytes, digest_size=32, person=_SEED_PERSON).digest()
        self._dim = dim
        self._ngram_range = (lo, hi)
        self._seed = seed
        # Keyed base state; .copy() per feature is ~2x faster than re-keying.
        self._base = hashlib.blake2b(digest_size=8, key=key, person=_FEATURE_PERSON)
        self._cache: dict[str, tuple[tuple[int, int], ...]] = {}
        self._empty = self._slot(EMPTY_FEATURE)

    # -- configuration ---------------------------------------------------------------

    @property
    def dim(self) -> int:
        """Output dimension."""
        return self._dim

    @property
    def ngram_range(self) -> tuple[int, int]:
        """Inclusive character n-gram lengths ``(min_n, max_n)``."""
        return self._ngram_range

    @property
    def seed(self) -> str:
        """The hash seed."""
        return self._seed

    def __repr__(self) -> str:
        return (
            f"HashingEmbedder(dim={self._dim}, ngram_range={self._ngram_range}, "
            f"seed={self._seed!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HashingEmbedder):
            return NotImplemented
        return (self._dim, self._ngram_range, self._seed) == (
            other._dim,
            other._ngram_range,
            other._seed,
        )

    def __hash__(self) -> int:
        return hash((self._dim, self._ngram_range, self._seed))

    def __reduce__(self) -> tuple[Any, ...]:
        # hashlib objects cannot be pickled; rebuild from the configuration.
        return (HashingEmbedder, (self._dim, self._ngram_range, self._seed))

    # -- core ------------------------------------------------------------------------

    def _slot(self, feature: str) -> tuple[int, int]:
        """Return ``(bucket, sign)`` of one feature string (rule 3)."""
        h = self._base.copy()
        h.update(feature.encode("utf-8"))
        x = int.from_bytes(h.digest(), "little")
        return (x >> 1) % self._dim, -1 if x & 1 else 1

    def _word_features(self, word: str) -> list[tuple[str, int]]:
        """Features of one normalised word with their weights (rule 2), repeats kept."""
        lo, hi = self._ngram_range
        out = [("w:" + word, WORD_WEIGHT)]
        padded = "<" + word + ">"
        size = len(padded)
        for n in range(lo, min(hi, size) + 1):
            for i in range(size - n + 1):
                out.append(("c:" + padded[i : i + n], NGRAM_WEIGHT))
        return out

    def _word_deltas(self, word: str) -> tuple[tuple[int, int], ...]:
        """Cached ``(bucket, signed count)`` contributions of one normalised word (rules 2-4).

        A word's features depend on the word alone, so its exact integer contribution is
        computed once per embedder and reused (a pure cache: results never depend on it).
        """
        deltas = self._cache.get(word)
        if deltas is None:
            acc: dict[int, int] = {}
            for feature, weight in self._word_features(word):
                bucket, sign = self._slot(feature)
                acc[bucket] = acc.get(bucket, 0) + sign * weight
            deltas = tuple((b, c) for b, c in acc.items() if c != 0)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = deltas
        return deltas

    def features(self, text: str) -> dict[str, int]:
        """Return the weighted features of ``text`` (rules 1-2): feature -> total weight.

        Keys are in first-occurrence order; the weights are exact integers. This is the
        reference definition; :meth:`counts` and :meth:`embed` use a per-word cache of it.
        """
        weights: dict[str, int] = {}
        for word in _TOKEN_RE.findall(normalize_text(text)):
            for feature, weight in self._word_features(word):
                weights[feature] = weights.get(feature, 0) + weight
        if not weights:
            weights[EMPTY_FEATURE] = 1
        return weights

    def _sparse_counts(self, text: str) -> dict[int, int]:
        """Nonzero integer counts ``bucket -> count`` of ``text`` (rules 1-4)."""
        words: dict[str, int] = {}
        for word in _TOKEN_RE.findall(normalize_text(text)):
            words[word] = words.get(word, 0) + 1
        counts: dict[int, int] = {}
        get = counts.get
        for word, mult in words.items():
            for bucket, delta in self._word_deltas(word):
                counts[bucket] = get(bucket, 0) + mult * delta
        nonzero = {b: c for b, c in counts.items() if c != 0}
        if not nonzero:  # no words, or every count cancelled (hash collisions only)
            bucket, sign = self._empty
            nonzero = {bucket: sign}
        return nonzero

    def counts(self, text: str) -> np.ndarray:
        """Return the exact integer counts of ``text`` (rules 1-4), int64, shape ``(dim,)``.

        Never all zero. ``embed(text)`` is exactly ``counts / sqrt(sum(counts**2))``.
        """
        out = np.zeros(self._dim, dtype=np.int64)
        for bucket, c in self._sparse_counts(text).items():
            out[bucket] = c
        return out

    def _embed_into(self, text: str, out: np.ndarray) -> None:
        """Write the unit vector of ``text`` into the zeroed float64 row ``out`` (rule 5)."""
        sparse = self._sparse_counts(text)
        sumsq = 0
        for c in sparse.values():
            sumsq += c * c  # Python ints: exact
        norm = math.sqrt(sumsq)  # int -> float correctly rounded, sqrt correctly rounded
        buckets = np.fromiter(sparse.keys(), dtype=np.intp, count=len(sparse))
        values = np.fromiter(sparse.values(), dtype=np.float64, count=len(sparse))
        out[buckets] = values / norm  # one correctly rounded division per component

    def embed(self, text: str) -> np.ndarray:
        """Embed one text: float64, shape ``(dim,)``, unit L2 norm, never zero."""
        out = np.zeros(self._dim, dtype=np.float64)
        self._embed_into(text, out)
        return out

    def embed_many(self, texts: Sequence[str]) -> np.ndarray:
        """Embed texts: float64, shape ``(len(texts), dim)``; row ``i`` is ``embed(texts[i])``.

        Every item is checked before any work is done; a non-str item raises
        :class:`~valori_store.errors.InputError` naming its index.
        """
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise InputError(
                f"texts must be a sequence of str (e.g. a list), got {type(texts).__name__}"
            )
        items = list(texts)
        for i, t in enumerate(items):
            _check_text(t, f"texts[{i}]")
        out = np.zeros((len(items), self._dim), dtype=np.float64)
        for i, t in enumerate(items):
            self._embed_into(t, out[i])
        return out

    # -- LangChain Embeddings-shaped interface ---------------------------------------

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Embed documents as lists of Python floats (LangChain ``Embeddings`` shape)."""
        return self.embed_many(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """Embed a query as a list of Python floats (LangChain ``Embeddings`` shape)."""
        return self.embed(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Async :meth:`embed_documents` (runs synchronously; the work is CPU-bound and short)."""
        return self.embed_documents(texts)

    async def aembed_query(self, text: str) -> list[float]:
        """Async :meth:`embed_query` (runs synchronously)."""
        return self.embed_query(text)
