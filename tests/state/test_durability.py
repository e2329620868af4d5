"""Durable store directories: create/reopen, locking, durability modes, checkpoint images,
restore and history across reopen, snapshot files (save/load, atomic writes) and verify().

Only tmp_path is written to. Subprocesses get PYTHONPATH pointing at this checkout's src/.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import valori_store
from valori_store import (
    Checkpoint,
    ClosedError,
    InputError,
    LockedError,
    NotFoundError,
    ValoriStore,
    verify,
)
from valori_store.format import images as images_mod
from valori_store.state import machine as machine_mod

SRC = Path(__file__).resolve().parents[2] / "src"
DIM = 4


# --------------------------------------------------------------------------- helpers


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def vec(i: int, dim: int = DIM) -> list[float]:
    """A deterministic vector whose components are exact multiples of 2**-8 (never zero)."""
    return [((i * 7 + j * 3) % 23 - 11) / 256.0 + (1.0 if j == 0 else 0.0) for j in range(dim)]


def fill(store: ValoriStore, start: int, n: int, prefix: str = "r") -> list[str]:
    ids = [f"{prefix}{i:04d}" for i in range(start, start + n)]
    store.upsert(
        [vec(i, store.dim) for i in range(start, start + n)],
        ids=ids,
        texts=[None if i % 3 == 0 else f"text {i} \u00e9" for i in range(start, start + n)],
        metadatas=[{"i": i, "even": i % 2 == 0, "tags": ["x", str(i)], "f": i / 4} for i in range(start, start + n)],
    )
    return ids


def snapshot_of(store: ValoriStore) -> dict[str, tuple[list[int], str | None, dict]]:
    """Every record as plain Python values (id -> (vector ints, text, metadata))."""
    out = {}
    for rec in store.get(store.ids()):
        out[rec.id] = (rec.vector.tolist(), rec.text, rec.metadata)
    return out


def quiet_open(*args, **kwargs) -> ValoriStore:
    """Open a store; any warning during a clean reopen is a failure."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return ValoriStore.open(*args, **kwargs)


# --------------------------------------------------------------------------- create / reopen


def test_create_then_reopen_recovers_records_dim_and_metric(tmp_path: Path) -> None:
    root = tmp_path / "store"
    s = ValoriStore.open(root, dim=3, metric="l2")
    assert s.path == root and s.durability == "fsync"
    fill(s, 0, 10)
    assert s.delete(["r0003", "r0007", "missing"]) == 2
    fill(s, 5, 2)  # overwrite r0005, r0006 (same content: still an event)
    s.upsert([[0.5, -0.25, 8.0]], ids=["r0001"], texts=["changed"], metadatas=[{"new": True}])
    before = snapshot_of(s)
    before_hash = s.state_hash()
    before_len = s.log_length
    s.close()
    assert (root / "events.vlog").is_file() and (root / "LOCK").exists()

    s2 = quiet_open(root)
    try:
        assert (s2.dim, s2.metric) == (3, "l2")
        assert s2.log_length == before_len
        assert snapshot_of(s2) == before
        assert "r0003" not in s2 and "r0007" not in s2 and len(s2) == 8
        assert s2.get(["r0001"])[0].text == "changed"
        assert s2.get(["r0001"])[0].vector.tolist() == [32768, -16384, 8 * 65536]
        assert s2.state_hash() == before_hash
        # the reopened store keeps working and searching
        hits = s2.search([0.5, -0.25, 8.0], k=1)
        assert hits[0].id == "r0001" and hits[0].raw == 0
    finally:
        s2.close()


@pytest.mark.parametrize("metric", ["cosine", "dot", "l2"])
def test_reopen_reads_back_each_metric(tmp_path: Path, metric: str) -> None:
    root = tmp_path / metric
    with ValoriStore.open(root, dim=5, metric=metric) as s:
        fill(s, 0, 3)
        h = s.state_hash()
    with quiet_open(root) as s:
        assert (s.dim, s.metric) == (5, metric)
        assert s.state_hash() == h
    # passing the same shape explicitly is fine
    with quiet_open(root, dim=5, metric=metric) as s:
        assert s.state_hash() == h


