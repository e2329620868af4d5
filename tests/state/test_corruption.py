"""Corruption: bit flips and truncations of snapshots, event logs and checkpoint images.

Rules checked (docs/format.md, "Recovery rule"):

* A damaged snapshot never loads: CorruptFileError (FormatVersionError is a subclass).
* A damaged log either makes ``ValoriStore.open`` raise CorruptFileError (leaving the file
  untouched), or it opens with a TornTailWarning and the state after a *prefix* of the
  original events, the prefix matching ``log_length``. Opening without any warning is
  only allowed when the damage is undetectable by design (a truncation exactly at a frame
  boundary). Recovery checks every frame after the newest image; under it, frame headers
  and the checkpoint and note events (record payloads there are left to ``verify``).
* A damaged checkpoint image is skipped with a warning and the log still gives the state.
* ``verify`` reports (ok=False or warnings); it never raises.
* Any exception that is not a ValoriError is a failure.

Expected prefix states are computed independently, with an in-memory store that performs
the same operations one by one.
"""

from __future__ import annotations

import hashlib
import random
import struct
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from valori_store import CorruptFileError, ValoriError, ValoriStore, verify
from valori_store.storage.recovery import TornTailWarning

SEED = 1234567
DIM = 3


# --------------------------------------------------------------------------- outcome helpers


def outcome(fn: Callable[[], Any]) -> tuple[str, Any]:
    """('ok', value) | ('corrupt', exc); any other exception fails the test at once."""
    try:
        return "ok", fn()
    except CorruptFileError as exc:
        return "corrupt", exc
    except ValoriError as exc:
        pytest.fail(f"{type(exc).__name__} (a ValoriError but not CorruptFileError): {exc}")
    except Exception as exc:  # noqa: BLE001 - the point of the test
        pytest.fail(f"foreign exception {type(exc).__name__}: {exc}")


