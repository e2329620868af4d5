"""Version-2 images of a store directory: a manifest in ``images/`` over pages in ``pages/``.

Pages are content-addressed by their state-trie node digest (:mod:`valori_store.format.pages`),
so an image writes only the pages no earlier image holds, and N images of a slowly changing
state cost about one copy. Loading an image recomputes every record's key and leaf from the
page bytes and every page's node digest, and the root from those: a damaged or foreign page
is never accepted. Retention (:func:`prune`) keeps the newest image and older ones while all
kept pages together stay within ``RETAIN_FACTOR`` times the newest image's pages (plus a
small fixed slack).

Crash safety: pages are written (and fsynced) before the manifest that names them; the
manifest is written atomically; pages that no manifest names (left by a crash or pruned
images) are removed by :func:`prune`, and temp files of interrupted writes by
:func:`remove_stale_temp_files` (on open, and by :func:`prune`).
"""

from __future__ import annotations

import operator
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from valori_store.errors import CorruptFileError
from valori_store.format import images, pages
from valori_store.format.records_block import PackedRecords, pack, unpack
from valori_store.kernels.convert import rows_maxabs_serial
from valori_store.state import merkle
from valori_store.state.table import RecordTable
from valori_store.storage.atomic import fsync_dir, remove_temp_files, write_atomic
from valori_store.storage.layout import (
    IMAGE_SUFFIX,
    LOG_NAME,
    PAGE_SUFFIX,
    image_files,
    image_path,
    images_dir,
    page_path,
    pages_dir,
)

#: Older images are kept while all kept pages total at most this times the newest image's
#: (plus RETAIN_SLACK bytes, so small stores keep a few images).
RETAIN_FACTOR = 1.5
RETAIN_SLACK = 1 << 20

#: Threads that read and check image pages while an image loads, and how many pages they
#: may run ahead of the decoding (bounds the memory of pages read but not yet decoded).
LOAD_WORKERS = 2
LOAD_AHEAD = 4


def _gather(values: list, rows: list[int]) -> list:  # type: ignore[type-arg]
    """``[values[r] for r in rows]`` at C speed."""
    if not rows:
        return []
    got = operator.itemgetter(*rows)(values)
    return list(got) if len(rows) > 1 else [got]


def _page_of(table: RecordTable, depth: int, prefix: bytes, rows: np.ndarray) -> pages.Page:
    tree = table.tree
    assert tree is not None
    pick = rows.tolist()
    packed = pack(_gather(table.ids, pick), _gather(table.texts, pick), _gather(table.metas, pick))
    return pages.Page(2, table.metric.code, depth, prefix, table.dim, tree.keys[rows], table.plain_flags[rows],
                      table.matrix[rows], packed.offsets, packed.data)


def write_image(root: Path, table: RecordTable, seq: int, log_end: int, chain: bytes) -> images.Manifest:
    """Write the image of ``table`` (the state right after event ``seq``); returns its manifest."""
    plan = table.tree.pages(table.n) if table.tree is not None else None
    if plan is None:
        raise ValueError("version-2 images need a spec-2 table")
    folder = pages_dir(root)
    folder.mkdir(exist_ok=True)
    wrote = False
    refs = []
    for depth, prefix, rows, digest in plan:
        path = page_path(root, digest)
        if not path.exists():
            write_atomic(path, pages.encode(_page_of(table, depth, prefix, rows)), sync_dir=False)
            wrote = True
        refs.append(images.PageRef(depth, prefix.ljust(32, b"\x00"), len(rows), digest))
    if wrote:
        fsync_dir(folder)
    manifest = images.Manifest(seq, log_end, chain, table.state_digest(), 2, table.metric.code, table.dim, table.n,
                               refs)
    write_atomic(image_path(root, seq), images.encode_manifest(manifest))
    return manifest