def test_default_metric_is_cosine(tmp_path: Path) -> None:
    with ValoriStore.open(tmp_path / "s", dim=2) as s:
        assert s.metric == "cosine"
    with quiet_open(tmp_path / "s") as s:
        assert s.metric == "cosine"


@pytest.mark.parametrize(("dim", "metric"), [(4, "dot"), (3, "cosine"), (5, None), (None, "cosine")])
def test_reopen_with_conflicting_shape_is_input_error_and_releases_the_lock(
    tmp_path: Path, dim: int | None, metric: str | None
) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=4, metric="cosine") as s:
        fill(s, 0, 2)
        h = s.state_hash()
    if (dim, metric) in ((4, "dot"), (3, "cosine"), (5, None)):
        with pytest.raises(InputError):
            ValoriStore.open(root, dim=dim, metric=metric)
    else:  # (None, "cosine") matches: no error
        ValoriStore.open(root, dim=dim, metric=metric).close()
    # a failed open must not keep the directory locked nor change the store
    with quiet_open(root) as s:
        assert (s.dim, s.metric) == (4, "cosine") and s.state_hash() == h


def test_open_missing_directory_without_dim_is_not_found(tmp_path: Path) -> None:
    root = tmp_path / "nope"
    with pytest.raises(NotFoundError):
        ValoriStore.open(root)
    assert not root.exists(), "a failed open must not create the directory"
    root.mkdir()
    with pytest.raises(NotFoundError):
        ValoriStore.open(root)  # an empty directory holds no store either
    with pytest.raises(NotFoundError):
        ValoriStore.open(root, metric="dot")


