"""Shared pieces of the byte-level fuzz tests (unique module name: tests have no packages).

Budget: every fuzz test runs ``examples(weight)`` hypothesis examples, where the base is
``VALORI_FUZZ_EXAMPLES`` (default :data:`DEFAULT_EXAMPLES`, sized so that the whole of
tests/fuzz stays well under 40 s in CI). ``make fuzz`` sets a much larger base.
The examples are derandomized (the same on every run, so CI is never flaky) unless
``VALORI_FUZZ_RANDOM=1`` (as ``make fuzz`` sets) asks for fresh ones.

The rule every test checks: a loader given any bytes (or any JSON, or any argv) either
works or raises one of the package's errors (:class:`valori_store.errors.ValoriError`);
anything else — IndexError, struct.error, UnicodeDecodeError, MemoryError, a numba
error, a hang — is a bug. Mutations come in two flavours: raw (checksums left as they
are: exercises the checks) and *resealed* (checksums, digests and the log's hash chain
recomputed after the mutation: exercises the parsers and state checks behind them).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from valori_store import ValoriStore
from valori_store.errors import ValoriError
from valori_store.format import digests, frames

DEFAULT_EXAMPLES = 60


def base_examples() -> int:
    try:
        return max(1, int(os.environ.get("VALORI_FUZZ_EXAMPLES", DEFAULT_EXAMPLES)))
    except ValueError:
        return DEFAULT_EXAMPLES


def fuzz_settings(weight: float = 1.0) -> settings:
    """Hypothesis settings for a fuzz test: ``weight`` times the base budget of examples."""
    return settings(
        max_examples=max(1, int(base_examples() * weight)), deadline=None,
        derandomize=os.environ.get("VALORI_FUZZ_RANDOM") != "1", database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.function_scoped_fixture],
    )


# ---------------------------------------------------------------------------- seeds
DIM = 4


def _vec(i: int) -> list[float]:
    return [((i * 7 + j * 3) % 11 - 5) / 4 + (0.25 if j == i % DIM else 0.0) for j in range(DIM)]


@dataclass
class Seeds:
    """Valid inputs of every kind, built once per process."""

    root: Path
    store_dir: Path  # a durable spec-2 store: upserts, plain records, deletes, checkpoints, notes, sessions, images
    compacted_dir: Path  # the same history, compacted (its log starts with a base frame)
    snapshot: bytes  # format 3
    snapshot_v1: bytes  # format 1 or 2 (spec 1)
    snapshot_path: Path
    receipts: list[dict[str, Any]] = field(default_factory=list)
    proofs: list[dict[str, Any]] = field(default_factory=list)
    root_hash: str = ""

    @property
    def log(self) -> bytes:
        return (self.store_dir / "events.vlog").read_bytes()


def _fill(store: ValoriStore) -> None:
    store.upsert([_vec(i) for i in range(6)], ids=[f"id{i}" for i in range(6)],
                 texts=[f"text {i}" if i % 2 else None for i in range(6)],
                 metadatas=[{"n": i, "tag": ["a", "b"][i % 2], "nested": {"x": [i, 1.5, None, True]}}
                            for i in range(6)])
    store.upsert_plain(ids=["plain1", "plainé"], texts=["no vector", None], metadatas=[{"p": 1}, None])
    store.checkpoint("v1")
    store.delete(["id2"])
    store.annotate("topic.x", {"hello": "world", "n": 3})
    alice = store.session("alice")
    with alice.turn(meta={"user": "q?"}):
        store.search(_vec(1), k=3)
        store.search(_vec(2), k=2, filter={"tag": "a"})
    store.upsert([_vec(9)], ids=["id9"], texts=["nine"], metadatas=[{"n": 9}])
    store.checkpoint()
    store.write_image()
    store.restore("v1")
    store.write_image()


_SEEDS: Seeds | None = None


def seeds() -> Seeds:
    global _SEEDS
    if _SEEDS is None:
        root = Path(tempfile.mkdtemp(prefix="valori-fuzz-seeds-"))
        store_dir = root / "store"
        store = ValoriStore.open(store_dir, dim=DIM, durability="none")
        _fill(store)
        hits, receipt = store.search_with_receipt(_vec(3), k=3, proofs=True)
        _, mmr = store.mmr_search_with_receipt(_vec(4), k=2, fetch_k=4, lambda_mult=0.25, filter={"n": {"$gte": 1}})
        _, plain = store.search_with_receipt(_vec(5), k=2)
        receipts = [receipt.to_dict(), mmr.to_dict(), plain.to_dict()]
        proofs = [p.to_dict() for p in store.prove(["id1", "plain1", "absent-id"])]
        root_hash = store.state_hash()
        snap = store.to_bytes()
        snap_v1 = store.to_bytes(spec=1)
        store.close()
        compacted_dir = root / "compacted"
        shutil.copytree(store_dir, compacted_dir)
        c = ValoriStore.open(compacted_dir, durability="none")
        c.upsert([_vec(11)], ids=["late"], texts=["after"], metadatas=[{"late": True}])
        c.checkpoint("late")
        c.compact("late")
        c.upsert([_vec(12)], ids=["later"])
        c.close()
        snapshot_path = root / "seed.vsnap"
        snapshot_path.write_bytes(snap)
        _SEEDS = Seeds(root, store_dir, compacted_dir, snap, snap_v1, snapshot_path, receipts, proofs, root_hash)
    return _SEEDS


# ---------------------------------------------------------------------------- byte mutations
INTERESTING_U32 = [0, 1, 2, 3, 4, 7, 8, 15, 16, 31, 32, 63, 64, 255, 256, 4096, 65535, 65536, 65537,
                   2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]
INTERESTING_U64 = INTERESTING_U32 + [2**53, 2**63 - 1, 2**63, 2**64 - 1]


@st.composite
def mutated(draw: Callable[..., Any], seed: bytes, max_ops: int = 4) -> bytes:
    """``seed`` with a few random edits: bit flips, byte sets, inserts, deletes,
    truncation, extension, duplicated slices and interesting little-endian integers."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_ops))):
        op = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend", "dup", "u32", "u64",
                                   "zero"]))
        n = len(data)
        pos = draw(st.integers(0, max(n - 1, 0)))
        if op == "flip" and n:
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "set" and n:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and n:
            del data[pos:pos + draw(st.integers(1, 16))]
        elif op == "truncate":
            del data[pos:]
        elif op == "extend":
            data += draw(st.binary(min_size=1, max_size=64))
        elif op == "dup" and n:
            size = draw(st.integers(1, 64))
            data[pos:pos] = data[pos:pos + size]
        elif op == "zero" and n:
            size = draw(st.integers(1, 64))
            data[pos:pos + size] = bytes(len(data[pos:pos + size]))
        elif op in ("u32", "u64") and n:
            size = 4 if op == "u32" else 8
            value = draw(st.sampled_from(INTERESTING_U32 if size == 4 else INTERESTING_U64) | st.integers(
                0, 2 ** (8 * size) - 1))
            data[pos:pos + size] = value.to_bytes(size, "little")
    return bytes(data)


