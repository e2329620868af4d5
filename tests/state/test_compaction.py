"""Compaction: ``store.compact(before=checkpoint)`` and ``valori-store compact``.

The state after compaction, and after reopening, is the head state the store had; the
checkpoints and notes before the cut are still listed; states before the cut are gone
(restore, state_at, replay and receipts say so); the chain after the cut keeps its bytes;
a SIGKILL after any step leaves a store that opens to the same head (the old store before
the log is renamed, the new one after).
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from valori_store import ValoriStore, verify
from valori_store.cli import main as cli_main
from valori_store.errors import (
    CorruptFileError,
    InputError,
    NotFoundError,
    ReadOnlyError,
)
from valori_store.format import frames
from valori_store.receipts import verify_receipt
from valori_store.storage import layout, page_store
from valori_store.store import compaction

SRC = Path(__file__).resolve().parents[2] / "src"
DIM = 6


def _vectors(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, DIM))


def _build(root: Path) -> dict[str, object]:
    """A store with three labelled checkpoints, an image between them, a session turn
    and a receipt before the cut; returns what the tests compare against."""
    s = ValoriStore.open(root, dim=DIM, durability="batch")
    s.upsert(ids=[f"a{i}" for i in range(40)], vectors=_vectors(40, 1), texts=[f"t{i}" for i in range(40)],
             metadatas=[{"i": i} for i in range(40)])
    early = s.search_with_receipt(_vectors(1, 9)[0], k=3)
    one = s.checkpoint("one")
    s.write_image()
    s.upsert(ids=[f"b{i}" for i in range(20)], vectors=_vectors(20, 2))
    s.delete(["a3", "a4"])
    two = s.checkpoint("two")
    sess = s.session("alice")
    s.upsert(ids=["c0"], vectors=_vectors(1, 3))
    turn = sess.mark_turn(label="after-two")
    late = s.search_with_receipt(_vectors(1, 8)[0], k=3)
    three = s.checkpoint("three")
    s.upsert(ids=["a0"], vectors=_vectors(1, 4), texts=["changed"])
    out = {"head": s.state_hash(), "events": s.log_length, "one": one, "two": two, "three": three,
           "early": early[1], "late": late[1], "turn": turn,
           "labels": [(c.seq, c.label) for c in s.history()]}
    s.close()
    return out


def test_compact_keeps_head_history_and_later_checkpoints(tmp_path: Path) -> None:
    facts = _build(tmp_path)
    before = layout.log_path(tmp_path).read_bytes()
    with ValoriStore.open(tmp_path) as s:
        two = facts["two"]
        result = s.compact("two")
        assert result.changed and result.base_seq == two.seq  # type: ignore[attr-defined]
        assert result.log_bytes_after < result.log_bytes_before
        assert s.state_hash() == facts["head"]
        assert s.log_length == facts["events"]
        assert [(c.seq, c.label) for c in s.history()] == facts["labels"]
        with pytest.raises(NotFoundError, match="compaction point"):
            s.restore("one")
        with pytest.raises(NotFoundError, match="compaction point"):
            s.state_at(facts["one"].seq)  # type: ignore[attr-defined]
        assert s.state_at(two.seq).state_hash == two.state_hash  # type: ignore[attr-defined]
        assert s.restore("two").state_hash == two.state_hash  # type: ignore[attr-defined]
        assert s.state_hash() == two.state_hash  # type: ignore[attr-defined]
        s.restore("three")
        assert s.state_hash() == facts["three"].state_hash  # type: ignore[attr-defined]
        assert [t.label for t in s.session("alice").turns()] == ["after-two"]
        head = s.state_hash()
    after = layout.log_path(tmp_path).read_bytes()
    # every frame after the cut kept its bytes (same seq, same chain hash)
    tail_old = before[next(f.end for f in frames.scan(before, "old").frames if f.seq == two.seq):]  # type: ignore[attr-defined]
    new_frames = frames.scan(after, "new").frames
    assert after[new_frames[0].end : new_frames[0].end + len(tail_old)] == tail_old
    old_frames = {f.seq: f for f in frames.scan(before, "old").frames}
    assert new_frames[0].seq == two.seq and new_frames[0].chain == old_frames[two.seq].chain  # type: ignore[attr-defined]
    for f in new_frames[1:]:
        if f.seq in old_frames:
            assert f.chain == old_frames[f.seq].chain and bytes(f.payload) == bytes(old_frames[f.seq].payload)
    assert after[8:10] == (2).to_bytes(2, "little")  # a compacted log's header version
    report = verify(tmp_path)
    assert report.ok, report.problems
    assert report.compacted_at == two.seq and report.state_hash == head  # type: ignore[attr-defined]
    assert all(m.seq >= two.seq for m in page_store.manifests(tmp_path))  # type: ignore[attr-defined]
    with ValoriStore.open(tmp_path) as s:
        assert s.state_hash() == head
        s.upsert(ids=["d0"], vectors=_vectors(1, 5))
        s.checkpoint("four")
    assert verify(tmp_path).ok


def test_receipts_before_the_cut_are_state_unavailable(tmp_path: Path) -> None:
    facts = _build(tmp_path)
    with ValoriStore.open(tmp_path) as s:
        s.compact("two")
        early, late = facts["early"], facts["late"]
        check = s.verify_receipt(early)
        assert check.status == "state-unavailable" and "compacted" in check.message
        assert s.verify_receipt(late).ok
    check = verify_receipt(tmp_path, early)
    assert check.status == "state-unavailable" and "compacted" in check.message
    assert verify_receipt(tmp_path, late).ok


def test_compact_again_later_and_at_the_same_point(tmp_path: Path) -> None:
    facts = _build(tmp_path)
    with ValoriStore.open(tmp_path) as s:
        assert s.compact("one").changed
        again = s.compact("one")
        assert not again.changed
        second = s.compact("three")
        assert second.previous_base_seq == facts["one"].seq  # type: ignore[attr-defined]
        assert [(c.seq, c.label) for c in s.history()] == facts["labels"]
        assert s.state_hash() == facts["head"]
        with pytest.raises(NotFoundError):
            s.restore("two")
    with ValoriStore.open(tmp_path) as s:
        assert s.state_hash() == facts["head"]
        assert [(c.seq, c.label) for c in s.history()] == facts["labels"]
    assert verify(tmp_path).ok


def test_compact_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    mem = ValoriStore(dim=DIM)
    mem.upsert(ids=["x"], vectors=_vectors(1, 1))
    cp = mem.checkpoint()
    with pytest.raises(InputError, match="store directories"):
        mem.compact(cp)
    facts = _build(tmp_path)
    with ValoriStore.open(tmp_path) as s:
        with pytest.raises(NotFoundError):
            s.compact("no-such-label")
        with pytest.raises(NotFoundError):
            s.compact(facts["events"] - 1)  # not a checkpoint
        assert s.state_hash() == facts["head"]
    ro = ValoriStore.open_readonly(tmp_path)
    with pytest.raises(ReadOnlyError):
        ro.compact("two")
    ro.close()


def test_missing_or_damaged_base_is_detected(tmp_path: Path) -> None:
    facts = _build(tmp_path)
    with ValoriStore.open(tmp_path) as s:
        s.compact("two")
    data = bytearray(layout.log_path(tmp_path).read_bytes())
    first = frames.scan(bytes(data), "log").frames[0]
    damaged = bytearray(data)
    damaged[first.offset + 20 + 50] ^= 1  # the recorded state root
    layout.log_path(tmp_path).write_bytes(bytes(damaged))
    with pytest.raises(CorruptFileError):
        ValoriStore.open(tmp_path)
    assert not verify(tmp_path).ok
    layout.log_path(tmp_path).write_bytes(bytes(data))
    manifest = layout.image_path(tmp_path, facts["two"].seq)  # type: ignore[attr-defined]
    saved = manifest.read_bytes()
    for m in page_store.manifests(tmp_path):
        layout.image_path(tmp_path, m.seq).unlink()
    with pytest.raises(CorruptFileError, match="base image"):
        ValoriStore.open(tmp_path)
    report = verify(tmp_path)
    assert not report.ok and "base image" in " ".join(report.problems)
    manifest.write_bytes(saved)
    with ValoriStore.open(tmp_path) as s:
        assert s.state_hash() == facts["head"]


def test_frames_read_in_windows_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    facts = _build(tmp_path)
    with ValoriStore.open(tmp_path) as s:
        s.compact("one")
        log = s._live.log
        whole = [(f.seq, f.chain, bytes(f.payload)) for f in log.frames(log.first_seq)]
        monkeypatch.setattr(log, "WINDOW_BYTES", 64)
        windowed = [(f.seq, f.chain, bytes(f.payload)) for f in log.frames(log.first_seq)]
        assert windowed == whole and whole[-1][0] == facts["events"] - 1


CHILD = r"""
import os, signal, sys
sys.path.insert(0, {src!r})
from valori_store import ValoriStore
from valori_store.store import compaction
step = {step!r}
compaction.crash_hook = lambda name: os.kill(os.getpid(), signal.SIGKILL) if name == step else None
s = ValoriStore.open({root!r})
s.compact("two")
print("DONE", flush=True)
"""


@pytest.mark.parametrize("step", compaction.STEPS)
def test_sigkill_after_every_step_leaves_the_old_or_the_new_store(tmp_path: Path, step: str) -> None:
    root = tmp_path / "store"
    facts = _build(root)
    proc = subprocess.run([sys.executable, "-c", CHILD.format(src=str(SRC), step=step, root=str(root))],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    committed = compaction.STEPS.index(step) >= compaction.STEPS.index("replace")
    with ValoriStore.open(root) as s:
        assert s.state_hash() == facts["head"]
        assert s.log_length == facts["events"]
        assert [(c.seq, c.label) for c in s.history()] == facts["labels"]
        assert s._live.log.first_seq == (facts["two"].seq if committed else 0)  # type: ignore[attr-defined]
        assert not layout.compact_temp_path(root).exists()
    report = verify(root)
    assert report.ok, report.problems
    with ValoriStore.open(root) as s:  # and it can still be compacted (or compacted again)
        s.compact("three")
        assert s.state_hash() == facts["head"]
    assert verify(root).ok


def test_cli_compact_history_and_replay(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    facts = _build(tmp_path / "s")
    root = str(tmp_path / "s")
    assert cli_main(["compact", root, "--before", "alice:1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] and out["base_seq"] == facts["turn"].seq and out["state_hash"] == facts["head"]  # type: ignore[attr-defined]
    assert cli_main(["history", root, "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)["entries"]
    kinds = [(e["seq"], e["event"]) for e in entries]
    assert (facts["one"].seq, "checkpoint") in kinds and (facts["turn"].seq, "compacted") in kinds  # type: ignore[attr-defined]
    assert cli_main(["replay", root, "--to", "one", "--out", str(tmp_path / "r1")]) == 3
    assert "compaction point" in capsys.readouterr().err
    assert cli_main(["replay", root, "--to", "three", "--out", str(tmp_path / "r3"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["match"]
    assert verify(tmp_path / "r3").ok
    assert cli_main(["diff", root, "--from", "three", "--to", "head", "--json"]) == 0
    capsys.readouterr()
    assert cli_main(["verify", root, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"]