def test_open_on_a_file_or_bad_durability_is_input_error(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_bytes(b"x")
    with pytest.raises(InputError):
        ValoriStore.open(f, dim=2)
    with pytest.raises(InputError):
        ValoriStore.open(tmp_path / "s", dim=2, durability="sometimes")
    assert not (tmp_path / "s").exists()


def test_closed_store_refuses_writes(tmp_path: Path) -> None:
    s = ValoriStore.open(tmp_path / "s", dim=DIM)
    fill(s, 0, 1)
    s.close()
    s.close()  # idempotent
    with pytest.raises(ClosedError):
        fill(s, 1, 1)
    with pytest.raises(ClosedError):
        s.checkpoint()
    with quiet_open(tmp_path / "s") as s2:
        assert s2.ids() == ["r0000"]


# --------------------------------------------------------------------------- locking


def test_second_writer_in_same_process_is_locked(tmp_path: Path) -> None:
    root = tmp_path / "s"
    s = ValoriStore.open(root, dim=DIM)
    with pytest.raises(LockedError):
        ValoriStore.open(root)
    with pytest.raises(LockedError):
        ValoriStore.open(root, dim=DIM)
    fill(s, 0, 1)  # the holder is unaffected
    s.close()
    with quiet_open(root) as s2:  # released on close
        assert s2.ids() == ["r0000"]
        with pytest.raises(LockedError):
            ValoriStore.open(root)
    with quiet_open(root):  # released by the context manager
        pass


_TRY_OPEN = textwrap.dedent(
    """
    import sys
    from valori_store import ValoriStore, LockedError
    try:
        ValoriStore.open(sys.argv[1]).close()
    except LockedError:
        print("LOCKED")
    else:
        print("OPENED")
    """
)

_HOLD = textwrap.dedent(
    """
    import sys, time
    from valori_store import ValoriStore
    s = ValoriStore.open(sys.argv[1], dim=4, metric="dot")
    s.upsert([[1.0, 2.0, 3.0, 4.0]], ids=["held"])
    print("READY", flush=True)
    time.sleep(60)
    """
)


def test_second_writer_in_another_process_is_locked(tmp_path: Path) -> None:
    root = tmp_path / "s"
    s = ValoriStore.open(root, dim=DIM)
    try:
        out = subprocess.run(
            [sys.executable, "-c", _TRY_OPEN, str(root)], env=child_env(), capture_output=True, text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == "LOCKED"
    finally:
        s.close()


def test_lock_is_released_when_the_holder_process_dies(tmp_path: Path) -> None:
    root = tmp_path / "s"
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(root)], env=child_env(), stdout=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == "READY", line
        with pytest.raises(LockedError):
            ValoriStore.open(root)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    with quiet_open(root) as s:  # the kernel dropped the flock with the process
        assert s.ids() == ["held"]
        assert s.get(["held"])[0].vector.tolist() == [65536, 131072, 196608, 262144]


# --------------------------------------------------------------------------- durability modes


@pytest.mark.parametrize("mode", ["fsync", "batch", "none"])
def test_every_durability_mode_recovers_after_clean_close(tmp_path: Path, mode: str) -> None:
    root = tmp_path / mode
    s = ValoriStore.open(root, dim=DIM, metric="dot", durability=mode)
    assert s.durability == mode
    # 70 single-record appends: crosses batch mode's 64-append fsync threshold
    for i in range(70):
        fill(s, i, 1)
    s.delete([f"r{i:04d}" for i in range(0, 70, 10)])
    s.checkpoint("mid")
    fill(s, 100, 5)
    s.sync()
    expected = snapshot_of(s)
    h, n = s.state_hash(), s.log_length
    s.close()
    with quiet_open(root, durability=mode) as s2:
        assert s2.durability == mode
        assert s2.log_length == n
        assert s2.state_hash() == h
        assert snapshot_of(s2) == expected
        assert len(s2) == 70 - 7 + 5
    # the mode is a property of the session, not of the directory
    with quiet_open(root, durability="fsync") as s3:
        assert s3.durability == "fsync" and s3.state_hash() == h


def test_durable_and_in_memory_stores_agree(tmp_path: Path) -> None:
    """Same operations, same state hash and the same generated ids (they come from the log chain)."""
    mem = ValoriStore(DIM, "cosine")
    dur = ValoriStore.open(tmp_path / "s", dim=DIM, metric="cosine")
    for st in (mem, dur):
        fill(st, 0, 4)
        st.delete(["r0001"])
        st.checkpoint("a")
    auto_mem = mem.upsert([vec(50), vec(51)])
    auto_dur = dur.upsert([vec(50), vec(51)])
    assert auto_mem == auto_dur
    dur.close()
    dur = quiet_open(tmp_path / "s")
    # generated ids after a reopen continue from the recovered chain
    assert mem.upsert([vec(60)]) == dur.upsert([vec(60)])
    assert mem.state_hash() == dur.state_hash()
    assert mem.log_length == dur.log_length
    assert mem.to_bytes() == dur.to_bytes()
    dur.close()


# --------------------------------------------------------------------------- checkpoints, images, restore


def test_checkpoints_write_no_image_and_images_share_pages(tmp_path: Path) -> None:
    from valori_store.format import images as images_mod

    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM) as s:
        fill(s, 0, 300)
        cp = s.checkpoint("first")
        assert not list((root / "images").iterdir()), "a checkpoint writes no image"
        s.write_image()
        log_size = (root / "events.vlog").stat().st_size
        pages_1 = set((root / "pages").iterdir())
        s.upsert(np.full((1, DIM), 9.0), ids=["r0003"])  # overwrite one record with new content
        cp2 = s.checkpoint()
        s.write_image()
        pages_2 = set((root / "pages").iterdir())
    assert cp.label == "first" and cp2.label is None
    files = sorted(p.name for p in (root / "images").iterdir())
    assert files == [f"{cp.seq:012d}.vimg", f"{cp2.seq:012d}.vimg"]
    m1 = images_mod.decode_manifest((root / "images" / files[0]).read_bytes(), files[0])
    m2 = images_mod.decode_manifest((root / "images" / files[1]).read_bytes(), files[1])
    assert (m1.seq, m1.log_end, m1.count, m1.root.hex()) == (cp.seq, log_size, 300, cp.state_hash)
    assert m2.root.hex() == cp2.state_hash and m2.count == 300
    # the second image wrote one page: the one holding the overwritten record
    assert len(pages_2 - pages_1) == 1 and len({p.digest for p in m2.pages} - {p.digest for p in m1.pages}) == 1
    assert verify(root).images_checked == 2


