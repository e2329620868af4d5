"""Canonical snapshot bytes (format v1) and the state hash.

Layout (little-endian; normative description in docs/format.md)::

    header   64 bytes  magic "VALORIS\\0", u16 format, u16 spec, u8 metric, 3 zero bytes,
                       u32 dim, u32 zero, u64 count, u64 vectors_offset (=64),
                       u64 records_offset, u64 records_length, u64 zero
    vectors  count * dim int32, rows in id order (ids compared as UTF-8 bytes)
    records  per record, in the same order: u32 len + id, u32 len + text
             (0xFFFFFFFF = no text), u32 len + canonical metadata JSON
    digest   32 bytes: tagged SHA-256 ("valori-state-v1", see digests.py) of all preceding bytes

The state hash is the hex of that digest: equal content gives equal bytes and an equal
hash, whatever the insertion history.
"""

from __future__ import annotations

import struct
from typing import Any

from valori_store.errors import CorruptFileError, FormatVersionError
from valori_store.format import digests
from valori_store.format.binary import Reader, le_int32_bytes, pack_records
from valori_store.format.canonical import is_canonical_metadata
from valori_store.spec import MAX_DIM, METRICS, SPEC_VERSION
from valori_store.state.table import RecordTable

MAGIC = b"VALORIS\x00"
FORMAT_VERSION = 1
HEADER = struct.Struct("<8sHHB3sI4sQQQQ8s")
HEADER_SIZE = HEADER.size  # 64
DIGEST_SIZE = 32

assert HEADER_SIZE == 64


def new_hasher() -> Any:
    """The state-hash digest function."""
    return digests.tagged(digests.STATE)


def _parts(table: RecordTable, metric: str) -> list[bytes | memoryview]:
    """The snapshot body (everything but the digest) as a list of buffers."""
    order = table.id_order()
    vectors = le_int32_bytes(table.matrix[order]) if order else b""
    records = pack_records([table.ids[r] for r in order], [table.texts[r] for r in order],
                           [table.metas[r] for r in order])
    vec_off = HEADER_SIZE
    rec_off = vec_off + len(vectors)
    header = HEADER.pack(
        MAGIC, FORMAT_VERSION, SPEC_VERSION, METRICS.index(metric), bytes(3), table.dim, bytes(4), len(order),
        vec_off, rec_off, len(records), bytes(8),
    )
    return [header, vectors, records]


def state_digest(table: RecordTable, metric: str) -> bytes:
    """The 32-byte state digest of a table."""
    h = new_hasher()
    for part in _parts(table, metric):
        h.update(part)
    return h.digest()


def encode(table: RecordTable, metric: str) -> bytes:
    """Canonical snapshot bytes of a table."""
    body = b"".join(_parts(table, metric))
    h = new_hasher()
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
    if fmt != FORMAT_VERSION or spec != SPEC_VERSION:
        raise FormatVersionError(
            f"{what}: format version {fmt} / numeric spec {spec} is not supported by this "
            f"valori-store (format {FORMAT_VERSION}, spec {SPEC_VERSION}); upgrade valori-store"
        )
    if metric >= len(METRICS):
        raise CorruptFileError(f"{what}: unknown metric code {metric} at offset 12")
    if not 1 <= dim <= MAX_DIM:
        raise CorruptFileError(f"{what}: dimension {dim} out of range at offset 16")
    return {
        "dim": dim, "metric": METRICS[metric], "count": count, "vectors_offset": vec_off,
        "records_offset": rec_off, "records_length": rec_len,
    }


def decode(data: bytes | memoryview, what: str = "snapshot") -> tuple[RecordTable, str]:
    """Verify and parse snapshot bytes; returns (table, metric).

    Checks the magic, then the digest before trusting any field, then the versions, every
    length, the canonical id order and that metadata is canonical JSON. Any mismatch raises CorruptFileError naming the offset.
    """
    view = memoryview(data)
    if len(view) < HEADER_SIZE + DIGEST_SIZE or bytes(view[:8]) != MAGIC:
        raise CorruptFileError(f"{what}: not a valori snapshot (bad magic or only {len(view)} bytes)")
    body, digest = view[:-DIGEST_SIZE], bytes(view[-DIGEST_SIZE:])
    h = new_hasher()
    h.update(body)
    if h.digest() != digest:
        raise CorruptFileError(
            f"{what}: digest mismatch (the file is corrupted or truncated; {len(view)} bytes read)"
        )
    header = read_header(view, what)
    dim, count = int(header["dim"]), int(header["count"])
    vec_off, rec_off, rec_len = (int(header[k]) for k in ("vectors_offset", "records_offset", "records_length"))
    if vec_off != HEADER_SIZE or rec_off != vec_off + count * dim * 4 or rec_off + rec_len != len(body):
        raise CorruptFileError(f"{what}: section offsets do not match the file size (offset 32)")
    vectors = Reader(body[vec_off:rec_off], what, vec_off).int32_matrix(count, dim)
    reader = Reader(body[rec_off:], what, rec_off)
    table = RecordTable(dim)
    ids: list[str] = []
    texts: list[str | None] = []
    metas: list[bytes] = []
    previous = b""
    for i in range(count):
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
    table.upsert(ids, vectors, texts, metas)
    return table, str(header["metric"])
