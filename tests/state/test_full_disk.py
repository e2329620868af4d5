"""A full disk (issue 12, item 1): an append the OS refuses (ENOSPC, EFBIG) raises the
package's DiskFullError and changes nothing; later writes work when space returns; the
directory reopens with every acknowledged write.

The first test uses a real OS refusal, no injection: a child process lowers its file-size
limit (``RLIMIT_FSIZE``, SIGXFSZ ignored) just above the log's size, so the kernel writes
part of a large frame and then fails with EFBIG, exactly as a file system that fills up
half way through a write. Before the fix the rejected frame's bytes stayed in Python's
file buffer (the clean-up truncate flushed first and failed too), were written out before
the next successful append, and reopening raised CorruptFileError. The other tests inject
ENOSPC through :mod:`valori_store.storage.faults`.
"""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from valori_store import DiskFullError, StorageError, ValoriError, ValoriStore, verify
from valori_store.storage import faults

SRC = Path(__file__).resolve().parents[2] / "src"
DIM = 8


def _batch(start: int, n: int) -> tuple[np.ndarray, list[str]]:
    i = np.arange(start, start + n, dtype=np.float64)[:, None]
    x = np.sin(i * 0.37 + np.arange(DIM)[None, :] * 1.3) + 0.01 * (i % 7)
    return x, [f"r{k:05d}" for k in range(start, start + n)]


def _reference(batches: list[tuple[int, int]]) -> str:
    ref = ValoriStore(DIM)
    for start, n in batches:
        x, ids = _batch(start, n)
        ref.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
    return ref.state_hash()


CHILD = r'''
import json, os, resource, signal, sys
import numpy as np
from valori_store import ValoriStore
root, mode, big, DIM = sys.argv[1], sys.argv[2], int(sys.argv[3]), 8

def batch(start, n):
    i = np.arange(start, start + n, dtype=np.float64)[:, None]
    x = np.sin(i * 0.37 + np.arange(DIM)[None, :] * 1.3) + 0.01 * (i % 7)
    return x, [f"r{k:05d}" for k in range(start, start + n)]

def up(s, start, n):
    x, ids = batch(start, n)
    s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])

out = {"acked": []}
warm = ValoriStore(DIM)  # compile (and cache) every kernel the writes use before the limit
up(warm, 20, big); up(warm, 5000, 1); warm.state_hash()
s = ValoriStore.open(root, dim=DIM, durability=mode)
up(s, 0, 20); out["acked"].append([0, 20])
s.sync()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (s.log_length + 2000, hard))  # the disk is nearly full
before = (len(s), s.state_hash(), s.log_length)
try:
    up(s, 20, big)  # refused part way
    out["big"] = "returned"
except Exception as exc:
    out["big"] = type(exc).__name__
    out["big_mro"] = [c.__name__ for c in type(exc).__mro__]
    out["big_errno"] = getattr(exc, "errno", None)
    out["big_msg"] = str(exc)
out["unchanged"] = (len(s), s.state_hash(), s.log_length) == before
try:
    up(s, 5000, 1)  # a small write still fits
    out["acked"].append([5000, 1])
    out["small"] = "ok"
except Exception as exc:
    out["small"] = type(exc).__name__ + ": " + str(exc)
resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space returns
up(s, 6000, 2); out["acked"].append([6000, 2])
up(s, 20, big); out["acked"].append([20, big])
out["hash"] = s.state_hash()
s.close()
print(json.dumps(out))
'''


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_FSIZE / SIGXFSZ behaviour checked on Linux")
@pytest.mark.parametrize(("mode", "big"), [("fsync", 60), ("batch", 60), ("fsync", 3000)])
def test_a_real_efbig_mid_append_leaves_a_store_that_reopens(tmp_path: Path, mode: str, big: int) -> None:
    """``big`` records: a frame of about 3 kB (it fit in Python's file buffer: the case that
    broke) or 150 kB (written straight through)."""
    root = tmp_path / "kb"
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(root), mode, str(big)], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["big"] == "DiskFullError", out
    assert {"ValoriError", "OSError"} <= set(out["big_mro"]) and out["big_errno"] == errno.EFBIG, out
    assert "the event log" in out["big_msg"]
    assert out["unchanged"], "the refused upsert changed the store"
    assert out["small"] == "ok", out
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no torn tail, nothing to cut: the file ends at the last frame
        again = ValoriStore.open(root)
    try:
        assert again.state_hash() == out["hash"] == _reference([tuple(b) for b in out["acked"]])
        assert len(again) == 20 + 1 + big + 2
    finally:
        again.close()
    assert verify(root).ok


