"""The CLI rejects everything odd cleanly (issue 12, item 9): FIFOs and devices as inputs,
absurdly nested filters, huge counts, unsavable receipts, ``--dim 0``; and warnings raised
while a command runs come out as the CLI's one-line warnings."""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    _built_template,
    assert_one_line_error,
    built,
    cli,
)

from valori_store import ValoriStore, open_readonly

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs POSIX FIFOs and signals")


class Hung(BaseException):
    pass


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Fail (instead of hanging the suite) when the block runs longer than ``seconds``."""
    def fire(signum: int, frame: object) -> None:
        raise Hung(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def fifo(tmp_path: Path) -> Path:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    return path


def _commands(target: Path, store: Path, tmp: Path) -> list[list[object]]:
    return [["inspect", target], ["verify", target], ["history", target], ["search", target, "apples"],
            ["diff", target, store], ["diff", store, target], ["replay", target, "--to", "head", "--out", tmp / "o"],
            ["migrate", target, "--out", tmp / "m"], ["compact", target, "--before", "1"]]


def test_a_fifo_as_path_is_a_usage_error_not_a_hang(cli, built, fifo: Path, tmp_path: Path) -> None:
    for argv in _commands(fifo, built.path, tmp_path):
        with time_limit(10):
            res = cli(*argv)
        assert_one_line_error(res, 2, "FIFO", str(fifo))


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_dev_zero_as_path_is_a_usage_error_not_memory_exhaustion(cli, built, tmp_path: Path) -> None:
    for argv in _commands(Path("/dev/zero"), built.path, tmp_path):
        with time_limit(10):
            res = cli(*argv)
        assert_one_line_error(res, 2, "character device", "/dev/zero")


def test_receipts_file_that_is_a_fifo_or_device(cli, built, fifo: Path) -> None:
    with time_limit(10):
        assert_one_line_error(cli("verify", built.path, "--receipts", fifo), 2, "--receipts", "FIFO")
    if os.path.exists("/dev/zero"):
        with time_limit(10):
            assert_one_line_error(cli("verify", built.path, "--receipts", "/dev/zero"), 2, "character device")


def test_ingest_of_a_fifo_is_refused(cli, fifo: Path, tmp_path: Path) -> None:
    with time_limit(10):
        res = cli("ingest", tmp_path / "new", fifo, "--base", tmp_path)
    assert_one_line_error(res, 2, "FIFO")
    assert not (tmp_path / "new").exists()


@pytest.mark.parametrize("depth", [150, 1000, 5000])
def test_deeply_nested_filter_is_a_usage_error(cli, built, depth: int) -> None:
    flt = '{"$and": [' * depth + '{"kind": "fruit"}' + "]}" * depth
    res = cli("search", built.path, "apples", "--filter", flt)
    assert_one_line_error(res, 2, "nested")
    assert "RecursionError" not in res.err and "internal" not in res.err


def test_deep_plain_json_filter_is_a_usage_error(cli, built) -> None:
    assert_one_line_error(cli("search", built.path, "apples", "--filter", "[" * 100_000), 2, "nested")


def test_filter_nested_within_limits_still_works(cli, built) -> None:
    flt = '{"$and": [' * 3 + '{"kind": "fruit"}' + "]}" * 3
    res = cli("search", built.path, "apples", "--filter", flt, "--json")
    assert res.code == 0, res.err
    assert {h["metadata"]["kind"] for h in res.json()["hits"]} == {"fruit"}


@pytest.mark.parametrize("option", ["-k", "--fetch-k"])
@pytest.mark.parametrize("value", [str(10**20), str(2**63), "-1", "1e3"])
def test_huge_or_bad_counts_are_usage_errors(cli, built, option: str, value: str) -> None:
    res = cli("search", built.path, "apples", "--mmr", option, value)
    assert_one_line_error(res, 2, option)


def test_largest_count_is_accepted(cli, built) -> None:
    res = cli("search", built.path, "apples", "-k", str(2**63 - 1), "--json")
    assert res.code == 0, res.err
    store = open_readonly(built.path)
    try:
        assert len(res.json()["hits"]) == len(store)  # every record
    finally:
        store.close()


def test_save_receipt_to_a_directory_never_claims_ok(cli, built, tmp_path: Path) -> None:
    res = cli("search", built.path, "apples", "--save-receipt", tmp_path, "--json")
    assert_one_line_error(res, 2, "--save-receipt", "directory")
    doc = res.json()
    assert doc["ok"] is False and doc["error"]["code"] == 2
    assert '"ok": true' not in res.out


def test_save_receipt_into_a_missing_directory(cli, built, tmp_path: Path) -> None:
    res = cli("search", built.path, "apples", "--save-receipt", tmp_path / "no" / "r.jsonl", "--json")
    assert_one_line_error(res, 2, "does not exist")
    assert res.json()["ok"] is False


def test_save_receipt_to_a_fifo_nobody_reads_is_an_error_not_a_hang(cli, built, fifo: Path) -> None:
    with time_limit(10):
        res = cli("search", built.path, "apples", "--save-receipt", fifo)
    assert_one_line_error(res, 2, "FIFO", "nobody reads")


def test_save_receipt_still_appends(cli, built, tmp_path: Path) -> None:
    out = tmp_path / "r.jsonl"
    for _ in range(2):
        res = cli("search", built.path, "apples", "--save-receipt", out, "--json")
        assert res.code == 0 and res.json()["ok"] is True
    assert len(out.read_text().splitlines()) == 2
    assert cli("verify", built.path, "--receipts", out).code == 0


def _ingested_with_a_bad_image(cli, tmp_path: Path) -> tuple[Path, Path]:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("apples are red and sweet\n")
    store = tmp_path / "store"
    assert cli("ingest", store, docs, "--base", tmp_path, "--checkpoint", "v1").code == 0
    image = sorted((store / "images").glob("*.vimg"))[-1]
    data = bytearray(image.read_bytes())
    data[40] ^= 1
    image.write_bytes(bytes(data))
    (docs / "b.md").write_text("bananas are yellow\n")
    return store, docs


def test_ingest_warnings_are_one_line_cli_warnings(cli, tmp_path: Path) -> None:
    store, docs = _ingested_with_a_bad_image(cli, tmp_path)
    res = cli("ingest", store, docs, "--base", tmp_path)
    assert res.code == 0, res.err
    assert "RecoveryWarning" not in res.err and "warnings.warn" not in res.err
    lines = res.err_lines
    assert len(lines) == 1, res.err  # the same warning from two call sites is printed once
    assert lines[0].startswith("valori-store: warning: skipping unusable image"), lines


def test_ingest_warnings_are_silenced_by_quiet(cli, tmp_path: Path) -> None:
    store, docs = _ingested_with_a_bad_image(cli, tmp_path)
    res = cli("ingest", store, docs, "--base", tmp_path, "-q")
    assert res.code == 0 and res.err == "", res.err


@pytest.mark.parametrize("dim", ["0", "-1", "70000"])
def test_ingest_dim_out_of_range_is_refused(cli, tmp_path: Path, dim: str) -> None:
    (tmp_path / "a.md").write_text("apples\n")
    res = cli("ingest", tmp_path / "store", tmp_path / "a.md", "--base", tmp_path, "--dim", dim)
    assert_one_line_error(res, 2, "--dim", "between 1 and")
    assert not (tmp_path / "store").exists()


def test_ingest_dim_is_honoured(cli, tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("apples\n")
    res = cli("ingest", tmp_path / "store", tmp_path / "a.md", "--base", tmp_path, "--dim", "16", "--json")
    assert res.code == 0, res.err
    assert res.json()["dim"] == 16
    store = ValoriStore.open(tmp_path / "store")
    try:
        assert store.dim == 16
    finally:
        store.close()


def test_nul_in_an_argument_is_a_usage_error(cli, built) -> None:
    assert_one_line_error(cli("search", built.path, "a\0b"), 2, "NUL")
    res = cli("inspect", str(built.path) + "\0", "--json")
    assert res.code == 2 and json.loads(res.out)["ok"] is False
