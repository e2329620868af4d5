"""Differential test: ValoriMemoryStore against LangGraph's own InMemoryStore.

Random sequences of puts (single and batched, with repeated keys and identical texts),
deletes, gets, searches with and without a query (namespace prefixes, filters, offsets,
limits) and list_namespaces run against both stores with the same embedder and the same
clock. Results must agree except for the documented, deliberate differences
(docs/langgraph/memory.md), which the comparison models explicitly:

* order: ours is score (exact) descending then namespace then key, and namespace then key
  without a query; InMemoryStore uses insertion order for both. We therefore compare
  against InMemoryStore's full result re-sorted by our documented order (scores within
  EPS count as equal, since its float cosine and our Q16.16 cosine differ slightly);
* created_at: ours keeps the first put's time, InMemoryStore resets it on every put;
* list_namespaces: InMemoryStore also lists namespaces that once held items (or were only
  read); the reference's empty namespaces are dropped before comparing;
* unscored items past the first page: see ``_expected_query_page``.

Item shapes are fixed per key (which fields exist, how many list elements, the index
mode), because InMemoryStore keeps the vectors of fields that a later put no longer has
(another documented difference, tested on its own in test_lg_store.py).
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

import langgraph.store.memory as lg_memory
import pytest
from langgraph.store.base import PutOp, SearchItem
from langgraph.store.memory import InMemoryStore
from lg_fixtures import Clock, LCHashing

from valori_store.langgraph import ValoriMemoryStore

EPS = 2e-3
WORDS = ["apple", "river", "stone", "cloud", "tiger", "piano", "ember", "maple"]
NAMESPACES = [("a",), ("a", "x"), ("a", "y"), ("b",), ("b", "x", "z"), ("c", "x")]
PREFIXES = [(), ("a",), ("a", "x"), ("b",), ("b", "x"), ("zz",)]
KEYS = ["k0", "k1", "k2", "k3", "k4"]
FIELDS = ["text", "items[*].x"]
FILTERS: list[dict[str, Any] | None] = [
    None, {}, {"n": 2}, {"n": {"$gte": 2}}, {"n": {"$lt": 2}}, {"n": {"$gt": 1, "$lte": 3}},
    {"tag": "red"}, {"tag": {"$ne": "red"}}, {"tag": {"$eq": "blue"}}, {"missing": None},
    {"meta": {"lvl": 1}}, {"meta": {"sub": {"z": "p"}}}, {"meta": {}}, {"meta": {"gone": None}},
    {"n": 1, "tag": "blue"}, {"items": [{"x": "apple"}]}, {"meta": {"lvl": {"$gte": 1}}},
    {"tag": {"$ne": None}}, {"meta": None},
]


class _FakeDatetime:
    """Stands in for ``datetime`` inside langgraph.store.memory: ``now`` reads our clock."""

    clock: Clock

    @classmethod
    def now(cls, tz: Any = None) -> datetime:
        return cls.clock()


def _shape(rng: random.Random) -> dict[str, Any]:
    return {
        "text": rng.random() < 0.8, "items": rng.choice([0, 1, 2]), "meta": rng.random() < 0.6,
        "index": rng.choice([None, None, None, False, ["text"]]),
    }


def _value(rng: random.Random, shape: dict[str, Any]) -> dict[str, Any]:
    v: dict[str, Any] = {"n": rng.randint(0, 4), "tag": rng.choice(["red", "blue", None])}
    if shape["text"]:
        v["text"] = " ".join(rng.choice(WORDS[:5]) for _ in range(2))  # never equal to an x below
    if shape["items"]:  # distinct: InMemoryStore cannot index one text twice in one batch
        v["items"] = [{"x": x} for x in rng.sample(WORDS, shape["items"])]
    if shape["meta"]:
        v["meta"] = {"lvl": rng.randint(0, 2), "sub": {"z": rng.choice(["p", "q"])}}
    return v


async def _sync(value: Any) -> Any:
    return value


def _key(item: SearchItem) -> tuple[tuple[str, ...], str]:
    return (tuple(item.namespace), item.key)


class Harness:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.clock = Clock()
        emb = LCHashing(32)
        self.ref = InMemoryStore(index={"dims": 32, "embed": emb, "fields": FIELDS})
        self.ours = ValoriMemoryStore(index={"dims": 32, "embed": emb, "fields": FIELDS}, clock=self.clock)
        self.shapes = {(ns, k): _shape(self.rng) for ns in NAMESPACES for k in KEYS}
        self.created: dict[tuple[tuple[str, ...], str], datetime] = {}
        self.checks = 0

    # -- helpers ------------------------------------------------------------------
    def _prune_reference(self) -> None:
        for ns in [ns for ns, items in self.ref._data.items() if not items]:
            del self.ref._data[ns]

    def _put_op(self) -> PutOp:
        ns, key = self.rng.choice(NAMESPACES), self.rng.choice(KEYS)
        shape = self.shapes[(ns, key)]
        return PutOp(ns, key, _value(self.rng, shape), index=shape["index"])

    def _note_puts(self, ops: list[PutOp]) -> None:
        final = {(op.namespace, op.key): op for op in ops}
        for ik, op in final.items():
            if op.value is None:
                self.created.pop(ik, None)
            else:
                self.created.setdefault(ik, self.clock())

    # -- operations ---------------------------------------------------------------
    async def step(self, use_async: bool) -> None:
        self.clock.tick()
        r = self.rng.random()
        if r < 0.30:
            ops = [self._put_op()]
            if self.rng.random() < 0.3:  # a batch: repeated keys, identical texts
                ops += [self._put_op() for _ in range(self.rng.randint(1, 4))]
                ops.append(ops[0]._replace(value={**ops[0].value, "n": 4}) if ops[0].value else ops[0])
            # InMemoryStore raises on a batch holding one text twice (it embeds each distinct
            # text once, then expects one vector per occurrence): feed it the puts one by one,
            # which ends in the same state; ours gets the real batch.
            for op in ops:
                self.ref.batch([op])
            await (self.ours.abatch(ops) if use_async else _sync(self.ours.batch(ops)))
            self._note_puts(ops)
        elif r < 0.40:
            ns, key = self.rng.choice(NAMESPACES), self.rng.choice(KEYS)
            await self.both("delete", ns, key, use_async=use_async)
            self._note_puts([PutOp(ns, key, None)])
        elif r < 0.50:
            ns, key = self.rng.choice(NAMESPACES), self.rng.choice(KEYS)
            a, b = await self.both("get", ns, key, use_async=use_async)
            self.compare_items([a] if a else [], [b] if b else [], scores=False)
        elif r < 0.70:
            await self.check_search(use_async, query=None)
        elif r < 0.90:
            await self.check_search(use_async, query=" ".join(self.rng.sample(WORDS, 2)))
        else:
            await self.check_namespaces(use_async)
        self._prune_reference()

    async def both(self, method: str, *args: Any, use_async: bool, **kwargs: Any) -> tuple[Any, Any]:
        out = []
        for store in (self.ref, self.ours):
            if use_async:
                out.append(await getattr(store, "a" + method)(*args, **kwargs))
            else:
                out.append(getattr(store, method)(*args, **kwargs))
        return out[0], out[1]

    # -- comparisons --------------------------------------------------------------
    def compare_items(self, ref: list[Any], ours: list[Any], *, scores: bool) -> None:
        assert [_key(i) for i in ours] == [_key(i) for i in ref]
        for a, b in zip(ref, ours):
            assert b.value == a.value
            assert b.updated_at == a.updated_at
            assert b.created_at == self.created[_key(b)]
            if scores:
                assert (a.score is None) == (b.score is None)
                if a.score is not None:
                    assert abs(a.score - b.score) <= EPS
        self.checks += 1

    async def check_search(self, use_async: bool, query: str | None) -> None:
        prefix, flt = self.rng.choice(PREFIXES), self.rng.choice(FILTERS)
        limit, offset = self.rng.randint(0, 6), self.rng.choice([0, 0, 1, 2, 5])
        full_ref, full_ours = await self.both(
            "search", prefix, query=query, filter=flt, limit=1000, use_async=use_async)
        page_ref, page_ours = await self.both(
            "search", prefix, query=query, filter=flt, limit=limit, offset=offset, use_async=use_async)
        if query is None:
            expected = sorted(full_ref, key=_key)
            self.compare_items(expected, full_ours, scores=False)
            self.compare_items(expected[offset: offset + limit], page_ours, scores=False)
            return
        ref_score = {_key(i): i.score for i in full_ref}
        # same items, scores within EPS, and our order is a valid ranking of theirs
        assert sorted(map(_key, full_ours)) == sorted(map(_key, full_ref))
        scored = [i for i in full_ours if i.score is not None]
        unscored = [i for i in full_ours if i.score is None]
        assert full_ours == scored + unscored
        assert [_key(i) for i in unscored] == sorted(_key(i) for i in unscored)
        for i in scored:
            assert ref_score[_key(i)] is not None and abs(ref_score[_key(i)] - i.score) <= EPS
        for a, b in zip(scored, scored[1:]):
            assert a.score > b.score or (a.score == b.score and _key(a) < _key(b))  # score desc, then key
            assert ref_score[_key(a)] >= ref_score[_key(b)] - EPS
        self.compare_items(sorted(full_ref, key=_key), sorted(full_ours, key=_key), scores=True)
        # the page is the slice of our full ranking
        assert [(_key(i), i.score) for i in page_ours] == [(_key(i), i.score) for i in full_ours[offset: offset + limit]]
        # ... and, on a first page, matches InMemoryStore's page up to near-ties
        if offset == 0:
            ref_scored = [i for i in page_ref if i.score is not None]
            ours_scored = [i for i in page_ours if i.score is not None]
            assert len(ours_scored) == len(ref_scored)
            for a, b in zip(ref_scored, ours_scored):
                assert abs(ref_score[_key(a)] - ref_score[_key(b)]) <= EPS
            if limit >= len(full_ref):
                assert sorted(map(_key, page_ours)) == sorted(map(_key, page_ref))
        self.checks += 1

    async def check_namespaces(self, use_async: bool) -> None:
        kwargs: dict[str, Any] = {"limit": self.rng.randint(1, 8), "offset": self.rng.choice([0, 0, 1, 3])}
        if self.rng.random() < 0.5:
            kwargs["prefix"] = self.rng.choice([("a",), ("b", "*"), ("*", "x"), ("a", "x")])
        if self.rng.random() < 0.4:
            kwargs["suffix"] = self.rng.choice([("x",), ("*",), ("x", "z"), ("a",)])
        if self.rng.random() < 0.4:
            kwargs["max_depth"] = self.rng.randint(1, 3)
        a, b = await self.both("list_namespaces", use_async=use_async, **kwargs)
        assert b == a, kwargs
        self.checks += 1


@pytest.fixture
def fake_clock(monkeypatch: pytest.MonkeyPatch) -> type[_FakeDatetime]:
    monkeypatch.setattr(lg_memory, "datetime", _FakeDatetime)
    return _FakeDatetime


@pytest.mark.parametrize("seed", range(12))
async def test_same_results_as_in_memory_store(seed: int, fake_clock: type[_FakeDatetime]) -> None:
    h = Harness(seed)
    fake_clock.clock = h.clock
    use_async = seed % 3 == 2
    for _ in range(120):
        await h.step(use_async)
    assert h.checks >= 50
    # the two stores hold the same items at the end
    every = await h.both("search", (), limit=10_000, use_async=False)
    assert sorted(map(_key, every[1])) == sorted(map(_key, every[0])) and every[0]