def test_reopen_uses_the_newest_image_instead_of_replaying(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM) as s:
        fill(s, 0, 5)
        s.checkpoint("a")
        s.write_image()
        s.delete(["r0002"])
        fill(s, 10, 2)
        cp = s.checkpoint("b")
        s.write_image()
        fill(s, 20, 3)  # a tail after the newest image
        s.delete(["r0010"])
        expected, h, n = snapshot_of(s), s.state_hash(), s.log_length

    applied: list[object] = []
    real_apply = machine_mod.apply

    def counting_apply(table: object, ev: object) -> None:
        applied.append(ev)
        real_apply(table, ev)  # type: ignore[arg-type]

    monkeypatch.setattr(machine_mod, "apply", counting_apply)
    with quiet_open(root) as s2:
        assert s2.state_hash() == h and snapshot_of(s2) == expected and s2.log_length == n
        assert [c.label for c in s2.history()] == ["a", "b"]
    with_image = len(applied)
    # without the images the same open must apply every event from the start (so the test can fail)
    for p in (root / "images").iterdir():
        p.unlink()
    applied.clear()
    with quiet_open(root) as s2:
        assert s2.state_hash() == h
    assert with_image < len(applied) == n - 1  # every event but create
    monkeypatch.undo()
    with quiet_open(root) as s3:  # and a real replay gets the same state
        assert s3.state_hash() == h and s3.history()[-1] == cp


@pytest.mark.parametrize("drop_images", [False, True])
def test_restore_to_a_checkpoint_after_reopen(tmp_path: Path, drop_images: bool) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM, metric="dot") as s:
        fill(s, 0, 4)
        one = s.checkpoint("one")
        state_one = snapshot_of(s)
        s.delete(["r0000", "r0001"])
        fill(s, 2, 4)  # overwrite r0002, r0003, add r0004, r0005
        s.upsert([vec(99)], ids=["r0002"], texts=["overwritten"], metadatas=[{"v": 2}])
        two = s.checkpoint("two")
        state_two = snapshot_of(s)
        fill(s, 40, 1)
    assert one.state_hash != two.state_hash
    if drop_images:  # restore must then rebuild the past state from the log
        for p in (root / "images").iterdir():
            p.unlink()
    with quiet_open(root) as s:
        assert s.history() == [one, two]
        got = s.restore("one")
        assert got == one
        assert s.state_hash() == one.state_hash and snapshot_of(s) == state_one
        # restore by seq and by Checkpoint object; later checkpoints stay restorable
        assert s.restore(two.seq) == two
        assert s.state_hash() == two.state_hash and snapshot_of(s) == state_two
        assert s.restore(one) == one
        assert s.state_hash() == one.state_hash
        assert s.history() == [one, two]
        with pytest.raises(NotFoundError):
            s.restore("three")
        with pytest.raises(NotFoundError):
            s.restore(two.seq + 1)
        with pytest.raises(NotFoundError):
            s.restore(Checkpoint(one.seq, two.state_hash, "one"))
        with pytest.raises(InputError):
            s.restore(1.5)  # type: ignore[arg-type]
    # the restores were logged: a reopen replays them
    with quiet_open(root) as s:
        assert s.state_hash() == one.state_hash and snapshot_of(s) == state_one


def test_history_survives_reopen(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM) as s:
        cps = []
        for i in range(4):
            fill(s, i * 2, 2)
            cps.append(s.checkpoint(None if i == 2 else f"v{i}"))
        fill(s, 100, 1)
        assert s.history() == cps
    assert [c.seq for c in cps] == sorted({c.seq for c in cps})
    assert len({c.state_hash for c in cps}) == 4
    with quiet_open(root) as s:
        assert s.history() == cps
        cps.append(s.checkpoint("after-reopen"))
    # recovery without images (full replay) lists the same history
    for p in (root / "images").iterdir():
        p.unlink()
    with quiet_open(root) as s:
        assert s.history() == cps