def _read_into(path: Path, ref: images.PageRef, dim: int, metric_code: int, rows_out: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bytes]:
    """Read a page, its vectors straight into ``rows_out`` ((count, dim) int32): (keys,
    flags, offsets, records), every length and header field checked against ``ref``."""
    what = str(path)
    n = ref.count
    try:
        with open(path, "rb") as fh:
            head = fh.read(pages.HEADER_SIZE)
            if len(head) < pages.HEADER_SIZE:
                raise CorruptFileError(f"{what}: too short for a page")
            magic, version, spec, metric, depth, zero1, pdim, count, prefix, zero2 = pages.HEADER.unpack(head)
            if (magic, version, spec, any(zero1), any(zero2)) != (pages.MAGIC, pages.VERSION, 2, False, False) or (
                    (pdim, metric, depth, count) != (dim, metric_code, ref.depth, n)) or (
                    prefix != ref.prefix.ljust(32, b"\x00")):
                raise CorruptFileError(f"{what}: the page does not fit its image (shape, depth, count or prefix)")
            keys = np.frombuffer(_exact(fh, 32 * n, what), np.uint8).reshape(n, 32)
            pad = -n % 4
            flag_bytes = _exact(fh, n + pad, what)
            if any(flag_bytes[n:]):
                raise CorruptFileError(f"{what}: non-zero padding after the flags")
            flags = np.frombuffer(flag_bytes[:n], np.uint8)
            view = memoryview(rows_out).cast("B")
            if fh.readinto(view) != len(view):
                raise CorruptFileError(f"{what}: truncated page")
            offsets = np.frombuffer(_exact(fh, 8 * (n + 1), what), "<u8").astype(np.int64)
            records = fh.read()
    except OSError as exc:
        raise CorruptFileError(f"{what}: cannot read a page of an image ({exc.strerror})") from None
    if offsets[0] != 0 or offsets[-1] != len(records) or (n and (np.diff(offsets) < 12).any()):
        raise CorruptFileError(f"{what}: record offsets do not fit the records section")
    if ((flags != 0) & (flags != 1)).any():
        raise CorruptFileError(f"{what}: unknown record flags")
    return keys, flags, offsets, records


