"""``durability="batch"``: the periodic fsync runs on a background thread; sync(), close()
and checkpoints still wait for the disk, and a failed background fsync is reported."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from valori_store import ValoriStore
from valori_store.storage.filelog import FileLog


def _upsert(store: ValoriStore, k: int) -> None:
    store.upsert(np.full((1, 4), 1.0 + k), ids=[f"r{k}"])


def _close_and_count(s: ValoriStore, path) -> int:
    """Close ``s``, reopen its directory and return how many records survived."""
    s.close()
    reopened = ValoriStore.open(path)
    try:
        return len(reopened)
    finally:
        reopened.close()


def test_the_periodic_fsync_does_not_block_appends_and_sync_waits_for_it(tmp_path, monkeypatch) -> None:
    s = ValoriStore.open(tmp_path / "kb", dim=4, durability="batch")
    release, started, calls = threading.Event(), threading.Event(), []
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        calls.append(threading.current_thread().name)
        if threading.current_thread().name == "valori-log-fsync":
            started.set()
            assert release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    for k in range(FileLog.BATCH_APPENDS):  # the 64th append starts the background fsync
        _upsert(s, k)
    assert started.wait(10)
    _upsert(s, 1000)  # returns while the disk is still busy
    assert len(s) == FileLog.BATCH_APPENDS + 1 and calls == ["valori-log-fsync"]
    waiter = threading.Thread(target=s.sync)
    waiter.start()
    waiter.join(0.3)
    assert waiter.is_alive()  # sync() waits for the background fsync ...
    release.set()
    waiter.join(10)
    assert not waiter.is_alive()
    assert calls[0] == "valori-log-fsync" and calls[-1] != "valori-log-fsync"  # ... then fsyncs itself
    assert _close_and_count(s, tmp_path / "kb") == FileLog.BATCH_APPENDS + 1


def test_a_failed_background_fsync_is_raised_once_and_nothing_is_lost(tmp_path, monkeypatch) -> None:
    s = ValoriStore.open(tmp_path / "kb", dim=4, durability="batch")
    real_fsync = os.fsync
    failures = []

    def failing_fsync(fd: int) -> None:
        if threading.current_thread().name == "valori-log-fsync" and not failures:
            failures.append(fd)
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    for k in range(FileLog.BATCH_APPENDS):
        _upsert(s, k)
    before = s.state_hash()
    with pytest.raises(OSError, match="background fsync"):
        s.sync()
    assert failures and s.state_hash() == before and len(s) == FileLog.BATCH_APPENDS
    s.sync()  # reported once; the next fsync succeeds
    _upsert(s, 999)
    assert _close_and_count(s, tmp_path / "kb") == FileLog.BATCH_APPENDS + 1


def test_fsync_mode_never_uses_the_background_thread(tmp_path, monkeypatch) -> None:
    s = ValoriStore.open(tmp_path / "kb", dim=4, durability="fsync")
    names = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (names.append(threading.current_thread().name), real_fsync(fd)))
    for k in range(FileLog.BATCH_APPENDS + 3):
        _upsert(s, k)
    s.close()
    assert len(names) >= FileLog.BATCH_APPENDS + 3 and "valori-log-fsync" not in names


def test_a_failed_background_fsync_raised_by_close_still_releases_the_store(tmp_path, monkeypatch) -> None:
    s = ValoriStore.open(tmp_path / "kb", dim=4, durability="batch")
    real_fsync = os.fsync

    def failing_fsync(fd: int) -> None:
        if threading.current_thread().name == "valori-log-fsync":
            raise OSError(5, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", failing_fsync)
    for k in range(FileLog.BATCH_APPENDS):
        _upsert(s, k)
    with pytest.raises(OSError, match="background fsync"):
        s.close()
    monkeypatch.undo()
    again = ValoriStore.open(tmp_path / "kb")  # the lock was released
    assert len(again) == FileLog.BATCH_APPENDS
    again.close()