@pytest.mark.parametrize("mode", ["fsync", "batch", "none"])
def test_injected_enospc_with_a_failing_cleanup_truncate(tmp_path: Path, mode: str) -> None:
    """The worst case of the issue: the write fails part way AND the truncate that would
    cut its bytes off fails too; a smaller append then succeeds over them."""
    root = tmp_path / "kb"
    acked = [(0, 30)]
    s = ValoriStore.open(root, dim=DIM, durability=mode)
    x, ids = _batch(0, 30)
    s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
    before = (len(s), s.state_hash(), s.log_length)
    with faults.inject("write", short=True, error=errno.ENOSPC, match="event log") as inj:
        inj.also("truncate", error=errno.EIO, sticky=True)
        x, ids = _batch(100, 2000)
        with pytest.raises(DiskFullError) as info:
            s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
        assert inj.fired >= 3  # the short write, the ENOSPC after it, the failed truncate
    assert isinstance(info.value, ValoriError) and isinstance(info.value, OSError)
    assert info.value.errno == errno.ENOSPC and "injected" in str(info.value)
    assert (len(s), s.state_hash(), s.log_length) == before
    x, ids = _batch(5000, 1)  # a small write lands where the refused one began
    s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
    acked.append((5000, 1))
    s.close()  # cuts the rejected frame's leftover bytes off
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = ValoriStore.open(root)
    try:
        assert again.state_hash() == _reference(acked)
    finally:
        again.close()
    assert verify(root).ok


def test_leftover_bytes_of_a_rejected_frame_are_a_torn_tail_if_never_cut(tmp_path: Path) -> None:
    """If the process dies before any truncate succeeds, the rejected frame's bytes after
    the last good frame are a torn tail: reopening cuts them off and keeps every
    acknowledged write."""
    root = tmp_path / "kb"
    s = ValoriStore.open(root, dim=DIM, durability="fsync")
    x, ids = _batch(0, 10)
    s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
    size = s._live.log.end  # bytes
    with faults.inject("write", short=True, error=errno.ENOSPC, match="event log") as inj:
        inj.also("truncate", error=errno.EIO, sticky=True)
        x, ids = _batch(100, 500)
        with pytest.raises(DiskFullError):
            s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
        assert os.path.getsize(root / "events.vlog") > size  # the bytes are there, past the end
        # the process "dies" here: drop the store without closing it (no truncate at close)
        fd_log = s._live.log.fh
        lock_fd = s._live.lock_fd
        s._live.closed = True
    fd_log.close()
    os.close(lock_fd)
    with pytest.warns(UserWarning, match="cut off"):
        again = ValoriStore.open(root)
    try:
        assert again.state_hash() == _reference([(0, 10)])
        assert os.path.getsize(root / "events.vlog") == size
    finally:
        again.close()


def test_a_disk_that_stays_full_refuses_every_write_and_recovers_when_space_returns(tmp_path: Path) -> None:
    root = tmp_path / "kb"
    s = ValoriStore.open(root, dim=DIM, durability="fsync")
    x, ids = _batch(0, 5)
    s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
    acked = [(0, 5)]
    cps = len(s.history())
    with faults.inject("write", error=errno.ENOSPC, sticky=True) as inj:
        for k in range(3):
            x, ids = _batch(10 + k, 1)
            with pytest.raises(DiskFullError):
                s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
        with pytest.raises(DiskFullError):
            s.checkpoint("full")
        with pytest.raises(DiskFullError):
            s.delete(["r00000"])
        with pytest.raises(DiskFullError):
            s.save(tmp_path / "snap.vsnap")
        assert not any(p.name.startswith(".") for p in tmp_path.iterdir())
        assert len(s.history()) == cps and "r00000" in s
        inj.heal()  # space returns
        x, ids = _batch(20, 3)
        s.upsert(x, ids=ids, texts=[f"t{k}" for k in ids])
        acked.append((20, 3))
        s.checkpoint("after")
    s.close()
    again = ValoriStore.open(root)
    try:
        assert again.state_hash() == _reference(acked)
        assert [c.label for c in again.history()] == ["after"]
    finally:
        again.close()


def test_storage_errors_map_to_the_cli_io_exit_code() -> None:
    from valori_store.cli.common import IO_ERROR, classify

    err = faults.storage_error(OSError(errno.ENOSPC, "No space left on device", "/x/events.vlog"), "writing the log")
    assert isinstance(err, DiskFullError) and isinstance(err, StorageError)
    code, message = classify(err)
    assert code == IO_ERROR and "No space left on device" in message and "/x/events.vlog" in message
    code, _ = classify(faults.storage_error(OSError(errno.EIO, "Input/output error"), "fsync"))
    assert code == IO_ERROR
