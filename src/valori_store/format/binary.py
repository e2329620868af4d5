"""Little-endian binary helpers shared by the snapshot, event and log codecs.

``Reader`` checks every length against the bytes that remain and raises
CorruptFileError with the offset, so a truncated or corrupted buffer is never trusted.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import numpy as np

from valori_store.errors import CorruptFileError

NONE_LEN = 0xFFFFFFFF  # u32 length marking a missing (None) string

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")


def u32(v: int) -> bytes:
    return _U32.pack(v)


def u64(v: int) -> bytes:
    return _U64.pack(v)


def blob(b: bytes) -> bytes:
    """u32 length + bytes."""
    return _U32.pack(len(b)) + b


def opt_str(s: str | None) -> bytes:
    """u32 length + UTF-8, or the NONE_LEN marker for None."""
    if s is None:
        return _U32.pack(NONE_LEN)
    return blob(s.encode("utf-8"))


class Reader:
    """Bounds-checked sequential reader over a bytes-like buffer."""

    def __init__(self, data: bytes | memoryview, what: str, base_offset: int = 0) -> None:
        self.data = memoryview(data)
        self.pos = 0
        self.what = what
        self.base = base_offset

    def fail(self, message: str) -> CorruptFileError:
        return CorruptFileError(f"{self.what}: {message} at offset {self.base + self.pos}")

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise self.fail(f"needs {n} bytes but only {len(self.data) - self.pos} remain")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u8(self) -> int:
        return _U8.unpack(self.take(1))[0]

    def u16(self) -> int:
        return _U16.unpack(self.take(2))[0]

    def u32(self) -> int:
        return _U32.unpack(self.take(4))[0]

    def u64(self) -> int:
        return _U64.unpack(self.take(8))[0]

    def count(self, min_size: int) -> int:
        """A u32 count of entries of at least ``min_size`` bytes each, checked against the
        bytes that remain (so a damaged count never sizes an allocation)."""
        n = self.u32()
        if n * min_size > len(self.data) - self.pos:
            self.pos -= 4
            raise self.fail(f"a count of {n} entries of at least {min_size} bytes each, but only "
                            f"{len(self.data) - self.pos - 4} bytes follow")
        return n

    def blob(self) -> bytes:
        return bytes(self.take(self.u32()))

    def text(self) -> str:
        raw = self.blob()
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("invalid UTF-8 string") from None

    def opt_text(self) -> str | None:
        n = self.u32()
        if n == NONE_LEN:
            return None
        raw = bytes(self.take(n))
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("invalid UTF-8 string") from None

    def int32_matrix(self, rows: int, dim: int) -> np.ndarray:
        """A fresh, writable (rows, dim) int32 array read as little-endian."""
        raw = self.take(rows * dim * 4)
        return np.frombuffer(raw, dtype="<i4").astype(np.int32).reshape(rows, dim)

    def end(self) -> None:
        if self.pos != len(self.data):
            raise self.fail(f"{len(self.data) - self.pos} unexpected trailing bytes")


def pack_records(ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes]) -> bytes:
    """Concatenated (id blob, optional text, metadata blob) triples; see docs/format.md."""
    pack = _U32.pack
    none = pack(NONE_LEN)
    parts: list[bytes] = []
    add = parts.append
    for rid, text, meta in zip(ids, texts, metas):
        b = rid.encode("utf-8")
        add(pack(len(b)))
        add(b)
        if text is None:
            add(none)
        else:
            t = text.encode("utf-8")
            add(pack(len(t)))
            add(t)
        add(pack(len(meta)))
        add(meta)
    return b"".join(parts)


def le_int32_bytes(matrix: np.ndarray) -> bytes:
    """Row-major little-endian int32 bytes of a matrix."""
    return np.ascontiguousarray(matrix, dtype="<i4").tobytes()