# ---------------------------------------------------------------------------- resealing
def split_log(data: bytes) -> tuple[bytes, list[tuple[int, int, bytes]]]:
    """(file header, [(seq, kind, payload)]) of a valid log."""
    scan = frames.scan(data, "seed")
    return data[: frames.FILE_HEADER_SIZE], [(f.seq, f.kind, bytes(f.payload)) for f in scan.frames]


def join_log(header: bytes, items: list[tuple[int, int, bytes]]) -> bytes:
    """A log with valid header CRCs, chain hashes and lengths around any payloads (a base
    frame first keeps the chain hash its payload records)."""
    out = [header]
    chain = frames.GENESIS
    for i, (seq, kind, payload) in enumerate(items):
        if i == 0 and kind == frames.BASE_KIND and len(payload) >= frames.BASE_CHAIN_AT + frames.CHAIN_SIZE:
            chain = payload[frames.BASE_CHAIN_AT: frames.BASE_CHAIN_AT + frames.CHAIN_SIZE]
            out.append(frames.encode_base_frame(seq, payload, chain))
            continue
        frame, chain = frames.encode_frame(seq, kind & 0xFF, payload, chain)
        out.append(frame)
    return b"".join(out)


def reseal_snapshot(data: bytes) -> bytes:
    """Recompute the trailing digest (format 3's or the spec-1 state digest)."""
    if len(data) < 32 + 10:
        return data
    tree = int.from_bytes(data[8:10], "little") == 3
    h = digests.tagged(digests.SNAPSHOT if tree else digests.STATE)
    h.update(data[:-32])
    return data[:-32] + h.digest()


