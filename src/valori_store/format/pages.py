"""Page files (``pages/<node digest>.vpg``): the records of one state-trie node, in key order.

A page is the content of a node of the state tree (:mod:`valori_store.spec.state_tree`):
its file name is that node's digest, so equal content has one file whatever image refers to
it, and a reader recomputes the digest from the records to check the page. Layout
(little-endian; docs/format.md, section 5)::

    header   64 bytes  magic "VALORIPG", u16 version (1), u16 spec (2), u8 metric code,
                       u8 depth (nibbles), 2 zero bytes, u32 dim, u32 count,
                       32 bytes key prefix (bytes beyond ``depth`` nibbles zero), 8 zero bytes
    keys     count * 32 bytes, ascending
    flags    count bytes (1 = the record has no vector), then zero bytes up to a multiple of 4
    vectors  count * dim int32 (zero rows for records without a vector)
    offsets  (count + 1) u64: entry i is records[offsets[i]:offsets[i+1]]
    records  the packed entries (u32 len + id, text, u32 len + metadata)

No digest trails a page: its name is the digest of its content.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from valori_store.errors import CorruptFileError
from valori_store.format import records_block

MAGIC = b"VALORIPG"
VERSION = 1
HEADER = struct.Struct("<8sHHBB2sII32s8s")
HEADER_SIZE = HEADER.size
assert HEADER_SIZE == 64


@dataclass
class Page:
    """A decoded page: ``rows`` (count, dim) int32, ``flags`` uint8, ``keys`` (count, 32)
    uint8, ``offsets`` int64 (count + 1) into ``records``."""

    spec: int
    metric_code: int
    depth: int
    prefix: bytes
    dim: int
    keys: np.ndarray
    flags: np.ndarray
    rows: np.ndarray
    offsets: np.ndarray
    records: bytes

    @property
    def count(self) -> int:
        return len(self.flags)


def _pad4(n: int) -> int:
    return -n % 4


def encode(page: Page) -> bytes:
    n = page.count
    head = HEADER.pack(MAGIC, VERSION, page.spec, page.metric_code, page.depth, bytes(2), page.dim, n,
                       page.prefix.ljust(32, b"\x00"), bytes(8))
    return b"".join((head, np.ascontiguousarray(page.keys, np.uint8).tobytes(),
                     np.ascontiguousarray(page.flags, np.uint8).tobytes(), bytes(_pad4(n)),
                     np.ascontiguousarray(page.rows, "<i4").tobytes(), np.asarray(page.offsets, "<u8").tobytes(),
                     page.records))


def decode(data: bytes | memoryview, what: str) -> Page:
    """Parse a page, checking every length and offset (not its digest: the caller does)."""
    view = memoryview(data)
    if len(view) < HEADER_SIZE:
        raise CorruptFileError(f"{what}: {len(view)} bytes is too short for a page")
    magic, version, spec, metric, depth, zero1, dim, n, prefix, zero2 = HEADER.unpack_from(view, 0)
    if magic != MAGIC or any(zero1) or any(zero2):
        raise CorruptFileError(f"{what}: not a valori page (bad magic or reserved bytes)")
    if version != VERSION or spec != 2:
        raise CorruptFileError(f"{what}: page version {version} / spec {spec} is not supported")
    if not 1 <= dim <= 1 << 16 or depth > 64:
        raise CorruptFileError(f"{what}: bad dim {dim} or depth {depth}")
    pos = HEADER_SIZE
    sizes = (32 * n, n + _pad4(n), 4 * n * dim, 8 * (n + 1))
    if pos + sum(sizes) > len(view):
        raise CorruptFileError(f"{what}: truncated page ({len(view)} bytes for {n} records)")
    keys = np.frombuffer(view, np.uint8, 32 * n, pos).reshape(n, 32)
    pos += sizes[0]
    flags = np.frombuffer(view, np.uint8, n, pos)
    if any(view[pos + n : pos + sizes[1]]):
        raise CorruptFileError(f"{what}: non-zero padding after the flags")
    pos += sizes[1]
    rows = np.frombuffer(view, "<i4", n * dim, pos).reshape(n, dim)
    pos += sizes[2]
    offsets = np.frombuffer(view, "<u8", n + 1, pos).astype(np.int64)
    pos += sizes[3]
    records = bytes(view[pos:])
    if offsets[0] != 0 or offsets[-1] != len(records) or (n and (np.diff(offsets) < 12).any()):
        raise CorruptFileError(f"{what}: record offsets do not fit the records section")
    if ((flags != 0) & (flags != 1)).any():
        raise CorruptFileError(f"{what}: unknown record flags")
    records_block.check_entries(records, offsets, what)
    return Page(spec, metric, depth, bytes(prefix), dim, keys, flags, rows, offsets, records)
