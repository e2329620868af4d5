"""format/touched.py reads only the ids of a write event and a value on demand: it must agree
with the full decoder (events.decode) on every kind of event, and reject payloads whose
lengths run past their end."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from valori_store.errors import CorruptFileError
from valori_store.format import events
from valori_store.format.touched import touched

DIM = 3
ids_st = st.lists(st.text(min_size=1, max_size=6), unique=True, max_size=8)
texts_st = st.one_of(st.none(), st.text(max_size=5))
meta_st = st.sampled_from([b"{}", b'{"a":1}', b'{"t":"\\u0000x"}', '{"é":"ü"}'.encode()])


def _upsert(draw, ids: list[str]) -> events.Upsert:
    rows = np.array([draw(st.lists(st.integers(-(2**31), 2**31 - 1), min_size=DIM, max_size=DIM)) for _ in ids],
                    dtype=np.int32).reshape(len(ids), DIM)
    return events.Upsert(ids, rows, [draw(texts_st) for _ in ids], [draw(meta_st) for _ in ids])


def _plain(draw, ids: list[str]) -> events.Plain:
    return events.Plain(ids, [draw(texts_st) for _ in ids], [draw(meta_st) for _ in ids])


@st.composite
def write_events(draw) -> events.Event:
    ids = draw(ids_st)
    cut1, cut2 = sorted(draw(st.lists(st.integers(0, len(ids)), min_size=2, max_size=2)))
    deletes, vec, plain = ids[:cut1], ids[cut1:cut2], ids[cut2:]
    kind = draw(st.sampled_from(["upsert", "delete", "write", "restore"]))
    if kind == "upsert":
        return _upsert(draw, ids)
    if kind == "delete":
        return events.Delete(ids)
    up, pl = _upsert(draw, vec), _plain(draw, plain)
    if kind == "write":
        return events.Write(deletes, up, pl)
    return events.Restore(draw(st.integers(1, 2**40)), bytes(range(32)), deletes, up, pl)


def _expected(ev: events.Event) -> tuple[list[str], dict[str, tuple[object, object, bytes]]]:
    if isinstance(ev, events.Upsert):
        return [], {i: (ev.rows[k].tolist(), ev.texts[k], ev.metas[k]) for k, i in enumerate(ev.ids)}
    if isinstance(ev, events.Delete):
        return list(ev.ids), {}
    assert isinstance(ev, (events.Write, events.Restore))
    up, pl = ev.upsert, ev.plain
    out = {i: (up.rows[k].tolist(), up.texts[k], up.metas[k]) for k, i in enumerate(up.ids)}
    out.update({i: (None, pl.texts[k], pl.metas[k]) for k, i in enumerate(pl.ids)})
    return list(ev.deletes), out


@settings(max_examples=150, deadline=None)
@given(write_events())
def test_touched_agrees_with_the_full_decoder(ev: events.Event) -> None:
    payload = events.encode(ev)
    decoded = events.decode(ev.kind, payload, DIM, "t", 0)
    deleted, written = _expected(decoded)
    t = touched(ev.kind, payload, DIM, "t", 0)
    assert t is not None
    assert t.deleted == deleted
    assert t.written == list(written)
    values = t.values(set(written) | {"\x00never"})
    assert list(values) == list(written)
    for rid, (row, text, meta) in written.items():
        got_row, got_text, got_meta = values[rid]
        assert (None if got_row is None else got_row.tolist()) == row
        assert got_text == text and bytes(got_meta) == meta


def test_events_that_write_nothing_touch_nothing() -> None:
    for ev in (events.CheckpointMark("x", bytes(32)), events.Note("t", b"{}"), events.Create(DIM, "dot")):
        assert touched(ev.kind, events.encode(ev), DIM, "t", 0) is None


@pytest.mark.parametrize("cut", [1, 5, 9, 17])
def test_a_truncated_payload_is_corrupt(cut: int) -> None:
    ev = events.Write(["gone"], events.Upsert(["a", "b"], np.ones((2, DIM), dtype=np.int32), ["x", None],
                                              [b"{}", b'{"k":1}']))
    payload = events.encode(ev)
    with pytest.raises(CorruptFileError):
        touched(ev.kind, payload[:-cut], DIM, "t", 0)
