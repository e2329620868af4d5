"""CLI conventions: help everywhere, one-line errors with documented exit codes, JSON
errors, the progress bar, and running as ``python -m valori_store.cli``."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_fixtures import (  # noqa: F401 (fixtures are used by name)
    _built_template,
    assert_one_line_error,
    built,
    cli,
    subprocess_env,
)

from valori_store.cli import COMMANDS, main
from valori_store.cli.progress import Progress

PATH_COMMANDS = [
    ["inspect"], ["verify"], ["history"], ["diff", "--from", "head"], ["replay", "--to", "head", "--out", "OUT"],
    ["search", "TEXT"],
]


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "demo"])
def test_help_on_every_command(cli, command: str) -> None:
    res = cli(command, "--help")
    assert res.code == 0
    assert res.out.startswith(f"usage: valori-store {command}")
    assert "--json" in res.out and "--quiet" in res.out


def test_top_level_help_lists_commands_and_exit_codes(cli) -> None:
    res = cli("--help")
    assert res.code == 0
    for command in COMMANDS:
        assert command in res.out
    assert "3 not found" in res.out and "4 corrupt" in res.out


def test_version(cli) -> None:
    import valori_store

    res = cli("--version")
    assert res.code == 0 and res.out.strip() == f"valori-store {valori_store.__version__}"


def test_no_command_and_unknown_command(cli) -> None:
    assert_one_line_error(cli(), 2, "choose a command")
    assert_one_line_error(cli("frobnicate"), 2, "invalid choice", "--help")


def test_wrong_arguments_are_one_line_usage_errors(cli, built) -> None:
    assert_one_line_error(cli("search", built.path, "q", "-k", "many"), 2, "expected a whole number")
    assert_one_line_error(cli("inspect"), 2, "required")
    assert_one_line_error(cli("replay", built.path, "--to", "v1"), 2, "--out")
    assert_one_line_error(cli("inspect", built.path, "--bogus"), 2, "unrecognized arguments")


@pytest.mark.parametrize("argv", PATH_COMMANDS, ids=lambda a: a[0])
def test_missing_path_is_not_found(cli, tmp_path: Path, argv: list[str]) -> None:
    missing = tmp_path / "nope"
    args = [argv[0], missing, *argv[1:]]
    if argv[0] == "replay":
        args = ["replay", missing, "--to", "head", "--out", tmp_path / "out"]
    assert_one_line_error(cli(*args), 3, str(missing))


def test_directory_without_a_store_is_not_found(cli, tmp_path: Path) -> None:
    assert_one_line_error(cli("inspect", tmp_path), 3, "no valori store")


def test_json_error_object(cli, tmp_path: Path) -> None:
    res = cli("inspect", tmp_path / "nope", "--json")
    assert res.code == 3
    doc = res.json()
    assert doc["ok"] is False and doc["command"] == "inspect"
    assert doc["error"]["code"] == 3 and doc["error"]["kind"] == "not-found"
    assert str(tmp_path / "nope") in doc["error"]["message"]
    assert len(res.err_lines) == 1


def test_log_file_instead_of_directory(cli, built) -> None:
    assert_one_line_error(cli("inspect", built.path / "events.vlog"), 2, "pass its directory")


def test_garbage_file_is_corrupt(cli, tmp_path: Path) -> None:
    junk = tmp_path / "junk.vsnap"
    junk.write_bytes(b"not a snapshot at all" * 4)
    assert_one_line_error(cli("inspect", junk), 4, "not a valori snapshot")
    assert_one_line_error(cli("search", junk, "q"), 4)


def test_internal_errors_are_one_line(cli, built, monkeypatch: pytest.MonkeyPatch) -> None:
    from valori_store.cli import cmd_inspect

    def boom(*_: object) -> None:
        raise RuntimeError("kaboom\nsecond line")

    monkeypatch.setattr(cmd_inspect, "inspect_path", boom)
    assert_one_line_error(cli("inspect", built.path), 70, "internal error", "RuntimeError: kaboom second line")
    monkeypatch.setenv("VALORI_STORE_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["inspect", str(built.path)])


def test_demo_passes_arguments_through(monkeypatch: pytest.MonkeyPatch) -> None:
    import valori_store.cli.demo

    seen: list[list[str]] = []

    def fake(argv: list[str]) -> int:
        seen.append(argv)
        return 7

    monkeypatch.setattr(valori_store.cli.demo, "main", fake)
    assert main(["demo", "--keep", "x", "--quiet"]) == 7
    assert seen == [["--keep", "x", "--quiet"]]


def test_demo_help_is_the_demos(cli) -> None:
    res = cli("demo", "--help")
    assert res.code == 0 and "--keep" in res.out


def test_module_entry_point_in_a_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "valori_store.cli", "inspect", str(tmp_path / "missing")],
                          capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert proc.returncode == 3
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("valori-store: error: no store")


# ---------------------------------------------------------------------------- progress bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_draws_only_on_a_tty() -> None:
    tty, pipe = _Tty(), io.StringIO()
    ticks = iter(range(100))
    for stream in (tty, pipe):
        with Progress(4, "work", stream, clock=lambda: float(next(ticks))) as bar:
            for _ in range(4):
                bar.advance()
    assert pipe.getvalue() == ""
    text = tty.getvalue()
    assert text.startswith("\rwork [") and text.endswith("\n")
    assert " 25% 1/4" in text and "100% 4/4" in text
    assert "#" * 28 in text


def test_progress_disabled_and_byte_units() -> None:
    tty = _Tty()
    with Progress(10, "x", tty, enabled=False) as bar:
        bar.update(10)
    assert tty.getvalue() == ""
    bar = Progress(3 * 1024 * 1024, "verify", _Tty(), unit="B")
    bar.done = 1024 * 1024
    assert bar.render().endswith(" 33% 1.0 MiB/3.0 MiB")


def test_progress_is_silent_in_json_and_quiet_mode(cli, built, monkeypatch: pytest.MonkeyPatch) -> None:
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    for flags in (["--json"], ["--quiet"]):
        main(["verify", str(built.path), *flags])
    assert "[" not in tty.getvalue()
    main(["verify", str(built.path)])
    assert "\rverify [" in tty.getvalue() and "100%" in tty.getvalue()


# ---------------------------------------------------------------------------- JSON schemas

SCHEMAS = {
    "inspect": {"path", "kind", "dim", "metric", "count", "state_hash", "spec_version", "log", "images",
                "state_from", "checkpoints", "sessions", "warnings"},
    "verify": {"path", "kind", "report", "receipts", "sessions"},
    "history": {"path", "events", "entries"},
    "diff": {"identical", "from", "to", "added", "removed", "changed", "counts"},
    "replay": {"path", "to", "out", "out_kind", "events_replayed", "records", "state_hash", "expected_state_hash",
               "match", "out_events"},
    "search": {"path", "query", "k", "filter", "mode", "state_hash", "hits"},
    "ingest": {"path", "created", "dim", "metric", "files", "chunks", "added", "updated", "unchanged", "removed",
               "count", "state_hash", "checkpoint"},
    "compact": {"path", "base_seq", "previous_base_seq", "changed", "replaced_events", "kept_checkpoints_and_notes",
                "log_bytes_before", "log_bytes_after", "events", "state_hash"},
    "migrate": {"path", "kind", "changed", "out", "backup", "events", "checkpoints", "records", "state_hash_v1",
                "state_hash", "dropped_bytes"},
}


def test_json_schema_of_every_command(cli, built, tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("some text to ingest", encoding="utf-8")
    runs = {
        "inspect": ["inspect", built.path], "verify": ["verify", built.path], "history": ["history", built.path],
        "diff": ["diff", built.path, "--from", "v1"], "replay": ["replay", built.path, "--to", "v1", "--out",
                                                                 tmp_path / "r"],
        "search": ["search", built.path, "red"],
        "ingest": ["ingest", tmp_path / "new", tmp_path / "a.txt", "--base", tmp_path],
        "compact": ["compact", shutil.copytree(built.path, tmp_path / "copy"), "--before", "v1"],
        "migrate": ["migrate", shutil.copytree(Path(__file__).parents[1] / "fixtures" / "v0_1" / "core",
                                               tmp_path / "v0_1")],
    }
    assert set(runs) == set(SCHEMAS) == set(COMMANDS) - {"demo"}
    for name, argv in runs.items():
        res = cli(*argv, "--json")
        assert res.code == 0, (name, res.err)
        doc = res.json()
        assert set(doc) == SCHEMAS[name] | {"command", "ok"}, name
        assert doc["command"] == name and doc["ok"] is True
        assert res.err == ""


def test_corrupt_log_is_one_line_exit_4_everywhere(cli, built, tmp_path: Path) -> None:
    from cli_fixtures import flip_byte_in_middle_frame

    flip_byte_in_middle_frame(built.path)
    (tmp_path / "a.txt").write_text("text", encoding="utf-8")
    for argv in (["inspect", built.path], ["history", built.path], ["search", built.path, "red"],
                 ["diff", built.path, "--from", "v1"], ["replay", built.path, "--to", "v1", "--out", tmp_path / "o"],
                 ["verify", built.path]):
        assert_one_line_error(cli(*argv), 4, "events.vlog")
    # (ingest opens the store for writing: from its newest image, without reading the record
    # payloads under it, so this damage under the image is verify's to report, not ingest's)
    assert not (tmp_path / "o").exists()