def test_restore_is_an_event_and_later_checkpoints_stay_in_history(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM) as s:
        fill(s, 0, 2)
        a = s.checkpoint("a")
        fill(s, 2, 2)
        b = s.checkpoint("b")
        n = s.log_length
        s.restore("a")
        assert s.log_length == n + 1
        assert len(s) == 2
        c = s.checkpoint("c")  # checkpoint of the restored state
        assert c.state_hash == a.state_hash and c.seq == n + 1
        assert s.history() == [a, b, c]
        s.restore("b")
        assert s.state_hash() == b.state_hash
        assert s.verify().ok
        h = s.state_hash()
    rep = verify(root)
    assert rep.ok, str(rep)
    assert rep.event_counts["restore"] == 2
    assert rep.event_counts["checkpoint"] == 3
    assert rep.checked_digests == 5  # 3 checkpoints + 2 restores
    assert rep.state_hash == h
    with quiet_open(root) as s:
        assert s.history() == [a, b, c]
        assert s.state_hash() == h
        # restoring to the state we are already in is still a (no-op diff) event
        n = s.log_length
        s.restore("b")
        assert s.log_length == n + 1 and s.state_hash() == h


# --------------------------------------------------------------------------- snapshot files


def test_save_and_load_snapshot_file(tmp_path: Path) -> None:
    s = ValoriStore(DIM, "l2")
    fill(s, 0, 6)
    s.delete(["r0004"])
    path = tmp_path / "snap.vsnap"
    s.save(path)
    assert path.read_bytes() == s.to_bytes()
    t = ValoriStore.load(path)
    assert (t.dim, t.metric) == (DIM, "l2")
    assert t.state_hash() == s.state_hash()
    assert snapshot_of(t) == snapshot_of(s)
    assert t.to_bytes() == s.to_bytes()
    assert t.path is None and t.durability is None
    # the state root sits before the snapshot's trailing file digest
    assert path.read_bytes()[-64:-32].hex() == s.state_hash()
    # saving again overwrites atomically and leaves no temp file
    fill(s, 10, 1)
    s.save(path)
    assert ValoriStore.load(path).state_hash() == s.state_hash()
    assert os.listdir(tmp_path) == ["snap.vsnap"]
    # a durable store saves the same bytes as an equal in-memory one
    with ValoriStore.open(tmp_path / "d", dim=DIM, metric="l2") as d:
        d.upsert([r.vector / 65536.0 for r in s.get(s.ids())], ids=s.ids(), texts=[r.text for r in s.get(s.ids())],
                 metadatas=[r.metadata for r in s.get(s.ids())])
        d.save(tmp_path / "d.vsnap")
    assert (tmp_path / "d.vsnap").read_bytes() == path.read_bytes()


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError):
        ValoriStore.load(tmp_path / "missing.vsnap")
    with pytest.raises(InputError):
        ValoriStore.load(tmp_path)
    (tmp_path / "junk").write_bytes(b"not a snapshot at all" * 5)
    with pytest.raises(valori_store.CorruptFileError):
        ValoriStore.load(tmp_path / "junk")


