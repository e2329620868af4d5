"""Canonical snapshot bytes, and the spec-1 state digest (docs/format.md is the normative text).

Spec version 2 (valori-store 0.2) writes **format 3**: the layout below with the flags byte
on every record, then the 32-byte state root (:mod:`valori_store.spec.state_tree`), then a
32-byte tagged SHA-256 (``"valori-snapshot-v2"``) of everything before it. The state hash
is the root; the loader recomputes it. Formats 1 and 2 (spec 1) are read as before:

Layout of formats 1 and 2 (little-endian)::

    header   64 bytes  magic "VALORIS\\0", u16 format, u16 spec, u8 metric, 3 zero bytes,
                       u32 dim, u32 zero, u64 count, u64 vectors_offset (=64),
                       u64 records_offset, u64 records_length, u64 zero
    vectors  count * dim int32, rows in id order (ids compared as UTF-8 bytes); a record
             without a vector has a zero row
    records  per record, in the same order: [format 2 only: u8 flags, bit 0 = the record
             has no vector] u32 len + id, u32 len + text (0xFFFFFFFF = no text),
             u32 len + canonical metadata JSON
    digest   32 bytes: tagged SHA-256 ("valori-state-v1", see digests.py) of all preceding bytes

Format 1 is written whenever every record has a vector (so such stores give the same
bytes as valori-store 0.1); format 2 only when some record has none. The state hash is
the hex of the digest: equal content gives equal bytes and an equal hash, whatever the
insertion history.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from valori_store.errors import CorruptFileError, FormatVersionError
from valori_store.format import digests, records_block
from valori_store.format.binary import Reader, le_int32_bytes, pack_records
from valori_store.format.canonical import is_canonical_metadata
from valori_store.spec import MAX_DIM, METRICS

MAGIC = b"VALORIS\x00"
#: Format written when every record has a vector (valori-store 0.1's format).
FORMAT_VERSION = 1
#: Format written when some record has no vector (records carry a flags byte).
FORMAT_PLAIN = 2
#: Format of spec 2: flags on every record, the state root, a file digest.
FORMAT_TREE = 3
FORMATS = (FORMAT_VERSION, FORMAT_PLAIN, FORMAT_TREE)
#: The spec version each format belongs to.
FORMAT_SPEC = {FORMAT_VERSION: 1, FORMAT_PLAIN: 1, FORMAT_TREE: 2}
HEADER = struct.Struct("<8sHHB3sI4sQQQQ8s")
HEADER_SIZE = HEADER.size  # 64
DIGEST_SIZE = 32
FLAG_NO_VECTOR = 1

assert HEADER_SIZE == 64


@dataclass
class Content:
    """A state as plain columns, records in canonical (id) order.

    ``rows`` is (n, dim) int32 (zero rows for records without a vector); ``plain`` is a
    uint8 flag per record (1 = no vector), or None when every record has a vector.
    ``spec``: the state spec version (1: the state digest hashes these bytes; 2: the state
    root of :mod:`valori_store.spec.state_tree`). ``root``: the state root a format-3 file
    recorded (None otherwise; the loader checks it).
    """

    dim: int
    metric: str
    ids: list[str]
    rows: np.ndarray
    texts: list[str | None]
    metas: list[bytes]
    plain: np.ndarray | None = None
    spec: int = 1
    root: bytes | None = None

    @property
    def count(self) -> int:
        return len(self.ids)


def new_hasher() -> Any:
    """The state-hash digest function."""
    return digests.tagged(digests.STATE)


def _records(content: Content) -> bytes:
    if content.plain is None and content.spec == 1:
        return pack_records(content.ids, content.texts, content.metas)
    packed = records_block.pack(content.ids, content.texts, content.metas)
    n = content.count
    data = np.frombuffer(packed.data, dtype=np.uint8)
    out = np.empty(len(data) + n, dtype=np.uint8)
    at = packed.offsets[:-1] + np.arange(n)  # each entry moves right by the flag bytes before it
    keep = np.ones(len(out), dtype=np.bool_)
    keep[at] = False
    out[at] = 0 if content.plain is None else np.where(content.plain != 0, FLAG_NO_VECTOR, 0)
    out[keep] = data
    return out.tobytes()


def parts(content: Content) -> list[bytes | memoryview]:
    """The snapshot body (everything but the digest) as a list of buffers."""
    vectors = le_int32_bytes(content.rows) if content.count else b""
    records = _records(content)
    vec_off = HEADER_SIZE
    rec_off = vec_off + len(vectors)
    if content.spec == 1:
        fmt = FORMAT_VERSION if content.plain is None else FORMAT_PLAIN
    else:
        fmt = FORMAT_TREE
    header = HEADER.pack(
        MAGIC, fmt, FORMAT_SPEC[fmt], METRICS.index(content.metric), bytes(3), content.dim, bytes(4), content.count,
        vec_off, rec_off, len(records), bytes(8),
    )
    return [header, vectors, records]


def state_digest(content: Content) -> bytes:
    """The spec-1 state digest of a state (SHA-256 of its format-1/2 snapshot bytes)."""
    if content.spec != 1:
        content = Content(content.dim, content.metric, content.ids, content.rows, content.texts, content.metas,
                          content.plain if content.plain is not None and content.plain.any() else None, 1)
    h = new_hasher()
    for part in parts(content):
        h.update(part)
    return h.digest()


def encode(content: Content, root: bytes | None = None) -> bytes:
    """Canonical snapshot bytes of a state (spec 2 needs its state ``root``)."""
    body = b"".join(parts(content))
    if content.spec == 1:
        h = new_hasher()
        h.update(body)
        return body + h.digest()
    assert root is not None and len(root) == DIGEST_SIZE
    body += root
    h = digests.tagged(digests.SNAPSHOT)
    h.update(body)
    return body + h.digest()


def read_header(data: bytes | memoryview, what: str = "snapshot") -> dict[str, int | str]:
    """Parse and check the 64-byte header only (no digest check): for `inspect`."""
    if len(data) < HEADER_SIZE:
        raise CorruptFileError(f"{what}: {len(data)} bytes is too short for a valori snapshot header")
    magic, fmt, spec, metric, r1, dim, r2, count, vec_off, rec_off, rec_len, r3 = HEADER.unpack_from(data, 0)
    if magic != MAGIC:
        raise CorruptFileError(f"{what}: not a valori snapshot (bad magic {magic!r} at offset 0)")
    if any(r1) or any(r2) or any(r3):
        raise CorruptFileError(f"{what}: reserved header bytes are not zero")
    if fmt not in FORMATS or spec != FORMAT_SPEC[fmt]:
        raise FormatVersionError(
            f"{what}: format version {fmt} / numeric spec {spec} is not supported by this "
            f"valori-store (formats {FORMATS}, specs {sorted(set(FORMAT_SPEC.values()))}); upgrade valori-store"
        )
    if metric >= len(METRICS):
        raise CorruptFileError(f"{what}: unknown metric code {metric} at offset 12")
    if not 1 <= dim <= MAX_DIM:
        raise CorruptFileError(f"{what}: dimension {dim} out of range at offset 16")
    return {
        "format": fmt, "dim": dim, "metric": METRICS[metric], "count": count, "vectors_offset": vec_off,
        "records_offset": rec_off, "records_length": rec_len,
    }


def decode(data: bytes | memoryview, what: str = "snapshot") -> Content:
    """Verify and parse snapshot bytes.

    Checks the magic, then the digest before trusting any field, then the versions, every
    length, the canonical id order and that metadata is canonical JSON. Any mismatch raises
    CorruptFileError naming the offset.
    """
    view = memoryview(data)
    if len(view) < HEADER_SIZE + DIGEST_SIZE or bytes(view[:8]) != MAGIC:
        raise CorruptFileError(f"{what}: not a valori snapshot (bad magic or only {len(view)} bytes)")
    body, digest = view[:-DIGEST_SIZE], bytes(view[-DIGEST_SIZE:])
    tree = int.from_bytes(bytes(view[8:10]), "little") == FORMAT_TREE
    h = digests.tagged(digests.SNAPSHOT) if tree else new_hasher()
    h.update(body)
    if h.digest() != digest:
        raise CorruptFileError(
            f"{what}: digest mismatch (the file is corrupted or truncated; {len(view)} bytes read)"
        )
    header = read_header(view, what)
    dim, count, fmt = int(header["dim"]), int(header["count"]), int(header["format"])
    root = None
    if fmt == FORMAT_TREE:
        if len(body) < HEADER_SIZE + DIGEST_SIZE:
            raise CorruptFileError(f"{what}: too short for a format-3 snapshot")
        root, body = bytes(body[-DIGEST_SIZE:]), body[:-DIGEST_SIZE]
    vec_off, rec_off, rec_len = (int(header[k]) for k in ("vectors_offset", "records_offset", "records_length"))
    if vec_off != HEADER_SIZE or rec_off != vec_off + count * dim * 4 or rec_off + rec_len != len(body):
        raise CorruptFileError(f"{what}: section offsets do not match the file size (offset 32)")
    rows = Reader(body[vec_off:rec_off], what, vec_off).int32_matrix(count, dim)
    reader = Reader(body[rec_off:], what, rec_off)
    ids: list[str] = []
    texts: list[str | None] = []
    metas: list[bytes] = []
    flags: list[int] = []
    previous = b""
    for i in range(count):
        if fmt != FORMAT_VERSION:
            flag = reader.u8()
            if flag & ~FLAG_NO_VECTOR:
                raise reader.fail(f"record {i}: unknown flag bits {flag:#x}")
            flags.append(flag)
        rid = reader.text()
        key = rid.encode("utf-8")
        if not rid or (i and key <= previous):
            raise reader.fail(f"record {i}: ids are not strictly ascending")
        previous = key
        ids.append(rid)
        texts.append(reader.opt_text())
        meta = reader.blob()
        if not is_canonical_metadata(meta):
            raise reader.fail(f"record {i}: metadata is not canonical JSON")
        metas.append(meta)
    reader.end()
    plain = None
    if fmt != FORMAT_VERSION:
        plain = np.array(flags, dtype=np.uint8)
        if fmt == FORMAT_PLAIN and not plain.any():
            raise CorruptFileError(f"{what}: format {FORMAT_PLAIN} without a record lacking a vector "
                                   f"(the canonical form is format {FORMAT_VERSION})")
        if rows[plain.astype(bool)].any():
            raise CorruptFileError(f"{what}: a record without a vector has a non-zero row")
        if not plain.any():
            plain = None
    return Content(dim, str(header["metric"]), ids, rows, texts, metas, plain, FORMAT_SPEC[fmt], root)
