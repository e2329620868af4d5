"""The byte layout of the event log: file header, frames, the hash chain, and scanning.

File layout: a 16-byte header (``"VALORILG"``, u16 version, 6 zero bytes) then frames
(version 1: the log starts with a create event; version 2, written by compaction: it
starts with a base event, see :func:`iter_frames`)::

    "VF" | u8 kind | u8 flags=0 | u32 payload_len | u64 seq      (16-byte frame header)
    u32 CRC-32 of those 16 bytes
    payload
    32-byte chain hash  h_n = SHA-256("valori-log-v1\\0" || h_{n-1} || frame header || payload)
    u32 total frame length (for backward scans)

``h_{-1}`` is 32 zero bytes. The same operations give the same log bytes in memory and
on disk. Recovery rule (docs/format.md): a torn write is fewer than 20 bytes after the
last good frame, a zero-filled tail, a frame whose valid header says it runs past the
end of the file, or a complete final frame whose sequence number, chain hash or trailing
length is wrong; it is cut off with a warning. Anything else (a damaged header with
data after it, any damaged frame that is not the last) is corruption and raises
CorruptFileError with the offset.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from valori_store.errors import CorruptFileError, FormatVersionError
from valori_store.format import digests

FILE_MAGIC = b"VALORILG"
FILE_VERSION = 1
#: Header version of a compacted log (its first frame is a base event).
FILE_VERSION_COMPACTED = 2
FILE_VERSIONS = (FILE_VERSION, FILE_VERSION_COMPACTED)
FILE_HEADER = FILE_MAGIC + FILE_VERSION.to_bytes(2, "little") + bytes(6)
FILE_HEADER_COMPACTED = FILE_MAGIC + FILE_VERSION_COMPACTED.to_bytes(2, "little") + bytes(6)
FILE_HEADER_SIZE = len(FILE_HEADER)  # 16
FRAME_HEAD = struct.Struct("<2sBBIQ")  # 16 bytes
FRAME_MAGIC = b"VF"
CRC = struct.Struct("<I")
CHAIN_SIZE = 32
OVERHEAD = FRAME_HEAD.size + CRC.size + CHAIN_SIZE + CRC.size  # 56 bytes per frame
GENESIS = bytes(CHAIN_SIZE)
#: Kind of the base event a compacted log starts with, and where its payload records the
#: chain hash of the history it replaced (after u32 dim, u8 metric, u16 spec).
BASE_KIND = 9
BASE_CHAIN_AT = 7


Buffer = bytes | memoryview


def chain_next(prev: bytes, head: bytes, payload: Buffer | list[Buffer]) -> bytes:
    """h_n from h_{n-1}, the 16-byte frame header and the payload (one buffer or its parts)."""
    h = digests.tagged(digests.LOG)
    h.update(prev)
    h.update(head)
    for part in payload if isinstance(payload, list) else [payload]:
        h.update(part)
    return h.digest()


def frame_parts(seq: int, kind: int, payload: Buffer | list[Buffer], prev_chain: bytes) -> tuple[bytes, bytes]:
    """(frame header + its CRC, new chain hash); the frame is header, payload, chain, length."""
    size = sum(len(p) for p in payload) if isinstance(payload, list) else len(payload)
    head = FRAME_HEAD.pack(FRAME_MAGIC, kind, 0, size, seq)
    return head + CRC.pack(zlib.crc32(head)), chain_next(prev_chain, head, payload)


def encode_base_frame(seq: int, payload: bytes, chain: bytes) -> bytes:
    """The base frame a compacted log starts with: numbered ``seq``, its stored chain hash
    the ``chain`` its payload records (at BASE_CHAIN_AT), so the frames after it keep theirs."""
    assert payload[BASE_CHAIN_AT : BASE_CHAIN_AT + CHAIN_SIZE] == chain
    head = FRAME_HEAD.pack(FRAME_MAGIC, BASE_KIND, 0, len(payload), seq)
    return b"".join((head, CRC.pack(zlib.crc32(head)), payload, chain, CRC.pack(OVERHEAD + len(payload))))


def encode_frame(seq: int, kind: int, payload: bytes, prev_chain: bytes) -> tuple[bytes, bytes]:
    """Frame bytes and the new chain hash."""
    head, chain = frame_parts(seq, kind, payload, prev_chain)
    return b"".join((head, payload, chain, CRC.pack(OVERHEAD + len(payload)))), chain


@dataclass(frozen=True)
class Frame:
    """One parsed frame; ``offset``/``end`` are byte positions in the log."""

    seq: int
    kind: int
    payload: memoryview
    chain: bytes
    offset: int
    end: int


#: ``ScanResult.torn_reason`` prefix of a complete final frame that fails its checks (as
#: opposed to a frame cut short): recovery cuts both, ``verify`` reports this one as a problem.
DAMAGED_FINAL = "a damaged final frame"


@dataclass
class ScanResult:
    """Outcome of scanning a log: good frames, where they end, and any torn tail."""

    frames: list[Frame]
    good_end: int
    torn_bytes: int
    torn_reason: str | None
    last_chain: bytes
    next_seq: int = 0


def check_file_header(data: bytes | memoryview, what: str) -> None:
    if len(data) < FILE_HEADER_SIZE:
        raise CorruptFileError(f"{what}: {len(data)} bytes is too short for a valori log header")
    if bytes(data[:8]) != FILE_MAGIC:
        raise CorruptFileError(f"{what}: not a valori log (bad magic at offset 0)")
    version = int.from_bytes(bytes(data[8:10]), "little")
    if any(bytes(data[10:16])):
        raise CorruptFileError(f"{what}: reserved log header bytes are not zero")
    if version not in FILE_VERSIONS:
        raise FormatVersionError(f"{what}: log file version {version} is not supported (this valori-store reads "
                                 f"{' and '.join(map(str, FILE_VERSIONS))})")


def iter_frames(
    data: bytes | memoryview, what: str, start: int = FILE_HEADER_SIZE, prev_chain: bytes = GENESIS,
    first_seq: int = 0, base: int = 0,
) -> Iterator[Frame | ScanResult]:
    """Yield each valid frame from ``start``; the last item is the ScanResult.

    ``data`` may be a tail of the log that begins at file offset ``base``: offsets in
    frames, results and errors are file offsets either way. A log may start (at the file
    header's end) with a *base* frame (kind :data:`BASE_KIND`, written by compaction): its
    sequence number is the first one, and its chain hash is the one its payload records
    (the chain of the history it replaced), so every later frame keeps its bytes.
    """
    view = memoryview(data)
    size = len(view)
    pos, chain, seq = start, prev_chain, first_seq
    first = base + start == FILE_HEADER_SIZE
    while pos < size:
        remaining = size - pos
        torn = None
        if remaining < FRAME_HEAD.size + CRC.size:
            torn = "a frame header cut short"
        else:
            head = bytes(view[pos : pos + FRAME_HEAD.size])
            (crc,) = CRC.unpack_from(view, pos + FRAME_HEAD.size)
            if zlib.crc32(head) != crc:
                if not any(view[pos:]):
                    torn = "a zero-filled tail"
                else:
                    raise CorruptFileError(f"{what}: frame header checksum mismatch at offset {base + pos}")
            else:
                magic, kind, flags, length, fseq = FRAME_HEAD.unpack(head)
                end = pos + OVERHEAD + length
                if magic != FRAME_MAGIC or flags != 0:
                    raise CorruptFileError(f"{what}: bad frame marker at offset {base + pos}")
                if end > size:
                    torn = f"a frame of {OVERHEAD + length} bytes cut short"
                else:
                    body_at = pos + FRAME_HEAD.size + CRC.size
                    payload = view[body_at : body_at + length]
                    stored_chain = bytes(view[body_at + length : body_at + length + CHAIN_SIZE])
                    (total,) = CRC.unpack_from(view, end - CRC.size)
                    expect = chain_next(chain, head, payload)
                    if first and kind == BASE_KIND and length >= BASE_CHAIN_AT + CHAIN_SIZE:
                        seq = fseq  # a compacted log starts at its base
                        expect = bytes(payload[BASE_CHAIN_AT : BASE_CHAIN_AT + CHAIN_SIZE])
                    first = False
                    problem = None
                    if fseq != seq:
                        problem = f"sequence number {fseq} where {seq} was expected"
                    elif stored_chain != expect:
                        problem = "hash chain mismatch (payload or order altered)"
                    elif total != OVERHEAD + length:
                        problem = "trailing length mismatch"
                    if problem is not None:
                        if end == size:
                            torn = f"{DAMAGED_FINAL} ({problem})"
                        else:
                            raise CorruptFileError(f"{what}: {problem} in frame {seq} at offset {base + pos}")
                    else:
                        yield Frame(seq, kind, payload, expect, base + pos, base + end)
                        chain, pos, seq = expect, end, seq + 1
                        continue
        yield ScanResult([], base + pos, size - pos, torn, chain, seq)
        return
    yield ScanResult([], base + pos, 0, None, chain, seq)


def scan(data: bytes | memoryview, what: str, **kwargs: object) -> ScanResult:
    """Collect every valid frame (see :func:`iter_frames`)."""
    frames: list[Frame] = []
    for item in iter_frames(data, what, **kwargs):  # type: ignore[arg-type]
        if isinstance(item, Frame):
            frames.append(item)
        else:
            item.frames = frames
            return item
    raise AssertionError("unreachable")
