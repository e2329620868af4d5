"""Fixtures and helpers for the CLI tests (unique module name: tests have no packages).

Test modules import the fixtures they use by name (`from cli_fixtures import cli, built`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from valori_store import ValoriStore
from valori_store.cli import main
from valori_store.embedder import HashingEmbedder

SRC = Path(__file__).resolve().parents[2] / "src"
EMB = HashingEmbedder()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run ``main(argv)`` in-process; returns (exit code, stdout, stderr)."""

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = main([str(a) for a in argv])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


def assert_one_line_error(res: Result, code: int, *fragments: str) -> None:
    assert res.code == code, (res.code, res.out, res.err)
    assert len(res.err_lines) == 1, res.err
    line = res.err_lines[0]
    assert line.startswith("valori-store: error: "), line
    assert "Traceback" not in res.err
    for frag in fragments:
        assert frag in line, (frag, line)


@dataclass
class Built:
    """A durable store with history, and the facts the test knows from building it."""

    path: Path
    checkpoints: dict[str, int] = field(default_factory=dict)  # label -> seq
    hashes: dict[str, str] = field(default_factory=dict)  # label -> state hash
    records: dict[str, dict[str, tuple[str, dict[str, Any]]]] = field(default_factory=dict)  # label -> id -> (text, meta)
    receipts: int = 0
    head_hash: str = ""
    log_length: int = 0


DOCS = {
    "a": ("apples are red and sweet", {"kind": "fruit", "n": 1}),
    "B": ("bananas are long and yellow", {"kind": "fruit", "n": 2}),
    "é": ("éclairs are French pastries", {"kind": "pastry", "n": 3}),
    "z": ("zucchini is a summer squash", {"kind": "vegetable", "n": 4}),
}


def _put(store: ValoriStore, docs: dict[str, tuple[str, dict[str, Any]]]) -> None:
    ids = list(docs)
    store.upsert(EMB.embed_many([docs[i][0] for i in ids]), ids=ids, texts=[docs[i][0] for i in ids],
                 metadatas=[docs[i][1] for i in ids])


def build(path: Path) -> Built:
    """v1 -> alice turn 1 -> edits -> alice turn 2 -> rewind to turn 1 -> bob forked from alice:1."""
    b = Built(path)
    store = ValoriStore.open(path, dim=384, durability="none")
    current = dict(DOCS)
    _put(store, current)

    def mark(label: str, cp: Any) -> None:
        b.checkpoints[label] = cp.seq
        b.hashes[label] = cp.state_hash
        b.records[label] = dict(current)
        store.write_image()  # one image per marked point (checkpoints themselves write none)

    mark("v1", store.checkpoint("v1"))
    alice = store.session("alice")
    with alice.turn(meta={"user": "red things?"}):
        store.search(EMB.embed("red fruit"), k=2)
    t1 = alice.turns()[-1]
    mark("alice:1", t1.checkpoint)
    changed = {"a": ("apples are green and sour", {"kind": "fruit", "n": 1}),
               "z": ("zucchini is a summer squash", {"kind": "vegetable", "n": 5}),
               "c": ("cherries are small", {"kind": "fruit", "n": 6})}
    _put(store, changed)
    store.delete(["B"])
    current.update(changed)
    del current["B"]
    with alice.turn():
        store.search(EMB.embed("sour green"), k=2)
        store.search(EMB.embed("pastry"), k=1, filter={"kind": "pastry"})
    mark("alice:2", alice.turns()[-1].checkpoint)
    alice.rewind(1)
    store.fork_session("bob", "alice", 1)
    b.receipts = 3
    b.head_hash = store.state_hash()
    b.log_length = store.log_length
    store.close()
    return b


@pytest.fixture(scope="session")
def _built_template(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build(tmp_path_factory.mktemp("template") / "store")


@pytest.fixture
def built(_built_template: Built, tmp_path: Path) -> Built:
    """A private copy of the template store (tests may damage it)."""
    import copy
    import shutil

    shutil.copytree(_built_template.path, tmp_path / "store")
    mine = copy.deepcopy(_built_template)
    mine.path = tmp_path / "store"
    return mine


def files_state(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: (bytes, mtime_ns)."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file():
            out[str(p.relative_to(root))] = (p.read_bytes(), p.stat().st_mtime_ns)
    return out


def subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


@pytest.fixture
def holder() -> Iterator[Callable[[Path], None]]:
    """Open a store for writing in another process (it holds the lock until the test ends)."""
    procs: list[subprocess.Popen[str]] = []

    def hold(path: Path) -> None:
        code = ("import sys; from valori_store import ValoriStore; s = ValoriStore.open(sys.argv[1]); "
                "print('ready', flush=True); sys.stdin.read(); s.close()")
        proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, env=subprocess_env())
        procs.append(proc)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"

    yield hold
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def flip_byte_in_middle_frame(root: Path) -> None:
    """Corrupt the payload of log frame 1 (not the last frame: that would read as a torn tail)."""
    from valori_store.storage.recovery import read_log

    log = read_log(root)
    assert log.events > 3
    frame = log.frames[1]
    pos = frame.offset + 20 + 2  # inside the payload (16-byte header + 4-byte CRC)
    path = root / "events.vlog"
    data = bytearray(path.read_bytes())
    data[pos] ^= 0x40
    path.write_bytes(bytes(data))
