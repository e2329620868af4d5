"""Offline verification: replay a log from empty and check every checksum and hash."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from valori_store.errors import CorruptFileError, NotFoundError
from valori_store.format import images, snapshot
from valori_store.format.frames import DAMAGED_FINAL, Frame
from valori_store.state import machine
from valori_store.state.table import RecordTable, content_digest
from valori_store.storage import layout, page_store
from valori_store.storage.state_at import base_loader

__all__ = ["VerifyReport", "check_images", "fill_report", "verify", "verify_directory", "verify_log_bytes"]


@dataclass
class VerifyReport:
    """What verification found. ``ok`` is False when any check failed."""

    path: str
    kind: str  # "directory", "log" or "snapshot"
    ok: bool = True
    events: int = 0
    event_counts: dict[str, int] = field(default_factory=dict)
    checkpoints: int = 0
    checked_digests: int = 0
    images_checked: int = 0
    records: int = 0
    state_hash: str | None = None
    torn_bytes: int = 0
    #: Seq of a compacted log's base event (0: the log starts with create).
    compacted_at: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{self.path}: {'OK' if self.ok else 'FAILED'} ({self.kind})"]
        if self.kind != "snapshot":
            counts = ", ".join(f"{k} {v}" for k, v in sorted(self.event_counts.items()))
            if self.compacted_at:
                lines.append(f"  compacted at event {self.compacted_at} (replayed from its base image)")
            lines.append(f"  events replayed: {self.events - self.compacted_at} ({counts})")
            lines.append(f"  checkpoint/restore digests re-checked: {self.checked_digests}")
        if self.kind == "directory":
            lines.append(f"  checkpoint images verified: {self.images_checked}")
        lines.append(f"  records: {self.records}")
        lines.append(f"  state hash: {self.state_hash}")
        lines += [f"  warning: {w}" for w in self.warnings]
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


def verify_log_bytes(data: bytes, what: str, live_digest: bytes | None = None, root: Path | None = None
                     ) -> VerifyReport:
    """Replay log bytes from empty (a compacted log from its base image in directory
    ``root``) with every digest checked."""
    report, _ = _replay_checked(data, what, root)
    if report.ok and live_digest is not None and report.state_hash != live_digest.hex():
        report.ok = False
        report.problems.append("the replayed state differs from the live store's state")
    return report


def _replay_checked(data: bytes, what: str, root: Path | None = None
                    ) -> tuple[VerifyReport, machine.ReplayResult | None]:
    """The report of one full replay, and the replay itself (None if it failed)."""
    report = VerifyReport(what, "log")
    try:
        result = machine.replay(data, what, check_digests=True, base=base_loader(root))
    except CorruptFileError as exc:
        report.ok = False
        report.problems.append(str(exc))
        return report, None
    fill_report(report, result)
    return report, result


def fill_report(report: VerifyReport, result: machine.ReplayResult) -> None:
    report.events = result.events
    report.compacted_at = result.base_seq
    report.event_counts = dict(result.counts)
    report.checkpoints = len(result.checkpoints)
    report.checked_digests = result.checked_digests
    report.records = result.table.n
    report.state_hash = result.table.state_hash()
    scan = result.scan
    if scan is not None and scan.torn_bytes and (scan.torn_reason or "").startswith(DAMAGED_FINAL):
        # A complete final frame that fails its checks: a crash can leave one too, but it
        # may equally be an edit; an audit must not call it OK. Opening the store cuts it.
        report.torn_bytes = scan.torn_bytes
        report.ok = False
        report.problems.append(
            f"the final record ({scan.torn_bytes} bytes at offset {scan.good_end}) is complete but fails its "
            f"checks: {scan.torn_reason}; its write is lost (opening the store cuts it off)"
        )
    elif scan is not None and scan.torn_bytes:
        report.torn_bytes = scan.torn_bytes
        report.warnings.append(
            f"torn final record: {scan.torn_bytes} bytes at offset {scan.good_end} ({scan.torn_reason}); "
            f"opening the store cuts them off"
        )


def verify(path: str | os.PathLike[str]) -> VerifyReport:
    """Verify a store directory (log replay, chain, digests, images) or a snapshot file.

    Never raises for a damaged store: problems are listed in the report.
    """
    p = Path(path)
    if p.is_dir():
        return verify_directory(p)[0]
    if not p.exists():
        raise NotFoundError(f"nothing to verify at {p}")
    report = VerifyReport(str(p), "snapshot")
    try:
        table = RecordTable.from_content(snapshot.decode(p.read_bytes(), str(p)))
    except CorruptFileError as exc:
        report.ok = False
        report.problems.append(str(exc))
        return report
    report.records = table.n
    report.state_hash = table.state_hash()
    return report


def verify_directory(root: Path, on_event: Callable[[Frame], None] | None = None
                     ) -> tuple[VerifyReport, machine.ReplayResult | None]:
    """Verify a store directory: one replay of its log from empty or, compacted, from its
    base image (every frame, every recorded digest, every base page), then every image
    against the replayed state at its position. ``on_event(frame)`` is called after each
    replayed event (progress)."""
    log_path = layout.log_path(root)
    if not log_path.exists():
        raise NotFoundError(f"no valori store at {root} (no {log_path.name})")
    data = log_path.read_bytes()
    report = VerifyReport(str(root), layout.DIRECTORY)
    wanted = {m.seq for m in page_store.manifests(root)}
    roots: dict[int, str] = {}
    result = None
    last_seq = -1
    try:
        for frame, _, result in machine.walk(data, str(log_path), check_digests=True, base=base_loader(root)):
            if on_event is not None:
                on_event(frame)
            last_seq = frame.seq
            if frame.seq in wanted:
                roots[frame.seq] = result.table.state_hash()
    except CorruptFileError as exc:
        report.ok = False
        report.problems.append(str(exc))
        return report, None
    assert result is not None
    fill_report(report, result)
    check_images(root, report, {cp.seq: cp.state_hash for cp in result.checkpoints}, roots, result.metric,
                 result.base_seq, last_seq)
    return report, result


def check_images(root: Path, report: VerifyReport, digests: dict[int, str], roots: dict[int, str] | None = None,
                 metric: str = "cosine", base_seq: int = 0, last_seq: int | None = None) -> None:
    """Every image must decode and match the log: a version-1 image the checkpoint digest
    recorded at its seq; a version-2 image (every page checked) the replayed state there.

    A live store keeps writing while this runs: images of events after ``last_seq`` (the
    end of the log that was replayed) are skipped and counted in a note, and images removed
    by retention while being read are skipped."""
    later = 0
    for path in layout.image_files(root):
        try:
            data = path.read_bytes()
            seq = images.seq_of(data)
            if last_seq is not None and seq is not None and seq > last_seq:
                later += 1
                continue
            if images.version_of(data) == 2:
                if roots is not None and last_seq is not None and seq not in roots and seq is not None \
                        and seq >= base_seq:
                    later += 1  # written after the replay's list of images was taken
                    continue
                _check_manifest(root, path, data, report, roots or {}, metric, base_seq)
                continue
            img = images.decode(data, str(path))
        except FileNotFoundError:
            continue  # pruned by the writer since it was listed
        except CorruptFileError as exc:
            if not path.exists():
                continue  # pruned while its pages were read
            report.warnings.append(f"{exc} (recovery skips it; restore replays the log instead)")
            continue
        if path.name != layout.image_path(root, img.seq).name:
            report.ok = False
            report.problems.append(f"{path.name}: holds the image of checkpoint {img.seq} under another name")
            continue
        expected = digests.get(img.seq)
        actual = content_digest(img.content).hex()
        if expected != actual:
            report.ok = False
            report.problems.append(f"{path.name}: its state does not match checkpoint {img.seq} in the log")
        report.images_checked += 1
    if later:
        report.warnings.append(f"{later} image(s) written while this ran (the log was read up to event "
                               f"{last_seq}); not checked")


def _check_manifest(root: Path, path: Path, data: bytes, report: VerifyReport, roots: dict[int, str],
                    metric: str, base_seq: int = 0) -> None:
    manifest = images.decode_manifest(data, str(path))
    if manifest.seq < base_seq:
        report.warnings.append(f"{path.name}: an image of event {manifest.seq}, before the log's compaction point "
                               f"{base_seq} (left by an interrupted compaction; the next image write removes it)")
        return
    if path.name != layout.image_path(root, manifest.seq).name:
        report.ok = False
        report.problems.append(f"{path.name}: holds the image of event {manifest.seq} under another name")
        return
    try:
        table = page_store.load_image(root, manifest, metric)
    except CorruptFileError as exc:
        report.warnings.append(f"{exc} (recovery skips this image and replays more of the log)")
        return
    if roots.get(manifest.seq) != table.state_hash():
        report.ok = False
        report.problems.append(f"{path.name}: its state does not match the log's state after event {manifest.seq}")
    report.images_checked += 1