def reseal_image(data: bytes) -> bytes:
    """Recompute an image's trailing digest (version 2 manifest or version 1 image)."""
    if len(data) < 32 + 10:
        return data
    v2 = int.from_bytes(data[8:10], "little") == 2
    h = digests.tagged(digests.IMAGE_V2 if v2 else digests.IMAGE)
    h.update(data[:-32])
    return data[:-32] + h.digest()


# ---------------------------------------------------------------------------- the rule
@contextmanager
def only_package_errors(what: str) -> Iterator[None]:
    """Let ValoriError through quietly; anything else fails the example, saying where."""
    try:
        yield
    except ValoriError:
        pass


def copy_store(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    lock = dest / "LOCK"
    if lock.exists():
        lock.unlink()
    return dest


def exercise(store: Any) -> None:
    """Read everything a loaded store offers (each call may raise only ValoriError)."""
    calls: list[Callable[[], Any]] = [
        lambda: len(store), store.state_hash, store.ids, lambda: store.get(store.ids()[:5]),
        lambda: store.search(np.ones(store.dim), k=3), store.history, lambda: store.notes(),
        lambda: store.select_ids({"n": {"$gte": 0}}), lambda: store.prove(store.ids()[:2]),
    ]
    if hasattr(store, "sessions"):
        calls.append(store.sessions)
    for call in calls:
        with only_package_errors("store read"):
            call()


_CLI_SEED: Path | None = None


def cli_seed() -> Path:
    """A store built by ``valori-store ingest`` (384-d, with its embedder record), with two
    checkpoints ('v1' with an image, 'v2') and a session turn, for the CLI fuzzing."""
    global _CLI_SEED
    if _CLI_SEED is None:
        import contextlib
        import io

        from valori_store.cli import main

        root = seeds().root / "cli"
        docs = root / "docs"
        docs.mkdir(parents=True)
        (docs / "a.md").write_text("# apples\n\nApples are red and sweet. " * 20)
        (docs / "b.txt").write_text("Bananas are long and yellow; zucchini is a squash. " * 10)
        store = root / "store"
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            assert main(["ingest", str(store), str(docs), f"--base={root}", "--checkpoint=v1", "-q"]) == 0
            (docs / "b.txt").write_text("Bananas changed. " * 30)
            assert main(["ingest", str(store), str(docs), f"--base={root}", "--checkpoint=v2", "-q",
                         "--chunk-size=200", "--overlap=20"]) == 0
        s = ValoriStore.open(store, durability="none")
        try:
            from valori_store.embedder import HashingEmbedder

            emb = HashingEmbedder(s.dim)
            with s.session("alice").turn(meta={"q": "red"}):
                s.search(emb.embed("red apples"), k=2)
        finally:
            s.close()
        _CLI_SEED = store
    return _CLI_SEED


class Hang(BaseException):
    """An example ran past its time limit (a hang is a bug too). BaseException so that no
    ``except Exception`` in the code under test can swallow it."""


@contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Raise Hang in the main thread after ``seconds`` (POSIX; no-op elsewhere)."""
    import signal

    if not hasattr(signal, "setitimer"):
        yield
        return

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