def _old_and_new(tmp_path: Path) -> tuple[Path, bytes, ValoriStore]:
    path = tmp_path / "snap.vsnap"
    old = ValoriStore(DIM, "dot")
    fill(old, 0, 3)
    old.save(path)
    new = ValoriStore(DIM, "dot")
    fill(new, 0, 5)
    assert new.to_bytes() != old.to_bytes()
    return path, path.read_bytes(), new


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_failed_save_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    path, old_bytes, new = _old_and_new(tmp_path)

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "simulated: no space left on device")

    if fail_at == "replace":
        monkeypatch.setattr(os, "replace", boom)
    elif fail_at == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:  # the disk fills up half way through writing the temp file
        from valori_store.storage import atomic as atomic_mod

        real_open = open

        class HalfWriter:
            def __init__(self, *args: object, **kwargs: object) -> None:
                self.fh = real_open(*args, **kwargs)  # type: ignore[call-overload]

            def __enter__(self) -> HalfWriter:
                return self

            def __exit__(self, *exc: object) -> None:
                self.fh.close()

            def write(self, data: bytes) -> int:
                self.fh.write(bytes(data)[: len(data) // 2])
                self.fh.flush()
                raise OSError(28, "simulated: no space left on device")

            def __getattr__(self, name: str) -> object:
                return getattr(self.fh, name)

        monkeypatch.setattr(atomic_mod, "open", HalfWriter, raising=False)
    with pytest.raises(OSError, match="simulated"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == old_bytes
    assert sorted(os.listdir(tmp_path)) == ["snap.vsnap"], "a temp file was left behind"
    # and a later save works
    new.save(path)
    assert path.read_bytes() == new.to_bytes()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores directory permissions")
def test_save_into_read_only_directory_leaves_the_old_file(tmp_path: Path) -> None:
    path, old_bytes, new = _old_and_new(tmp_path)
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(OSError):
            new.save(path)
    finally:
        os.chmod(tmp_path, 0o755)
    assert path.read_bytes() == old_bytes
    assert os.listdir(tmp_path) == ["snap.vsnap"]


# --------------------------------------------------------------------------- verify


def test_verify_reports_on_a_good_directory(tmp_path: Path) -> None:
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM, metric="cosine") as s:
        fill(s, 0, 5)
        s.checkpoint("a")
        s.write_image()
        s.delete(["r0001"])
        s.checkpoint("b")
        s.write_image()
        s.restore("a")
        fill(s, 10, 2)
        h, n, count = s.state_hash(), s.log_length, len(s)
        live = s.verify()
    assert live.ok and live.state_hash == h and live.kind == "log"
    rep = verify(root)
    assert rep.ok and not rep.problems and not rep.warnings, str(rep)
    assert rep.kind == "directory" and rep.path == str(root)
    assert rep.events == n
    assert rep.event_counts == {"create": 1, "upsert": 2, "delete": 1, "checkpoint": 2, "restore": 1}
    assert rep.checkpoints == 2
    assert rep.checked_digests == 3
    assert rep.images_checked == 2
    assert rep.records == count
    assert rep.state_hash == h
    assert rep.torn_bytes == 0
    assert "OK" in str(rep)
    with pytest.raises(NotFoundError):
        verify(tmp_path / "missing")
    with pytest.raises(NotFoundError):
        verify(tmp_path)  # a directory without a log


def test_verify_reports_on_a_good_snapshot_file(tmp_path: Path) -> None:
    s = ValoriStore(DIM, "dot")
    fill(s, 0, 7)
    path = tmp_path / "x.vsnap"
    s.save(path)
    rep = verify(path)
    assert rep.ok and rep.kind == "snapshot" and not rep.problems and not rep.warnings
    assert rep.records == 7
    assert rep.state_hash == s.state_hash()
    # a damaged copy is reported, not raised
    bad = tmp_path / "bad.vsnap"
    data = bytearray(path.read_bytes())
    data[100] ^= 0x10
    bad.write_bytes(bytes(data))
    rep = verify(bad)
    assert not rep.ok and rep.problems and rep.state_hash is None


def test_restore_falls_back_to_the_log_when_an_image_is_wrong(tmp_path: Path) -> None:
    """An image that decodes but holds another state (its pages replaced by another
    image's, e.g. copied from elsewhere) is not trusted: restore gives the checkpoint's
    state all the same, and never logs a wrong one."""
    from valori_store.format import images as images_mod

    root = tmp_path / "s"
    with ValoriStore.open(root, dim=DIM) as s:
        fill(s, 0, 40)
        a = s.checkpoint("a")
        s.write_image()
        fill(s, 10, 3)  # overwrite records 10..12
        b = s.checkpoint("b")
        s.write_image()
        fill(s, 20, 2)
        fill(s, 100, 5)
        ma, mb = (images_mod.decode_manifest((root / "images" / f"{c.seq:012d}.vimg").read_bytes(), "m") for c in (a, b))
        # a's manifest now names b's pages (with a's root and position): lookups in it see b's records
        (root / "images" / f"{a.seq:012d}.vimg").write_bytes(images_mod.encode_manifest(images_mod.Manifest(
            ma.seq, ma.log_end, ma.chain, ma.root, 2, mb.metric_code, mb.dim, mb.count, mb.pages)))
        (root / "images" / f"{b.seq:012d}.vimg").unlink()
        s.restore("a")
        assert s.state_hash() == a.state_hash
        assert s.verify().ok
