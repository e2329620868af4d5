"""Crash test: SIGKILL a writer at seeded moments and check every acknowledged write survives.

A child process opens a store with ``durability="fsync"`` and runs a deterministic
operation stream (upserts, overwrites, deletes, checkpoints). After each call returns it
prints ``ACK <op> <ids>`` and flushes. The parent kills it with SIGKILL after a seeded
number of acknowledgements (plus a seeded delay), reopens the directory and checks:

* every acknowledged operation is in the recovered state: the state equals the state after
  all acknowledged operations, or after those plus the single operation in flight;
* every printed id has exactly the expected vector, text and metadata (or is absent if a
  later acknowledged operation deleted it);
* the state hash equals ``verify(dir).state_hash`` (a replay of the log from empty) and
  ``ValoriStore.from_bytes(store.to_bytes()).state_hash()``;
* any warning is a TornTailWarning.

One kill lands right after a checkpoint starts, and one while the image written after it is
being written (the manifest's ``os.replace`` is made to block after its pages are written,
so the kill is certain to hit that window).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from valori_store import ValoriStore, verify
from valori_store.storage.recovery import TornTailWarning

SRC = Path(__file__).resolve().parents[2] / "src"
SEED = 20240611

# The operation stream, shared verbatim by the child and the parent's model.
OPS_SRC = r'''
DIM = 8

def _vec(i, j):
    return [(((i * 31 + j * 17 + c * 7) % 97) - 48) / 128.0 + (0.5 if c == j % 8 else 0.0) for c in range(DIM)]

def op(i):
    """Operation number i: ('upsert', ids, vectors, texts, metadatas) | ('delete', ids) | ('checkpoint', label)."""
    if i % 10 == 9:
        return ("checkpoint", f"cp{i}")
    if i % 7 == 6:
        return ("delete", [f"b{i - 3}-0", f"b{i - 5}-1", "never-existed"])
    k = 1 + i % 4
    ids = [f"b{i}-{j}" for j in range(k)]
    if i % 5 == 0 and i >= 2:
        ids.append(f"b{i - 2}-0")  # overwrite an older record with new content
    vecs = [_vec(i, j) for j in range(len(ids))]
    texts = [None if j == 1 else f"text {i}/{j} \u00e9\u4e2d" for j in range(len(ids))]
    metas = [{"op": i, "j": j, "tags": ["t", str(i % 3)], "half": i / 2, "odd": i % 2 == 1} for j in range(len(ids))]
    return ("upsert", ids, vecs, texts, metas)

def run(store, i):
    o = op(i)
    if o[0] == "upsert":
        return store.upsert(o[2], ids=o[1], texts=o[3], metadatas=o[4])
    if o[0] == "delete":
        store.delete(o[1])
        return o[1]
    store.checkpoint(o[1])
    store.write_image()  # an image after every checkpoint (a no-op in memory): kills land inside it too
    return []
'''

CHILD_SRC = r'''
import os, sys, time
root, start, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3]
from valori_store import ValoriStore
exec(OPS_SRC)
if mode == "image":
    real_replace = os.replace
    def slow_replace(src, dst, *a, **k):
        if str(dst).endswith(".vimg"):
            print("IMAGE " + str(dst), flush=True)
            time.sleep(120)
        return real_replace(src, dst, *a, **k)
    os.replace = slow_replace
store = ValoriStore.open(root, dim=DIM, metric="dot", durability="fsync")
print("OPEN %d" % store.log_length, flush=True)
i = start
while True:
    ids = run(store, i)
    print("ACK %d %s" % (i, ",".join(ids)), flush=True)
    i += 1
'''.replace("exec(OPS_SRC)", "exec(" + repr(OPS_SRC) + ")")

NS: dict[str, Any] = {}
exec(OPS_SRC, NS)
op = NS["op"]
run_op = NS["run"]


class Model:
    """In-memory stores giving the state after each prefix of the operation stream."""

    def __init__(self) -> None:
        self.store = ValoriStore(NS["DIM"], "dot")
        self.hashes = [self.store.state_hash()]  # hashes[n]: state after ops 0..n-1

    def hash_after(self, n: int) -> str:
        while len(self.hashes) <= n:
            run_op(self.store, len(self.hashes) - 1)
            self.hashes.append(self.store.state_hash())
        return self.hashes[n]

    def state_after(self, n: int) -> ValoriStore:
        s = ValoriStore(NS["DIM"], "dot")
        for i in range(n):
            run_op(s, i)
        return s


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_and_kill(script: Path, root: Path, start: int, mode: str, kill_after: int, delay: float) -> list[str]:
    """Run the child from op ``start``; SIGKILL it after ``kill_after`` ACKs (+delay). Returns its stdout lines."""
    proc = subprocess.Popen(
        [sys.executable, str(script), str(root), str(start), mode],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines: list[str] = []
    acks = 0
    # readline() blocks: a watchdog kills a child that stops making progress (e.g. a cold
    # numba compile on a loaded machine takes long, a hang must not stall the suite)
    watchdog = threading.Timer(300, proc.kill)
    watchdog.start()
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError(f"child exited early: {proc.wait()} {proc.stderr.read()}; output: {lines}")
            lines.append(line.rstrip("\n"))
            if line.startswith("ACK"):
                acks += 1
            if (mode == "image" and line.startswith("IMAGE")) or (mode != "image" and acks >= kill_after):
                if delay:
                    time.sleep(delay)
                break
        else:
            raise AssertionError("child made no progress")
    finally:
        watchdog.cancel()
        proc.send_signal(signal.SIGKILL)
        # read the rest through the same text wrapper: communicate() would read the pipe
        # directly and lose lines already sitting in the wrapper's buffer
        rest = proc.stdout.read()
        err = proc.stderr.read()
        proc.wait(timeout=60)
    # lines the child flushed before it died are acknowledged too
    lines += [ln for ln in rest.splitlines() if ln]
    assert proc.returncode == -signal.SIGKILL, (proc.returncode, err)
    return lines


def check_recovered(root: Path, model: Model, acked_upto: int) -> tuple[int, ValoriStore]:
    """Open after a crash; returns (number of ops the state reflects, the open store)."""
    rep = verify(root)  # before the open: may report a torn tail, must not fail
    assert rep.ok, str(rep)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = ValoriStore.open(root, durability="fsync")
    for w in caught:
        assert issubclass(w.category, TornTailWarning), f"unexpected warning {w.category.__name__}: {w.message}"
    h = store.state_hash()
    # ops 0..acked_upto are acknowledged; op acked_upto+1 was in flight
    if h == model.hash_after(acked_upto + 1):
        applied = acked_upto + 1
    elif h == model.hash_after(acked_upto + 2):
        applied = acked_upto + 2
    else:
        store.close()
        raise AssertionError(f"recovered state matches neither the acknowledged ops 0..{acked_upto} nor one more")
    # state hash == replay of the log from empty == reload of the snapshot bytes
    rep = verify(root)
    assert rep.ok and not rep.warnings, str(rep)
    assert rep.state_hash == h
    assert ValoriStore.from_bytes(store.to_bytes()).state_hash() == h
    assert store.verify().ok
    return applied, store


def test_sigkill_never_loses_an_acknowledged_write(tmp_path: Path) -> None:
    t0 = time.monotonic()
    script = tmp_path / "crash_child.py"
    script.write_text(CHILD_SRC)
    root = tmp_path / "store"
    rng = random.Random(SEED)
    model = Model()
    printed: dict[str, int] = {}  # id -> op that last acknowledged writing it
    deleted_after: dict[str, int] = {}
    next_op = 0
    # (mode, kill after n ACKs, delay): random moments, one right at a checkpoint, one inside its image write
    plan: list[tuple[str, int, float]] = [("random", rng.randint(3, 25), rng.uniform(0, 0.004)) for _ in range(3)]
    plan.insert(1, ("ckpt", 0, rng.uniform(0, 0.002)))
    plan.insert(3, ("image", 0, 0.0))
    plan.append(("random", rng.randint(3, 25), 0.0))
    image_kill_label = None
    for mode, kill_after, delay in plan:
        if mode == "ckpt":  # kill just after the ACK preceding a checkpoint op
            first_cp = next(i for i in range(next_op + 1, next_op + 30) if op(i)[0] == "checkpoint")
            kill_after = first_cp - next_op
        lines = run_and_kill(script, root, next_op, "random" if mode == "ckpt" else mode, kill_after, delay)
        acked = [ln for ln in lines if ln.startswith("ACK")]
        assert lines[0].startswith("OPEN")
        # in image mode the very first op may be the checkpoint whose image write is killed
        assert acked or mode == "image", f"no ACK from the child; output: {lines}"
        last = next_op - 1
        for ln in acked:
            _, i_s, *rest = ln.split(" ", 2)
            i = int(i_s)
            assert i == last + 1, f"ops are acknowledged in order; child output: {lines}"
            last = i
            ids = rest[0].split(",") if rest and rest[0] else []
            o = op(i)
            if o[0] == "upsert":
                assert ids == o[1]
                for rid in ids:
                    printed[rid] = i
                    deleted_after.pop(rid, None)
            elif o[0] == "delete":
                for rid in ids:
                    deleted_after[rid] = i
        if mode == "image":
            img_line = [ln for ln in lines if ln.startswith("IMAGE")]
            assert img_line, lines
            assert op(last + 1)[0] == "checkpoint"
            image_kill_label = op(last + 1)[1]
            # the killed image write left its temp file (the manifest's; its pages are done) ...
            leftovers = [p.name for p in (root / "images").iterdir() if not p.name.endswith(".vimg")]
            assert leftovers, "expected the half-finished image temp file"
        applied, store = check_recovered(root, model, last)
        try:
            expected = model.state_after(applied)
            # every acknowledged id is there with its exact content (unless an acked delete removed it)
            for rid, i in printed.items():
                want = expected.get([rid])
                got = store.get([rid])
                if rid in deleted_after:
                    assert not got, f"{rid} was deleted by acknowledged op {deleted_after[rid]}"
                    continue
                if not want:  # the in-flight (unacknowledged) op was a delete that did land
                    assert applied == last + 2 and op(last + 1)[0] == "delete" and rid in op(last + 1)[1]
                    assert not got
                    continue
                assert got, f"acknowledged id {rid} (op {i}) was lost"
                assert got[0].vector.tolist() == want[0].vector.tolist()
                assert got[0].text == want[0].text
                assert got[0].metadata == want[0].metadata
            assert store.ids() == expected.ids()
            if mode == "image":
                # the checkpoint event was synced before its image was written: it is in history
                labels = [c.label for c in store.history()]
                assert image_kill_label in labels
                assert store.history()[-1].label == image_kill_label
                # ... which reopening removed (issue 12, item 10)
                leftovers = [p.name for p in (root / "images").iterdir() if not p.name.endswith(".vimg")]
                assert not leftovers, f"reopening left temp files of killed writes: {leftovers}"
                assert not (root / "images" / f"{store.history()[-1].seq:012d}.vimg").exists()
        finally:
            store.close()
        next_op = last + 1  # re-running the in-flight op is idempotent for the state
    # every checkpoint in history restores to the model's state at that op
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        store = ValoriStore.open(root)
    try:
        hist = store.history()
        assert len(hist) >= 2
        for cp in hist:
            i = int(cp.label[2:])
            assert cp.state_hash == model.hash_after(i)
            store.restore(cp)
            assert store.state_hash() == model.hash_after(i)
    finally:
        store.close()
    assert verify(root).ok
    assert time.monotonic() - t0 < 60, "crash test too slow"


@pytest.mark.parametrize("kill_point", ["after_pages", "after_image_tmp_written"])
def test_image_write_interrupted_leaves_the_last_good_state(tmp_path: Path, kill_point: str) -> None:
    """Simulated in-process: an image write that dies after its pages, or with its manifest
    half-written, leaves a store that reopens to the same state from the log."""
    from valori_store.format import images as images_mod
    from valori_store.storage import atomic

    root = tmp_path / "s"
    s = ValoriStore.open(root, dim=NS["DIM"], metric="dot")
    for i in range(9):
        run_op(s, i)
    s.checkpoint("cp9")
    h = s.state_hash()

    class Killed(BaseException):
        pass

    def die(*args: object, **kwargs: object) -> None:
        raise Killed()

    mp = pytest.MonkeyPatch()
    if kill_point == "after_pages":
        mp.setattr(images_mod, "encode_manifest", die)
    else:
        real = atomic.os.replace
        mp.setattr(atomic.os, "replace", lambda a, b: die() if str(b).endswith(".vimg") else real(a, b))
    try:
        with pytest.raises(Killed):
            s.write_image()
    finally:
        mp.undo()
    # simulate the process dying: drop the lock without a clean close
    os.close(s._live.lock_fd)  # noqa: SLF001 - the test impersonates the kernel here
    s._live.closed = True  # noqa: SLF001
    s._live.log.fh.close()  # noqa: SLF001
    assert not list((root / "images").glob("*.vimg"))
    assert list((root / "pages").glob("*.vpg")), "the pages were written before the manifest"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s2 = ValoriStore.open(root)
    try:
        assert s2.state_hash() == h
        assert [c.label for c in s2.history()] == ["cp9"]
        run_op(s2, 10)
        s2.restore("cp9")  # no image: rebuilt from the log
        assert s2.state_hash() == h
        s2.write_image()  # the next image reuses or replaces the orphaned pages
        assert len(list((root / "images").glob("*.vimg"))) == 1
    finally:
        s2.close()
    assert verify(root).ok


def test_crash_during_create_leaves_an_openable_directory(tmp_path: Path) -> None:
    from valori_store import CorruptFileError
    from valori_store.storage import atomic
    from valori_store.storage.filelog import FILE_HEADER

    class Killed(BaseException):
        pass

    def die(*args: object) -> None:
        raise Killed()

    root = tmp_path / "s"
    mp = pytest.MonkeyPatch()
    mp.setattr(atomic.os, "replace", die)  # dies after writing the temp file, before the rename
    try:
        with pytest.raises(Killed):
            ValoriStore.open(root, dim=4, metric="dot")
    finally:
        mp.undo()
    assert not (root / "events.vlog").exists()
    # the log appears whole or not at all, so a log cut inside its create event is damage
    (root / "events.vlog").write_bytes(FILE_HEADER + b"VF")
    with pytest.raises(CorruptFileError):
        ValoriStore.open(root)
    (root / "events.vlog").unlink()
    # nothing was ever acknowledged; creating the store again must work
    with ValoriStore.open(root, dim=4, metric="dot") as s:
        assert len(s) == 0 and s.log_length == 1