def flip(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


# --------------------------------------------------------------------------- snapshots


def small_store() -> ValoriStore:
    s = ValoriStore(DIM, "dot")
    s.upsert(
        [[1.0, -2.0, 0.5], [0.25, 0.0, -1.5], [3.0, 3.0, 3.0], [-0.125, 7.0, 2.0], [0.0, 0.0, 1.0]],
        ids=["a", "b", "\u00e9t\u00e9", "z1", "\u65e5"],
        texts=["alpha", None, "", "zed \u2603", "sun"],
        metadatas=[{"k": 1}, None, {"nested": {"x": [1, 2.5, None]}, "b": True}, {"s": "v"}, {"n": -3}],
    )
    return s


@pytest.fixture(scope="module", params=["format3", "format1"])
def snap(request: pytest.FixtureRequest) -> bytes:
    """The small store's snapshot as this version writes it (format 3), and as a 0.1 store
    (spec 1) writes it (format 1): both must reject every damage."""
    store = small_store()
    if request.param == "format3":
        data = store.to_bytes()
    else:
        from valori_store.format import snapshot

        content = store.state_at(store.log_length - 1).table.content()
        content.spec = 1
        data = snapshot.encode(content)
    assert len(data) < 700, "keep the snapshot small enough to flip every bit"
    return data


def expect_snapshot_rejected(data: bytes, what: str) -> None:
    kind, value = outcome(lambda: ValoriStore.from_bytes(data))
    assert kind == "corrupt", f"{what}: loaded a damaged snapshot (state {value.state_hash()})"


def test_every_bit_flip_of_a_snapshot_is_rejected(snap: bytes) -> None:
    assert ValoriStore.from_bytes(snap).to_bytes() == snap  # the pristine copy loads
    for off in range(len(snap)):
        for bit in range(8):
            expect_snapshot_rejected(flip(snap, off, bit), f"flip offset {off} bit {bit}")


def test_every_truncation_and_extension_of_a_snapshot_is_rejected(snap: bytes) -> None:
    for n in range(len(snap)):
        expect_snapshot_rejected(snap[:n], f"truncated to {n}")
    for extra in (b"\x00", b"\x00" * 32, b"x", snap[-32:]):
        expect_snapshot_rejected(snap + extra, f"extended by {len(extra)}")
    # the body with a freshly computed digest for the *original* body is still caught when a
    # byte inside moves (two flips that cancel in a CRC would not cancel in SHA-256)
    expect_snapshot_rejected(snap[1:] + snap[:1], "rotated")


def test_damaged_snapshot_files_fail_load_and_verify_cleanly(tmp_path: Path, snap: bytes) -> None:
    rng = random.Random(SEED)
    path = tmp_path / "x.vsnap"
    cases = [flip(snap, off, rng.randrange(8)) for off in rng.sample(range(len(snap)), 40)]
    cases += [snap[:n] for n in rng.sample(range(len(snap)), 20)]
    for data in cases:
        path.write_bytes(data)
        kind, _ = outcome(lambda: ValoriStore.load(path))
        assert kind == "corrupt"
        rep = outcome(lambda: verify(path))[1]
        assert not rep.ok and rep.problems and rep.state_hash is None


def test_snapshot_version_bump_is_a_format_version_error(snap: bytes) -> None:
    from valori_store import FormatVersionError

    for off in (8, 10):  # u16 format version, u16 spec version
        # a file really written by a newer version has a valid digest
        with pytest.raises(FormatVersionError):
            ValoriStore.from_bytes(_redigest(flip(snap, off, 1)[:-32]))
        # a flipped version bit without a matching digest is plain corruption
        with pytest.raises(CorruptFileError) as info:
            ValoriStore.from_bytes(flip(snap, off, 1))
        assert not isinstance(info.value, FormatVersionError)


def _redigest(body: bytes) -> bytes:
    """``body`` (everything before the trailing digest) with its file digest recomputed."""
    tag = b"valori-snapshot-v2\x00" if struct.unpack_from("<H", body, 8)[0] == 3 else b"valori-state-v1\x00"
    h = hashlib.sha256(tag)
    h.update(body)
    return body + h.digest()


def _with_metadata(snap: bytes, replacement: bytes) -> bytes:
    """The snapshot with record z1's metadata bytes replaced, lengths fixed and digest recomputed."""
    body = snap[:-32]
    original = struct.pack("<I", 9) + b'{"s":"v"}'
    assert body.count(original) == 1
    body = body.replace(original, struct.pack("<I", len(replacement)) + replacement)
    (rec_len,) = struct.unpack_from("<Q", body, 48)  # header field records_length
    body = body[:48] + struct.pack("<Q", rec_len + len(replacement) - 9) + body[56:]
    return _redigest(body)


def test_snapshot_surgery_control(snap: bytes) -> None:
    """The helper below rebuilds the original bytes exactly when nothing is changed; a
    format-1 file edited consistently loads, a format-3 one fails its recorded state root."""
    assert _with_metadata(snap, b'{"s":"v"}') == snap
    edited = _with_metadata(snap, b'{"s":"w"}')
    if struct.unpack_from("<H", snap, 8)[0] == 3:
        with pytest.raises(CorruptFileError, match="state root"):
            ValoriStore.from_bytes(edited)
    else:
        assert ValoriStore.from_bytes(edited).get(["z1"])[0].metadata == {"s": "w"}


@pytest.mark.parametrize("replacement", [b'["s","v"]', b'{ "s":"v"}', b'{"s":NaN}'], ids=["list", "space", "nan"])
def test_snapshot_with_noncanonical_metadata_and_valid_digest_is_rejected(snap: bytes, replacement: bytes) -> None:
    with pytest.raises(CorruptFileError):
        ValoriStore.from_bytes(_with_metadata(snap, replacement))


# --------------------------------------------------------------------------- durable directories

OPS: list[tuple[str, Any]] = [
    ("upsert", dict(vectors=[[1, 2, 3], [-1, 0.5, 0], [0, 0, 4]], ids=["p", "q", "r"],
                    texts=["pee", None, "arr"], metadatas=[{"i": 0}, {"i": 1, "tag": ["x"]}, None])),
    ("upsert", dict(vectors=[[2, 2, 2]], ids=["s\u00df"], texts=["long text " * 3], metadatas=[{"deep": {"a": [1, {"b": None}]}}])),
    ("delete", ["q"]),
    ("checkpoint", "c1"),
    ("upsert", dict(vectors=[[5, -5, 0.25], [1, 1, 1]], ids=["t", "p"], texts=[None, "pee2"], metadatas=[None, {"i": 9}])),
    ("restore", "c1"),
    ("upsert", dict(vectors=[[0.5, 0.5, 0.5]], ids=["u"], texts=["you"], metadatas=[{"last": True}])),
    ("delete", ["r"]),
]


def apply_op(store: ValoriStore, kind: str, arg: Any) -> None:
    if kind == "upsert":
        store.upsert(**arg)
    elif kind == "delete":
        assert store.delete(arg) == len(arg)
    elif kind == "checkpoint":
        store.checkpoint(arg)
        store.write_image()  # durable stores: an image right after the checkpoint (a no-op in memory)
    else:
        store.restore(arg)


def prefix_hashes() -> list[str]:
    """hashes[seq]: state hash after log event ``seq`` (0 = create), built independently in memory."""
    mem = ValoriStore(DIM, "l2")
    hashes = [mem.state_hash()]
    for kind, arg in OPS:
        apply_op(mem, kind, arg)
        assert mem.log_length == len(hashes) + 1, "each op must be exactly one event"
        hashes.append(mem.state_hash())
    return hashes


def frame_bounds(log: bytes) -> list[int]:
    """End offset of the file header and of each frame, parsed by hand from docs/format.md."""
    assert log[:8] == b"VALORILG"
    bounds = [16]
    pos = 16
    while pos < len(log):
        assert log[pos:pos + 2] == b"VF"
        (length,) = struct.unpack_from("<I", log, pos + 4)
        pos += 56 + length
        assert struct.unpack_from("<I", log, pos - 4)[0] == 56 + length
        bounds.append(pos)
    assert pos == len(log)
    return bounds


class Fixture:
    def __init__(self, root: Path) -> None:
        self.root = root
        with ValoriStore.open(root, dim=DIM, metric="l2") as s:
            for kind, arg in OPS:
                apply_op(s, kind, arg)
            self.final_hash = s.state_hash()
        self.log = (root / "events.vlog").read_bytes()
        self.bounds = frame_bounds(self.log)
        self.hashes = prefix_hashes()
        assert len(self.bounds) == len(self.hashes) + 1 == len(OPS) + 2
        assert self.hashes[-1] == self.final_hash
        self.images = {p.name: p.read_bytes() for p in (root / "images").iterdir()}
        self.pages = {p.name: p.read_bytes() for p in (root / "pages").iterdir()}
        assert len(self.images) == 1 and self.pages
        from valori_store.format import images

        (img_bytes,) = self.images.values()
        self.image_end = images.decode_manifest(img_bytes, "image").log_end
        assert self.image_end in self.bounds


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> Fixture:
    return Fixture(tmp_path_factory.mktemp("durable") / "store")


def prepare(fx: Fixture, work: Path, log: bytes, with_images: bool, images: dict[str, bytes] | None = None,
            pages: dict[str, bytes] | None = None) -> None:
    """(Re)write ``work`` as the fixture's directory with the given log, image manifests and pages."""
    for folder, given, default in (("images", images, fx.images), ("pages", pages, fx.pages)):
        d = work / folder
        d.mkdir(parents=True, exist_ok=True)
        wanted = (given if given is not None else default) if with_images else {}
        for p in d.iterdir():
            if p.name not in wanted:
                p.unlink()
        for name, data in wanted.items():
            p = d / name
            if not p.exists() or p.read_bytes() != data:
                p.write_bytes(data)
    (work / "events.vlog").write_bytes(log)


def open_recorded(root: Path) -> tuple[str, Any, list[warnings.WarningMessage]]:
    """Open ``root``; returns the outcome and the warnings (ResourceWarnings from the known
    file-handle leak of a failed open are left out: test_failed_open_closes_the_log_file covers them)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # durability only changes fsync calls after recovery; "none" keeps the sweeps fast
        kind, value = outcome(lambda: ValoriStore.open(root, durability="none"))
    return kind, value, [w for w in caught if not issubclass(w.category, ResourceWarning)]


def check_damaged_log(fx: Fixture, work: Path, log: bytes, with_images: bool, what: str) -> str:
    """Apply the recovery rule to one damaged log; returns how the damage was handled."""
    prepare(fx, work, log, with_images)
    boundary_cut = log == fx.log[: len(log)] and len(log) in fx.bounds
    rep_kind, rep = outcome(lambda: verify(work))
    assert rep_kind == "ok", f"{what}: verify raised {rep}"
    if not boundary_cut:
        assert (not rep.ok) or rep.warnings, f"{what}: verify saw nothing wrong\n{rep}"

    kind, store, caught = open_recorded(work)
    for w in caught:
        assert issubclass(w.category, TornTailWarning), f"{what}: unexpected warning {w.category}: {w.message}"
    if kind == "corrupt":
        assert (work / "events.vlog").read_bytes() == log, f"{what}: a failed open modified the log"
        assert (not rep.ok), f"{what}: open failed but verify said ok\n{rep}"
        return "corrupt"
    try:
        n = store.log_length
        h = store.state_hash()
        assert 1 <= n <= len(fx.hashes), what
        assert h == fx.hashes[n - 1], f"{what}: recovered a state that is not the state after events 0..{n - 1}"
        assert (work / "events.vlog").stat().st_size == fx.bounds[n], f"{what}: log not cut at the frame end"
        if caught:
            assert store.recovered_dropped_bytes == len(log) - fx.bounds[n], what
            handled = "torn"
        elif boundary_cut:
            assert n == fx.bounds.index(len(log)), what
            handled = "boundary"
        else:
            # silent success: only for damage in the log prefix covered by the image
            assert with_images, f"{what}: damaged log opened without any warning"
            diff = next(i for i in range(len(log)) if log[i] != fx.log[i])
            assert 16 <= diff < fx.image_end, f"{what}: damaged log opened without any warning"
            assert n == len(fx.hashes) and h == fx.final_hash, what
            assert not rep.ok, f"{what}: verify missed damage under the image"
            handled = "under-image"
        # the recovered store is consistent with a replay of what is now on disk
        assert ValoriStore.from_bytes(store.to_bytes()).state_hash() == h
        live = store.verify()
        assert live.ok or handled == "under-image", f"{what}: {live}"
    finally:
        store.close()
    # a second open sees a clean log: no warning, same state
    kind, again, caught = open_recorded(work)
    assert kind == "ok" and not caught, f"{what}: second open: {again} {[str(w.message) for w in caught]}"
    try:
        assert again.state_hash() == h and again.log_length == n
    finally:
        again.close()
    return handled


def header_offsets(fx: Fixture) -> list[int]:
    """The file header, every frame's 20-byte head + CRC, and every chain hash + trailing length."""
    offs = set(range(16))
    for start, end in zip(fx.bounds[:-1], fx.bounds[1:]):
        offs.update(range(start, start + 20))
        offs.update(range(end - 36, end))
    return sorted(offs)


@pytest.mark.parametrize("with_images", [False, True], ids=["replay", "image"])
def test_log_bit_flips_follow_the_recovery_rule(durable: Fixture, tmp_path: Path, with_images: bool) -> None:
    rng = random.Random(SEED + with_images)
    log = durable.log
    offsets = sorted(set(header_offsets(durable)) | set(rng.sample(range(len(log)), min(300, len(log)))))
    seen: dict[str, int] = {}
    last_frame = durable.bounds[-2]
    for off in offsets:
        bit = rng.randrange(8)
        handled = check_damaged_log(durable, tmp_path / "w", flip(log, off, bit), with_images, f"flip {off}.{bit}")
        seen[handled] = seen.get(handled, 0) + 1
        # any flip outside the last frame's checksummed body must be fatal, unless under the image
        if off < last_frame and not (with_images and 16 <= off < durable.image_end):
            assert handled == "corrupt", f"flip {off}.{bit} in an earlier frame was not fatal"
        if off >= last_frame + 20:  # payload / chain / length of the final frame: a torn tail
            assert handled == "torn", f"flip {off}.{bit} in the final frame body: {handled}"
    assert seen.get("corrupt") and seen.get("torn"), seen


@pytest.mark.parametrize("with_images", [False, True], ids=["replay", "image"])
def test_log_truncations_follow_the_recovery_rule(durable: Fixture, tmp_path: Path, with_images: bool) -> None:
    log = durable.log
    if with_images:
        rng = random.Random(SEED)
        lengths = set(rng.sample(range(len(log)), 120))
        for b in durable.bounds:
            lengths.update({b - 1, b, b + 1})
        lengths = {n for n in lengths if 0 <= n < len(log)}
    else:  # every length through the create frame and the first upsert, then a sample
        rng = random.Random(SEED + 1)
        lengths = set(range(durable.bounds[2] + 1)) | set(rng.sample(range(len(log)), 150))
        for b in durable.bounds:
            lengths.update(n for n in (b - 21, b - 20, b - 19, b - 1, b, b + 1, b + 19, b + 20, b + 21) if 0 <= n < len(log))
    seen: dict[str, int] = {}
    for n in sorted(lengths):
        handled = check_damaged_log(durable, tmp_path / "w", log[:n], with_images, f"truncate {n}")
        seen[handled] = seen.get(handled, 0) + 1
        create_end = durable.bounds[1]
        if n < create_end:
            assert handled == "corrupt", f"truncate {n}: a log without its create event opened"
        elif n in durable.bounds:
            assert handled == "boundary"
        else:
            assert handled == "torn", f"truncate {n}: {handled}"
    assert seen.get("torn") and seen.get("boundary") and seen.get("corrupt"), seen


def test_zero_filled_and_garbage_tails(durable: Fixture, tmp_path: Path) -> None:
    work = tmp_path / "w"
    # a zero-filled tail (e.g. preallocated blocks after a crash) is torn: cut off
    assert check_damaged_log(durable, work, durable.log + bytes(100), True, "zeros") == "torn"
    assert check_damaged_log(durable, work, durable.log + bytes(7), False, "7 zeros") == "torn"
    # fewer than 20 bytes cannot hold a frame header: torn whatever they are
    assert check_damaged_log(durable, work, durable.log + b"\xff" * 19, False, "19 junk") == "torn"
    # a full-size junk header after the last frame fails its CRC and is not zero: corruption
    assert check_damaged_log(durable, work, durable.log + b"\xff" * 64, False, "64 junk") == "corrupt"
    # a whole valid-looking frame appended from elsewhere breaks the chain / sequence
    last = durable.log[durable.bounds[-2]:]
    assert check_damaged_log(durable, work, durable.log + last, False, "dup frame") == "torn"
    assert check_damaged_log(durable, work, durable.log + last + last, False, "dup frames") == "corrupt"


def test_swapped_frames_are_corruption(durable: Fixture, tmp_path: Path) -> None:
    b = durable.bounds
    f1, f2 = durable.log[b[1]:b[2]], durable.log[b[2]:b[3]]
    log = durable.log[: b[1]] + f2 + f1 + durable.log[b[3]:]
    assert check_damaged_log(durable, tmp_path / "w", log, False, "swap") == "corrupt"


def _damage_cases(rng: random.Random, data: bytes, prefix: str) -> list[tuple[str, bytes]]:
    n = len(data)
    offsets = sorted(set(range(0, 64, 3)) | set(range(max(0, n - 40), n, 4)) | set(rng.sample(range(n), min(40, n))))
    cases = [(f"{prefix} flip {o}", flip(data, o, rng.randrange(8))) for o in offsets]
    cases += [(f"{prefix} truncate {k}", data[:k]) for k in sorted(set(rng.sample(range(n), min(15, n))) | {0, 8, 16})]
    cases.append((f"{prefix} extended", data + b"\x00"))
    return cases


def test_image_damage_is_skipped_and_the_log_gives_the_state(durable: Fixture, tmp_path: Path) -> None:
    """Damage to the image's manifest or to one of its pages: the image is skipped (with a
    warning) and the log gives the state."""
    ((name, img),) = durable.images.items()
    rng = random.Random(SEED)
    page_name, page = max(durable.pages.items(), key=lambda kv: len(kv[1]))
    cases = [(what, {name: data}, None) for what, data in _damage_cases(rng, img, "manifest")]
    cases += [(what, None, {**durable.pages, page_name: data}) for what, data in _damage_cases(rng, page, "page")]
    cases.append(("page missing", None, {k: v for k, v in durable.pages.items() if k != page_name}))
    work = tmp_path / "w"
    for what, imgs, pgs in cases:
        prepare(durable, work, durable.log, True, imgs, pgs)
        rep_kind, rep = outcome(lambda: verify(work))
        assert rep_kind == "ok", f"{what}: verify raised {rep}"
        assert (not rep.ok) or rep.warnings, f"{what}: verify did not notice the bad image"
        kind, store, caught = open_recorded(work)
        assert kind == "ok", f"{what}: a bad image made open fail: {store}"
        try:
            assert caught, f"{what}: the bad image was skipped silently"
            assert all(issubclass(w.category, UserWarning) for w in caught)
            assert store.state_hash() == durable.final_hash, what
            assert store.log_length == len(durable.hashes)
            assert [c.label for c in store.history()] == ["c1"]
            # restoring to the checkpoint whose image is bad rebuilds it from the log
            store.restore("c1")
            assert store.state_hash() == durable.hashes[4]
        finally:
            store.close()


def test_image_from_another_store_or_position_is_not_trusted(durable: Fixture, tmp_path: Path) -> None:
    """An image claiming a log position beyond the end of the log is ignored."""
    from valori_store.format import images

    ((name, img),) = durable.images.items()
    dec = images.decode_manifest(img, "img")
    bogus = images.encode_manifest(images.Manifest(dec.seq, len(durable.log) + 1000, dec.chain, dec.root, 2,
                                                   dec.metric_code, dec.dim, dec.count, dec.pages))
    work = tmp_path / "w"
    prepare(durable, work, durable.log, True, {name: bogus})
    kind, store, caught = open_recorded(work)
    assert kind == "ok" and not caught
    try:
        assert store.state_hash() == durable.final_hash
    finally:
        store.close()


@pytest.mark.parametrize("new_ids", [["bb"], ["longer-id-0", "longer-id-1", "longer-id-2"]],
                         ids=["same-size-frame", "other-frames"])
def test_stale_image_after_a_torn_checkpoint_never_loses_acknowledged_writes(tmp_path: Path, new_ids: list[str]) -> None:
    """A checkpoint frame is torn but its image survived (e.g. durability="none" and a power cut).

    same-size-frame: the next upsert's frame ends exactly at the stale image's log_end, so the
    next open takes the stale image and silently drops the acknowledged upsert.
    other-frames: the log is valid, but the next open scans from the stale image's log_end,
    lands mid-frame and raises CorruptFileError: a healthy store can no longer be opened.
    """
    root = tmp_path / "s"
    with ValoriStore.open(root, dim=4, metric="dot") as s:
        s.upsert([[1, 2, 3, 4]], ids=["a"])
        s.checkpoint()  # 92-byte frame
        s.write_image()  # image 000000000002.vimg records log_end = end of this frame
    log = root / "events.vlog"
    log.write_bytes(log.read_bytes()[:-1])  # the checkpoint frame is torn (the image survived)
    with pytest.warns(TornTailWarning):
        s = ValoriStore.open(root)
    with s:
        assert s.ids() == ["a"] and s.history() == []
        for rid in new_ids:  # "bb" gives a 92-byte frame: the log ends where the image says
            s.upsert([[5, 6, 7, 8]], ids=[rid])
        acknowledged = s.state_hash()
    assert verify(root).state_hash == acknowledged  # the log itself is fine
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        s = ValoriStore.open(root)
    with s:
        assert s.ids() == sorted(["a", *new_ids]), "acknowledged upserts were lost"
        assert s.state_hash() == acknowledged


def test_open_under_the_newest_image_reads_only_history_events(durable: Fixture, tmp_path: Path) -> None:
    """Under the image, open reads frame headers and the checkpoint/note events (each checked
    against the chain hashes around it), not record payloads: damage there opens to the
    image's (correct) state and only verify reports it; damage in a checkpoint raises."""
    work = tmp_path / "w"
    off = durable.bounds[2] + 25  # inside the payload of event 2 (an upsert), before the image's position
    prepare(durable, work, flip(durable.log, off, 3), True)
    assert not verify(work).ok
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with ValoriStore.open(work) as s:
            assert s.state_hash() == durable.final_hash and s.log_length == len(durable.hashes)
    assert not verify(work).ok  # still reported: open changed nothing
    off = durable.bounds[4] + 22  # inside the payload of event 4, the checkpoint under the image
    prepare(durable, work, flip(durable.log, off, 1), True)
    assert not verify(work).ok
    with pytest.raises(CorruptFileError, match="frame 4"):
        ValoriStore.open(work).close()


def test_verify_never_raises_on_damaged_directories(durable: Fixture, tmp_path: Path) -> None:
    """Damage to several files at once, including ones recovery does not read."""
    rng = random.Random(SEED + 7)
    work = tmp_path / "w"
    ((name, img),) = durable.images.items()
    for trial in range(60):
        log = durable.log
        for _ in range(rng.randint(1, 3)):
            log = flip(log, rng.randrange(len(log)), rng.randrange(8))
        if trial % 3 == 0:
            log = log[: rng.randrange(len(log))]
        imgs = {name: flip(img, rng.randrange(len(img)), rng.randrange(8))} if trial % 2 else durable.images
        if trial % 5 == 0:
            imgs = {name: b"", "000000000099.vimg": b"VALORIIM" + bytes(60)}
        prepare(durable, work, log, True, imgs)
        kind, rep = outcome(lambda: verify(work))
        assert kind == "ok", rep
        assert (not rep.ok) or rep.warnings or log == durable.log[: len(log)], str(rep)
        str(rep)  # rendering the report never fails either
        kind, store, caught = open_recorded(work)
        if kind == "ok":
            store.close()


def test_empty_and_junk_log_files(tmp_path: Path) -> None:
    root = tmp_path / "s"
    ValoriStore.open(root, dim=2).close()
    for data in (b"", b"VALORILG", b"VALORILG\x01\x00" + bytes(6), b"VALORILG\x02\x00" + bytes(6) + b"x" * 60,
                 b"\x00" * 200, np.arange(100, dtype=np.int64).tobytes()):
        (root / "events.vlog").write_bytes(data)
        kind, value, caught = open_recorded(root)
        assert kind == "corrupt", (data[:20], value)
        rep = verify(root)
        assert not rep.ok


def test_failed_open_closes_the_log_file(durable: Fixture, tmp_path: Path) -> None:
    import gc

    work = tmp_path / "w"
    prepare(durable, work, flip(durable.log, durable.bounds[2] + 25, 0), False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CorruptFileError):
            ValoriStore.open(work)
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


def test_image_under_another_checkpoint_name_fails_verify(tmp_path: Path) -> None:
    from valori_store import ValoriStore, verify

    s = ValoriStore.open(tmp_path / "db", dim=2, durability="none")
    s.upsert([[1, 0]], ids=["a"])
    first = s.checkpoint("one")
    s.write_image()
    s.upsert([[0, 1]], ids=["b"])
    second = s.checkpoint("two")
    s.write_image()
    s.close()
    images = tmp_path / "db" / "images"
    name = lambda seq: f"{seq:012d}.vimg"  # noqa: E731
    (images / name(second.seq)).write_bytes((images / name(first.seq)).read_bytes())
    report = verify(tmp_path / "db")
    assert not report.ok and any("under another name" in p for p in report.problems)


def test_verify_fails_a_complete_but_damaged_final_frame_and_warns_on_a_short_one(tmp_path: Path) -> None:
    from valori_store import ValoriStore, verify

    s = ValoriStore.open(tmp_path / "db", dim=2, durability="none")
    s.upsert([[1, 0]], ids=["a"])
    s.upsert([[0, 1]], ids=["b"])
    s.close()
    log = tmp_path / "db" / "events.vlog"
    good = log.read_bytes()
    flipped = bytearray(good)
    flipped[-40] ^= 0x01  # inside the last frame's payload: full length, bad chain/CRC
    log.write_bytes(bytes(flipped))
    report = verify(tmp_path / "db")
    assert not report.ok and any("complete but fails its checks" in p for p in report.problems)
    log.write_bytes(good[:-10])  # a frame cut short: a torn write, a warning only
    report = verify(tmp_path / "db")
    assert report.ok and report.torn_bytes and any("torn final record" in w for w in report.warnings)
