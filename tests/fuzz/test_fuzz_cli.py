"""Fuzzing of the CLI's argument parsing and handling: ``valori_store.cli.main(argv)`` with
argv built from every command's options and fuzzed values (filters, counts, points,
labels, odd paths: a FIFO, /dev/zero, a directory, a missing name, a text file).

Documented results: main returns an exit code from docs/cli.md — never 70 (internal
error) — and never raises; stderr holds one-line errors and warnings, no traceback. Every
path argument points into a fresh temporary directory, so nothing outside it is written."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path

from fuzz_support import cli_seed, copy_store, fuzz_settings, seeds, time_limit
import pytest
from hypothesis import given
from hypothesis import strategies as st

from valori_store.cli import main
from valori_store.cli.common import INTERNAL, KINDS


#: Damaged inputs are meant to be recovered from with a warning; only errors are checked here.
pytestmark = pytest.mark.filterwarnings("ignore::valori_store.storage.image_files.RecoveryWarning")

CODES = set(KINDS) - {INTERNAL} | {130}

TEXT = st.text(max_size=12) | st.sampled_from(["", " ", "-", "--", "-k", "--json", "head", "v1", "0", "3", "10",
                                                "-1", "alice:1", "alice:99", "bob:1", ":1", "1e3", "nan", "inf",
                                                "99999999999999999999999", "é", "\u202e", "\udc80"])
FILTERS = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False) | st.text(max_size=6)
    | st.sampled_from(["$and", "$or", "$not", "$in", "$gte", "$eq", "$exists", "n", "tag"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["$and", "$or", "$not", "$in", "$nin", "$gte", "$lt", "$eq", "$ne", "$exists", "n", "tag",
                         "nested.x", ""]) | st.text(max_size=4), inner, max_size=3),
    max_leaves=8)


def _filter_text() -> st.SearchStrategy[str]:
    return (FILTERS.map(lambda v: json.dumps(v)) | st.text(max_size=20)
            | st.integers(0, 3000).map(lambda n: '{"$and": [' * n + '{"n": 1}' + "]}" * n)
            | st.integers(0, 3000).map(lambda n: "[" * n))


RARELY = st.sampled_from([False] * 19 + [True])
COUNT = st.sampled_from([st.integers(0, 12).map(str)] * 8 + [TEXT, st.integers(-5, 2**70).map(str)]).flatmap(
    lambda s: s)
POINT = st.sampled_from(["head", "v1", "3", "10", "11", "alice:1", "alice:2", "bob:1", "0"]) | TEXT


def _argv(draw: st.DrawFn, paths: dict[str, str]) -> list[str]:
    usual = [paths["store"]] * 6 + [paths["snapshot"]] * 2 + sorted(paths.values())
    p = lambda: draw(st.sampled_from(usual))  # noqa: E731
    command = draw(st.sampled_from(["inspect", "verify", "history", "diff", "replay", "search", "search", "search",
                                    "ingest", "ingest", "compact", "migrate", "inspect", "verify", "diff"]
                                   + ["none", "junk"] * draw(RARELY)))
    argv: list[str]
    if command == "inspect":
        argv = ["inspect", p()]
    elif command == "verify":
        argv = ["verify", p()] + draw(st.lists(st.sampled_from(["--no-sessions"]) | st.builds(
            lambda f: f"--receipts={f}", st.sampled_from(sorted(paths.values()))), max_size=2))
    elif command == "history":
        argv = ["history", p()] + draw(st.sampled_from([[], ["--all"]]))
    elif command == "diff":
        argv = ["diff", p()] + draw(st.sampled_from([[], [p()]])) + draw(st.lists(st.builds(
            lambda o, v: f"{o}={v}", st.sampled_from(["--from", "--to"]), POINT), max_size=2)) + draw(
            st.sampled_from([[], ["--exit-code"]]))
    elif command == "replay":
        out = draw(st.sampled_from([paths["fresh"], paths["fresh"] + ".vsnap", paths["store"], paths["empty"]]))
        argv = ["replay", p(), f"--to={draw(POINT)}", f"--out={out}"]
    elif command == "search":
        argv = ["search", p(), draw(TEXT)]
        for _ in range(draw(st.integers(0, 4))):
            argv += draw(st.sampled_from([
                ["-k", draw(COUNT)], ["--mmr"], ["--receipt"],
                ["--fetch-k", draw(COUNT)],
                ["--lambda", draw(st.floats(0, 1).map(repr) | TEXT | st.floats().map(repr))], [f"--filter={draw(_filter_text())}"],
                [f"--save-receipt={draw(st.sampled_from([paths['fresh'], paths['empty'], paths['fifo']]))}"],
            ]))
    elif command == "ingest":
        argv = ["ingest", draw(st.sampled_from([paths["store"], paths["fresh"], paths["snapshot"]])),
                draw(st.sampled_from([paths["text"], paths["empty"], paths["fifo"], paths["missing"]]))]
        for _ in range(draw(st.integers(0, 3))):
            argv += draw(st.sampled_from([
                ["--dim", draw(TEXT | st.integers(-3, 2**40).map(str))],
                ["--chunk-size", draw(TEXT | st.integers(-3, 2**70).map(str))],
                ["--overlap", draw(TEXT | st.integers(-3, 2**70).map(str))],
                ["--batch-size", draw(TEXT | st.integers(-3, 2**70).map(str))],
                ["--metric", draw(st.sampled_from(["cosine", "l2", "ip", "dot", ""]))],
                [f"--base={paths['root']}"], [f"--base={paths['missing']}"], ["--adopt-embedder"],
                [f"--checkpoint={draw(TEXT)}"],
            ]))
        if not any(a.startswith("--base") for a in argv):
            argv.append(f"--base={paths['root']}")
    elif command == "compact":
        argv = ["compact", p(), f"--before={draw(POINT)}"]
    elif command == "migrate":
        argv = ["migrate", p()] + draw(st.sampled_from([[], [f"--out={paths['fresh']}"]]))
    elif command == "none":
        argv = []
    else:
        argv = [draw(TEXT)]
    argv += draw(st.lists(st.sampled_from(["--json", "-q", "--quiet"]), max_size=2, unique=True))
    if draw(RARELY):
        argv.append("--help")
    if draw(RARELY):  # an odd extra token somewhere
        argv.insert(draw(st.integers(0, len(argv))), draw(TEXT))
    return argv


@st.composite
def argvs(draw: st.DrawFn, paths: dict[str, str]) -> list[str]:
    return _argv(draw, paths)


def _layout(tmp: Path) -> dict[str, str]:
    s = seeds()
    copy_store(cli_seed(), tmp / "store")
    copy_store(s.store_dir, tmp / "plain")
    shutil.copy(s.snapshot_path, tmp / "snap.vsnap")
    (tmp / "empty").mkdir()
    (tmp / "notes.md").write_text("# notes\n\nsome words to ingest, enough of them to chunk.\n" * 5)
    os.mkfifo(tmp / "fifo")
    return {"root": str(tmp), "store": str(tmp / "store"), "plain": str(tmp / "plain"), "snapshot": str(tmp / "snap.vsnap"),
            "empty": str(tmp / "empty"), "text": str(tmp / "notes.md"), "fifo": str(tmp / "fifo"),
            "missing": str(tmp / "missing"), "fresh": str(tmp / "fresh"), "zero": "/dev/zero"}


PLACEHOLDER = {k: f"<{k}>" for k in ("root", "store", "plain", "snapshot", "empty", "text", "fifo", "missing", "fresh",
                                     "zero")}


@fuzz_settings(1.0)
@given(data=st.data())
def test_cli_argv(data: st.DataObject) -> None:
    template = data.draw(argvs(PLACEHOLDER))
    with tempfile.TemporaryDirectory() as tmp:
        paths = _layout(Path(tmp))
        argv = [_fill(a, paths) for a in template]
        out, err = io.StringIO(), io.StringIO()
        cwd = os.getcwd()
        os.chdir(tmp)  # a relative junk token never lands anywhere but here
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), time_limit(30):
                code = main(argv)
        finally:
            os.chdir(cwd)
    assert code in CODES, (argv, code, err.getvalue())
    assert "Traceback" not in err.getvalue(), (argv, err.getvalue())
    assert "internal error" not in err.getvalue(), (argv, err.getvalue())
    for line in err.getvalue().splitlines():
        assert not line.strip() or line.startswith(("valori-store: ", "usage:", "\n")) or "--help" in argv, (
            argv, err.getvalue())


def _fill(arg: str, paths: dict[str, str]) -> str:
    for key, placeholder in PLACEHOLDER.items():
        arg = arg.replace(placeholder, paths[key])
    return arg