def _exact(fh: Any, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise CorruptFileError(f"{what}: truncated page")
    return data


def _checked(path: Path, ref: images.PageRef, rows: np.ndarray, keys: np.ndarray, flags: np.ndarray,
             offsets: np.ndarray, records: bytes, serial: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Keys and leaves recomputed from the page's records and rows, checked: the keys equal
    the stored ones (so they are strictly ascending) and the node digest equals the page's.
    ``serial``: hash on the calling thread only."""
    what = str(path)
    n = ref.count
    row_bytes = rows.view(np.uint8).reshape(n, -1)
    got_keys, leaves = merkle.record_digests(PackedRecords(records, offsets), row_bytes, flags, serial)
    if not np.array_equal(got_keys, keys):
        raise CorruptFileError(f"{what}: a key does not match its record")
    if n > 1:
        packed = keys.view("S32").ravel()
        if not (packed[1:] > packed[:-1]).all():
            raise CorruptFileError(f"{what}: keys are not strictly ascending")
    if n and (rows[flags.astype(bool)] != 0).any():
        raise CorruptFileError(f"{what}: a record without a vector has a non-zero row")
    digest = merkle.node_digests(got_keys, leaves, np.array([0, n]), np.array([ref.depth]))[0].tobytes()
    if digest != ref.digest:
        raise CorruptFileError(f"{what}: its records do not give the page's digest")
    return got_keys, leaves


def read_page(root: Path, ref: images.PageRef, dim: int, metric_code: int) -> tuple[pages.Page, np.ndarray, np.ndarray]:
    """A page, checked (see :func:`_checked`): (page, keys, leaves)."""
    path = page_path(root, ref.digest)
    rows = np.empty((ref.count, dim), dtype=np.int32)
    keys, flags, offsets, records = _read_into(path, ref, dim, metric_code, rows)
    keys, leaves = _checked(path, ref, rows, keys, flags, offsets, records)
    return pages.Page(2, metric_code, ref.depth, ref.prefix, dim, keys, flags, rows, offsets, records), keys, leaves


def load_image(root: Path, manifest: images.Manifest, metric: str) -> RecordTable:
    """The table an image holds, every page checked, its root compared with the manifest's.

    Pages are read straight into the table's matrix and checked by ``LOAD_WORKERS`` threads
    (file reads and hashing hold no GIL; each page is hashed on one thread), up to
    ``LOAD_AHEAD`` pages ahead of the calling thread, which decodes the strings of each page
    in key order and appends them; the state tree takes the checked page digests as they are.
    Which thread checks which page changes nothing but timing: the table is built in page
    order.
    """
    table = RecordTable(manifest.dim, metric, 2)
    table.reserve(manifest.count)
    if not _pages_partition(manifest):
        raise CorruptFileError(f"{image_path(root, manifest.seq)}: its pages do not partition the key space")
    starts = np.zeros(len(manifest.pages) + 1, dtype=np.int64)
    np.cumsum([p.count for p in manifest.pages], out=starts[1:])

    def fetch(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, bytes]:
        ref = manifest.pages[i]
        path = page_path(root, ref.digest)
        rows = table.matrix[starts[i] : starts[i + 1]]
        keys, flags, offsets, records = _read_into(path, ref, manifest.dim, manifest.metric_code, rows)
        keys, leaves = _checked(path, ref, rows, keys, flags, offsets, records, serial=True)
        return keys, leaves, flags, offsets, rows_maxabs_serial(rows), records

    count = len(manifest.pages)
    with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
        pending = deque(pool.submit(fetch, i) for i in range(min(LOAD_AHEAD, count)))
        try:
            for i, ref in enumerate(manifest.pages):
                keys, leaves, flags, offsets, rowmax, records = pending.popleft().result()
                if i + LOAD_AHEAD < count:
                    pending.append(pool.submit(fetch, i + LOAD_AHEAD))
                ids, texts, metas = unpack(records, offsets, str(page_path(root, ref.digest)))
                table.load_rows(ids, None, texts, metas, flags, keys, leaves, rowmax)
        finally:
            for future in pending:
                future.cancel()
    assert table.tree is not None
    table.tree.set_subtrees(*subtree_digests(manifest.pages))
    if table.state_digest() != manifest.root:
        raise CorruptFileError(f"{image_path(root, manifest.seq)}: its pages do not give the image's state root")
    return table


def _key_range(ref: images.PageRef) -> tuple[bytes, bytes]:
    """The smallest and largest 32-byte key under a page's trie node."""
    lo = bytearray(ref.prefix[: (ref.depth + 1) // 2])
    hi = bytearray(lo)
    if ref.depth % 2:
        lo[-1] &= 0xF0
        hi[-1] = lo[-1] | 0x0F
    return bytes(lo).ljust(32, b"\x00"), bytes(hi).ljust(32, b"\xff")


def _pages_partition(manifest: images.Manifest) -> bool:
    """The pages are trie nodes of depth >= 2 in ascending key order, none overlapping another."""
    previous_hi = None
    for ref in manifest.pages:
        if not 2 <= ref.depth <= 64 or ref.prefix != ref.prefix[: (ref.depth + 1) // 2].ljust(32, b"\x00"):
            return False
        lo, hi = _key_range(ref)
        if ref.depth % 2 and ref.prefix[ref.depth // 2] & 0x0F:
            return False
        if previous_hi is not None and lo <= previous_hi:
            return False
        previous_hi = hi
    return True


def subtree_digests(refs: list[images.PageRef]) -> tuple[np.ndarray, np.ndarray]:
    """Digests and counts of the 256 fixed subtrees, combined from page digests (pages are
    trie nodes of depth >= 2; empty nodes are empty buckets)."""
    from valori_store.spec import state_tree

    by_node = {(p.depth, p.prefix[: (p.depth + 1) // 2]): p for p in refs}
    empty = state_tree.bucket_digest([])

    def node(prefix: bytes, depth: int) -> tuple[bytes, int]:
        ref = by_node.get((depth, prefix))
        if ref is not None:
            return ref.digest, ref.count
        if not any(p.depth > depth and p.prefix.startswith(prefix[: depth // 2]) and (
                depth % 2 == 0 or (p.prefix[depth // 2] & 0xF0) == prefix[depth // 2]) for p in refs):
            return empty, 0
        children, total = [], 0
        for c in range(16):
            if depth % 2 == 0:
                child = prefix + bytes([c << 4])
            else:
                child = prefix[:-1] + bytes([prefix[-1] | c])
            d, n = node(child, depth + 1)
            children.append(d)
            total += n
        if total <= state_tree.BUCKET_MAX:
            raise CorruptFileError("image: pages split a node that holds too few records to be split")
        return state_tree.split_digest(total, children), total

    digests = np.zeros((256, 32), dtype=np.uint8)
    counts = np.zeros(256, dtype=np.int64)
    for s in range(256):
        d, n = node(bytes([s]), 2)
        digests[s] = np.frombuffer(d, dtype=np.uint8)
        counts[s] = n
    return digests, counts


def find_record(root: Path, manifest: images.Manifest, key: bytes, dim: int) -> tuple[bytes, np.ndarray | None] | None:
    """(packed entry, stored row or None) of the record with ``key`` in an image, or None if
    absent. Unchecked: callers compare the result with a recorded state root."""
    k = np.frombuffer(key, dtype=np.uint8)
    ref = next((p for p in manifest.pages if merkle.key_prefix(k, p.depth) == p.prefix[: (p.depth + 1) // 2]), None)
    if ref is None:
        return None
    page = pages.decode(page_path(root, ref.digest).read_bytes(), str(page_path(root, ref.digest)))
    at = int(np.searchsorted(page.keys.view("S32").ravel(), np.frombuffer(key, "S32")[0]))
    if at >= page.count or page.keys[at].tobytes() != key:
        return None
    entry = page.records[page.offsets[at] : page.offsets[at + 1]]
    return entry, (None if page.flags[at] else np.array(page.rows[at]))


def manifests(root: Path, damaged: list[str] | None = None) -> list[images.Manifest]:
    """Every readable version-2 manifest of a directory, oldest first. Unreadable image
    files are skipped; their problems are appended to ``damaged`` when given (version-1
    images are not damaged: they are another kind)."""
    out = []
    for path in image_files(root):
        try:
            data = path.read_bytes()
            version = images.version_of(data)
            if version == 2:
                out.append(images.decode_manifest(data, str(path)))
            elif version != 1:
                raise CorruptFileError(f"{path}: unknown image version {version}")
        except CorruptFileError as exc:
            if damaged is not None:
                damaged.append(f"{path}: {exc}" if str(path) not in str(exc) else str(exc))
        except OSError as exc:
            if damaged is not None:
                damaged.append(f"{path}: cannot read ({exc.strerror})")
    return out


def remove_stale_temp_files(root: Path) -> int:
    """Delete the temp files of atomic writes a killed writer left in a store directory
    (pages and manifests of images, the log of a store being created): names
    ``.<file>.tmp-<pid>-<thread>-<n>`` only. The caller holds the directory's lock, so no
    such write is in progress. Returns how many were removed."""
    return (remove_temp_files(root, LOG_NAME) + remove_temp_files(images_dir(root), IMAGE_SUFFIX)
            + remove_temp_files(pages_dir(root), PAGE_SUFFIX))


def prune(root: Path, base_seq: int = 0) -> None:
    """Apply retention: keep the newest image and older ones while all kept pages stay within
    RETAIN_FACTOR times the newest image's pages; delete other manifests and unnamed pages.

    For a compacted log (``base_seq`` > 0) the base image (the manifest at ``base_seq``) is
    always kept, beyond the budget, and manifests before it (which no longer match the
    log) are deleted.
    """
    remove_temp_files(images_dir(root), IMAGE_SUFFIX)
    every = manifests(root)
    for m in every:
        if m.seq < base_seq:
            image_path(root, m.seq).unlink(missing_ok=True)
    found = [m for m in every if m.seq >= base_seq]
    if not found:
        return
    sizes: dict[bytes, int] = {}

    def size(digest: bytes) -> int:
        if digest not in sizes:
            try:
                sizes[digest] = page_path(root, digest).stat().st_size
            except OSError:
                sizes[digest] = 0
        return sizes[digest]

    newest = found[-1]
    budget = RETAIN_FACTOR * sum(size(p.digest) for p in newest.pages) + RETAIN_SLACK
    kept_pages = {p.digest for p in newest.pages}
    total = sum(size(d) for d in kept_pages)
    keep = {newest.seq}
    if base_seq and found[0].seq == base_seq:
        keep.add(base_seq)
        kept_pages |= {p.digest for p in found[0].pages}
        total = sum(size(d) for d in kept_pages)
    for m in reversed(found[:-1]):
        extra = {p.digest for p in m.pages} - kept_pages
        if total + sum(size(d) for d in extra) > budget:
            break
        keep.add(m.seq)
        kept_pages |= extra
        total += sum(size(d) for d in extra)
    for m in found:
        if m.seq not in keep:
            image_path(root, m.seq).unlink(missing_ok=True)
    folder = pages_dir(root)
    if folder.is_dir():
        named = {d.hex() for d in kept_pages}
        for path in folder.iterdir():
            if path.suffix == ".vpg" and path.stem not in named or path.name.startswith("."):
                path.unlink(missing_ok=True)

