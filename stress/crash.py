"""The crash loop: SIGKILL a writer at seeded random moments, reopen, check everything.

Each iteration starts ``crash_child.py`` on the same store directory (``fsync`` and
``batch`` durability alternating) from the operation after the one the store was found
at, and kills it with SIGKILL at a moment drawn from the seed: after a random number of
returned calls plus a random delay, at a random time after it opened, at a random time
after it started (often inside the recovery of the previous kill), or just after it began
a checkpoint, restore, image write, save or compaction. The parent then checks:

* the directory opens (no CorruptFileError or other error) with only RecoveryWarnings, and
  leaves no temp file of a killed write behind;
* its log length and content equal the model's after some operation ``j`` between the
  last acknowledged one and the one in flight (a prefix of the stream; every record's
  vector, text and metadata exact), so every acknowledged write is there, exactly;
* each acknowledged upsert/delete of this run is visible (or superseded by a later
  operation of the prefix), every checkpoint is listed with its seq and its root;
* its root equals the root of a new in-memory store holding the same content, and
  ``valori_store.verify(dir)`` passes with that root;
* the snapshot file written by ``save(path)`` is absent (no save returned yet), or loads
  whole (digest checked) and holds the state of the last save that returned or of the one
  in flight: the old file or the new one, never a torn mix.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

from common import Failed, Tally, check, diff_content, fresh_hash, store_content
from crash_ops import DIM, METRIC, Model, effect, make_ops

from valori_store import ValoriStore, verify
from valori_store.storage.atomic import is_temp_name
from valori_store.storage.image_files import RecoveryWarning

CHILD = Path(__file__).resolve().parent / "crash_child.py"
SLOW_KINDS = ("checkpoint", "restore", "image", "save", "compact")


class Child:
    """One child process and the lines it printed (read on a thread, so the parent can
    kill at a precise moment)."""

    def __init__(self, args: list[str], trigger: Any, err_path: Path) -> None:
        self.t0 = time.monotonic()
        self.err = open(err_path, "w")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen([sys.executable, str(CHILD), *args], stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, encoding="utf-8", bufsize=1)
        self.lines: list[str] = []
        self.open_at: float | None = None
        self.fired = threading.Event()
        self.trigger = trigger
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            if line.startswith("OPEN") and self.open_at is None:
                self.open_at = time.monotonic()
            if not self.fired.is_set() and self.trigger(self, line):
                self.fired.set()
        self.fired.set()  # EOF: the child ended (or died) by itself

    def kill(self) -> int:
        self.proc.send_signal(signal.SIGKILL)
        rc = self.proc.wait(timeout=120)
        self.reader.join(120)
        self.err.close()
        return rc


def _plan(rng: random.Random, startup: float) -> tuple[str, Any, float]:
    """(kind, parameter, delay) of one kill moment."""
    r = rng.random()
    if r < 0.40:
        return "after-returns", rng.randint(0, 40), rng.uniform(0, 0.015)
    if r < 0.60:
        return "after-open", None, rng.uniform(0, 0.6)
    if r < 0.75:
        return "after-start", None, rng.uniform(0.5, 1.3) * startup
    return "in-slow-op", rng.randint(0, 25), rng.uniform(0, 0.004)


def _trigger(kind: str, param: Any, ops: list) -> Any:
    state = {"done": 0}

    def fire(child: Child, line: str) -> bool:
        if kind == "after-returns":
            if line.startswith("OPEN") and param == 0:
                return True
            if line.startswith("DONE"):
                state["done"] += 1
                return state["done"] >= param
        elif kind == "after-open":
            return line.startswith("OPEN")
        elif kind == "in-slow-op":
            if line.startswith("DONE"):
                state["done"] += 1
            if line.startswith("BEGIN") and state["done"] >= param:
                return ops[int(line.split()[1])][0] in SLOW_KINDS
        return False

    return fire


def _leftover_temp_files(root: Path) -> list[str]:
    out = []
    for dirpath, _, files in os.walk(root):
        for name in files:
            if is_temp_name(name) or name.endswith(".compact"):
                out.append(str(Path(dirpath, name).relative_to(root)))
    return out


def crash(kills: int, seed: int, work: Path) -> dict[str, Any]:
    t_start = time.monotonic()
    n = kills * 45 + 200
    ops = make_ops(seed, n)
    rng = random.Random(seed * 7919 + 1)
    root = work / "crash" / "store"
    snap = work / "crash" / "snapshot.vsnap"
    root.parent.mkdir(parents=True, exist_ok=True)
    model = Model()  # the state the store was last found in (checked)
    snap_content: dict | None = None  # content of the snapshot save that returned last
    cp_hash: dict[str, str] = {}
    startups: list[float] = []
    modes: dict[str, dict[str, Any]] = {m: {"iterations": 0, "in_flight": Counter(), "acked_ops": 0,
                                            "acked_records": 0, "superseded": 0, "returned_not_acked": 0,
                                            "rolled_back": 0, "warned": 0, "torn_bytes": 0, "plans": Counter()}
                                        for m in ("fsync", "batch")}
    totals = Tally()
    for it in range(kills):
        mode = "fsync" if it % 2 == 0 else "batch"
        st = modes[mode]
        start = model.pos + 1
        check(start < n - 60, f"kill {it}: ran out of planned operations")
        startup = statistics.median(startups) if startups else 1.0
        kind, param, delay = _plan(rng, startup)
        st["plans"][kind] += 1
        child = Child([str(root), str(snap), mode, str(seed), str(n), str(start)], _trigger(kind, param, ops),
                      work / "crash" / "child.err")
        if kind == "after-start":
            time.sleep(delay)
        else:
            if not child.fired.wait(300):
                child.kill()
                raise Failed(f"kill {it}: the child made no progress in 300 s; output: {child.lines[-5:]}")
            time.sleep(delay)
        exited = child.proc.poll()
        rc = child.kill()
        lines = list(child.lines)
        if exited is not None or rc != -signal.SIGKILL:
            err = (work / "crash" / "child.err").read_text()[-2000:]
            raise Failed(f"kill {it} ({mode}): the child ended by itself (exit {rc}) before the kill; "
                         f"last output {lines[-3:]}; stderr: {err}")
        if child.open_at is not None:
            startups.append(child.open_at - child.t0)

        # ------------------------------------------------ what the child reported
        opened = [ln for ln in lines if ln.startswith("OPEN")]
        if opened:
            check(int(opened[0].split()[1]) == model.log_length,
                  f"kill {it}: the child opened a log of {opened[0].split()[1]} events, the parent had found "
                  f"{model.log_length}")
        done, acked, begun = start - 1, start - 1, start - 1
        returned_saves: list[int] = []
        for ln in lines:
            tag, _, rest = ln.partition(" ")
            if tag in ("BEGIN", "DONE", "ACK"):
                i_s, _, eff = rest.partition(" ")
                i = int(i_s)
                if tag == "BEGIN":
                    check(i == done + 1, f"kill {it}: op {i} began after op {done} returned")
                    begun = i
                elif tag == "DONE":
                    check(i == done + 1, f"kill {it}: op {i} returned after op {done}")
                    check(eff == effect(i, ops[i]), f"kill {it}: op {i} reported {eff!r}, the stream says "
                                                     f"{effect(i, ops[i])!r}")
                    done = i
                    if ops[i][0] == "save":
                        returned_saves.append(i)
                else:
                    check(i == done and eff == effect(i, ops[i]), f"kill {it}: bad acknowledgement {ln!r}")
                    acked = i
        if not opened:
            flight = "open (recovery)"
        elif begun > done:
            flight = ops[begun][0]
        else:
            flight = "between calls"
        st["in_flight"][flight] += 1

        # ------------------------------------------------ the model's candidate states
        steps = [model]
        for i in range(start, min(done + 2, n)):
            m = steps[-1].copy()
            m.apply(i, ops[i])
            steps.append(m)

        def at(j: int) -> Model:
            return steps[j - start + 1]

        # ------------------------------------------------ reopen and check
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                s = ValoriStore.open(root, durability=mode)
            except Exception as exc:  # noqa: BLE001 - any error opening is the failure we look for
                raise Failed(f"kill {it} ({mode}, during {flight}): the store does not open: {exc!r}") from exc
        try:
            bad = [f"{w.category.__name__}: {w.message}" for w in caught if not issubclass(w.category, RecoveryWarning)]
            check(not bad, f"kill {it}: unexpected warnings on open: {bad}")
            if caught:
                st["warned"] += 1
                totals.add("warning " + ", ".join(sorted({w.category.__name__ for w in caught})))
            st["torn_bytes"] += int(getattr(s, "recovered_dropped_bytes", 0) or 0)
            left = _leftover_temp_files(root)
            check(not left, f"kill {it}: reopening left temp files of killed writes: {left}")
            length = s.log_length
            got = store_content(s)
            last = min(done + 1, n - 1)
            same_length = [j for j in range(acked, last + 1) if at(j).log_length == length]
            if not same_length:
                lo, hi = at(acked).log_length, at(last).log_length
                what = "acknowledged writes were lost" if length < lo else "more events than were written"
                raise Failed(f"kill {it} ({mode}, during {flight}): {what}: the log has {length} events, the "
                             f"acknowledged ops {start}..{acked} imply at least {lo} and the op in flight at most "
                             f"{hi}")
            exact = [j for j in same_length if at(j).plain_content() == got]
            if not exact:
                j = max(same_length)
                raise Failed(f"kill {it} ({mode}, during {flight}): the content after {length} events is not "
                             f"the stream's (op {j}): {diff_content(got, at(j).plain_content())}")
            j = max(exact)
            mj = at(j)
            # every acknowledged operation of this run, one by one
            for a in range(start, acked + 1):
                o = ops[a]
                st["acked_ops"] += 1
                written = o[2] if o[0] == "write" else (o[1] if o[0] in ("upsert", "plain") else [])
                deleted = o[1] if o[0] in ("write", "delete") else []
                # a restore after op a (up to j) may legitimately bring back older content
                rewound = any(ops[b][0] == "restore" for b in range(a + 1, j + 1))
                for rid in written:
                    e = mj.content.get(rid)
                    if e is not None and e[3] == a:
                        check(got.get(rid) == e[:3], f"kill {it}: acknowledged write of {rid!r} (op {a}) lost")
                        st["acked_records"] += 1
                    else:
                        check(rewound or e is None or e[3] > a,
                              f"kill {it}: {rid!r} written by op {a} holds op {e and e[3]}'s content")
                        st["superseded"] += 1
                for rid in deleted:
                    if rid in written:
                        continue
                    e = mj.content.get(rid)
                    if e is None:
                        check(rid not in got, f"kill {it}: acknowledged delete of {rid!r} (op {a}) undone")
                        st["acked_records"] += 1
                    else:
                        check(rewound or e[3] > a,
                              f"kill {it}: {rid!r} deleted by op {a} is back with op {e[3]}'s content")
                        st["superseded"] += 1
            st["returned_not_acked"] += done - acked
            st["rolled_back"] += done - j if j < done else 0
            # the history: every checkpoint with its seq, label and root
            hist = s.history()
            check([(c.seq, c.label) for c in hist] == mj.history,
                  f"kill {it}: history {[(c.seq, c.label) for c in hist][-3:]} != {mj.history[-3:]}")
            for c in hist:
                if c.label not in cp_hash:
                    cp_hash[c.label] = fresh_hash(DIM, METRIC, {k: v[:3] for k, v in mj.cps[c.label].items()})
                check(c.state_hash == cp_hash[c.label], f"kill {it}: checkpoint {c.label} has another root")
            h = s.state_hash()
            check(h == fresh_hash(DIM, METRIC, got), f"kill {it}: the root is not the root of its content")
            totals.add("recovered states checked")
        finally:
            s.close()
        rep = verify(root)
        check(rep.ok and rep.state_hash == h, f"kill {it}: verify after recovery: {rep}")
        if rep.warnings:
            totals.add("verify warnings", len(rep.warnings))
        # the snapshot file: absent, the old one or the new one, whole
        if returned_saves:
            snap_content = at(returned_saves[-1]).plain_content()
        allowed = [snap_content] if snap_content is not None else []
        if done + 1 < n and ops[done + 1][0] == "save" and begun == done + 1:
            allowed.append(at(done + 1).plain_content())
        if snap.exists():
            try:
                loaded = ValoriStore.load(snap)
            except Exception as exc:  # noqa: BLE001 - a torn or damaged snapshot
                raise Failed(f"kill {it}: the snapshot file does not load (torn?): {exc!r}") from exc
            sc = store_content(loaded)
            check(any(sc == a for a in allowed), f"kill {it}: the snapshot holds neither the last saved state nor "
                                                 f"the one being saved")
            check(loaded.state_hash() == fresh_hash(DIM, METRIC, sc), f"kill {it}: snapshot root != its content's")
            loaded.close()
            totals.add("snapshots checked")
        else:
            check(not allowed or allowed == [at(done + 1).plain_content()] and snap_content is None,
                  f"kill {it}: the snapshot file is gone though a save returned")
        for p in snap.parent.iterdir():
            if is_temp_name(p.name):
                totals.add("snapshot temp files left by killed saves (removed by the harness)")
                p.unlink()
        st["iterations"] += 1
        model = mj
    # ------------------------------------------------ the end: every restorable checkpoint
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = ValoriStore.open(root)
    cut = max((i for i in range(model.pos + 1) if ops[i][0] == "compact"), default=-1)
    cut_label = ops[cut][1] if cut >= 0 else None
    labels = [lab for _, lab in model.history]
    restorable = labels[labels.index(cut_label):] if cut_label in labels else labels
    for lab in restorable[-20:]:
        s.restore(lab)
        check(store_content(s) == {k: v[:3] for k, v in model.cps[lab].items()},
              f"final: restore({lab}) gave other content")
        totals.add("final restores checked")
    s.close()
    check(verify(root).ok, "final verify failed")
    elapsed = time.monotonic() - t_start
    for mode, st in modes.items():
        print(f"crash [{mode}]: {st['iterations']} SIGKILLs (moments: {dict(sorted(st['plans'].items()))}); "
              f"killed during: {dict(sorted(st['in_flight'].items()))}", flush=True)
        print(f"crash [{mode}]: {st['acked_ops']} acknowledged ops checked one by one ({st['acked_records']} acked "
              f"records present/absent exactly, {st['superseded']} superseded by a later op or restore of the prefix); "
              f"{st['returned_not_acked']} returned-but-unacknowledged ops, {st['rolled_back']} of them not in "
              f"the recovered log (allowed); {st['warned']} recoveries with warnings, {st['torn_bytes']} torn "
              f"bytes cut", flush=True)
    print(f"crash: every reopen opened, matched a prefix of the stream exactly (content, log length, history, "
          f"checkpoint roots, root == fresh store's root), verify ok; {model.pos + 1} ops reached; "
          f"{totals.fmt()}; {elapsed:.0f} s", flush=True)
    return {"modes": modes, "totals": dict(totals.c), "seconds": elapsed}
