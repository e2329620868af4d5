"""Records packed once: the bytes of the ``(id, text, metadata)`` entries plus where each starts.

Entry layout (docs/format.md, the snapshot and event records): ``u32 len(id) || id ||
text || u32 len(metadata) || metadata``, where ``text`` is ``u32 len || UTF-8`` or
``0xFFFFFFFF`` for none. One packing serves the event payload and the state tree's leaf
digests (:mod:`valori_store.state.merkle`), so a batch is not packed twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numba import njit

from valori_store.format.binary import NONE_LEN
from valori_store.kernels.options import SERIAL

__all__ = ["PackedRecords", "check_entries", "pack", "unpack_offsets"]


@dataclass(frozen=True)
class PackedRecords:
    """``data``: the concatenated entries; ``offsets``: int64, n + 1 entries (entry ``i`` is
    ``data[offsets[i]:offsets[i + 1]]``)."""

    data: bytes
    offsets: np.ndarray

    @property
    def count(self) -> int:
        return len(self.offsets) - 1


@njit(**SERIAL)
def _put_u32(out: np.ndarray, o: int, v: int) -> None:
    out[o] = v & 255
    out[o + 1] = (v >> 8) & 255
    out[o + 2] = (v >> 16) & 255
    out[o + 3] = (v >> 24) & 255


@njit(**SERIAL)
def _interleave(ids: np.ndarray, id_len: np.ndarray, texts: np.ndarray, text_len: np.ndarray,
                metas: np.ndarray, meta_len: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> None:
    """Write every entry at its offset (``text_len[i] < 0``: no text)."""
    pi = pt = pm = 0
    for i in range(id_len.shape[0]):
        o = offsets[i]
        n = id_len[i]
        _put_u32(out, o, n)
        out[o + 4 : o + 4 + n] = ids[pi : pi + n]
        pi += n
        o += 4 + n
        t = text_len[i]
        if t < 0:
            _put_u32(out, o, 0xFFFFFFFF)
            o += 4
        else:
            _put_u32(out, o, t)
            out[o + 4 : o + 4 + t] = texts[pt : pt + t]
            pt += t
            o += 4 + t
        m = meta_len[i]
        _put_u32(out, o, m)
        out[o + 4 : o + 4 + m] = metas[pm : pm + m]
        pm += m


def _u8(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint8) if blob else np.zeros(0, dtype=np.uint8)


def pack(ids: Sequence[str], texts: Sequence[str | None], metas: Sequence[bytes]) -> PackedRecords:
    """Pack validated records (ids and texts valid Unicode, metadata canonical)."""
    n = len(ids)
    id_b = list(map(str.encode, ids))
    text_b = [b"" if t is None else t.encode("utf-8") for t in texts]
    id_len = np.fromiter(map(len, id_b), dtype=np.int64, count=n)
    text_len = np.fromiter((-1 if t is None else len(b) for t, b in zip(texts, text_b)), dtype=np.int64, count=n)
    meta_len = np.fromiter(map(len, metas), dtype=np.int64, count=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(12 + id_len + np.maximum(text_len, 0) + meta_len, out=offsets[1:])
    out = np.empty(int(offsets[-1]), dtype=np.uint8)
    if n:
        _interleave(_u8(b"".join(id_b)), id_len, _u8(b"".join(text_b)), text_len, _u8(b"".join(metas)), meta_len,
                    offsets, out)
    return PackedRecords(out.tobytes(), offsets)


def unpack_offsets(data: bytes | memoryview, count: int) -> np.ndarray:
    """Offsets of ``count`` entries packed at the start of ``data`` (lengths not checked
    beyond what is needed to walk them: callers decode the entries anyway)."""
    view = memoryview(data)
    offsets = np.zeros(count + 1, dtype=np.int64)
    pos = 0
    for i in range(count):
        n = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4 + n
        t = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4 + (0 if t == NONE_LEN else t)
        m = int.from_bytes(view[pos : pos + 4], "little")
        pos += 4 + m
        offsets[i + 1] = pos
    return offsets


@njit(**SERIAL)
def u32_le(data: np.ndarray, o: int) -> int:
    """The little-endian u32 at ``data[o : o + 4]`` (the caller checked the bounds)."""
    return int(data[o]) | (int(data[o + 1]) << 8) | (int(data[o + 2]) << 16) | (int(data[o + 3]) << 24)


@njit(**SERIAL)
def entry_fields(data: np.ndarray, o: int, end: int, out: np.ndarray, i: int) -> int:
    """The fields of the record entry at ``o`` into ``out[i]``: (id start, id length, text
    start, text length or -1, metadata start, its length). Returns the entry's end, or -1
    when a length runs past ``end``."""
    if o + 4 > end:
        return -1
    n = u32_le(data, o)
    out[i, 0], out[i, 1] = o + 4, n
    o += 4 + n
    if o + 4 > end:
        return -1
    t = u32_le(data, o)
    if t == 0xFFFFFFFF:
        out[i, 2], out[i, 3] = o + 4, -1
        o += 4
    else:
        out[i, 2], out[i, 3] = o + 4, t
        o += 4 + t
    if o + 4 > end:
        return -1
    m = u32_le(data, o)
    out[i, 4], out[i, 5] = o + 4, m
    o += 4 + m
    return o if o <= end else -1


@njit(**SERIAL)
def _fields(data: np.ndarray, offsets: np.ndarray, out: np.ndarray) -> int:
    """Per entry: its fields (see :func:`entry_fields`) into ``out`` (n, 6); returns the
    first entry whose lengths do not exactly fill ``data[offsets[i] : offsets[i + 1]]``, or -1."""
    for i in range(offsets.shape[0] - 1):
        end = offsets[i + 1]
        if end > data.shape[0] or entry_fields(data, offsets[i], end, out, i) != end:
            return i
    return -1


@njit(**SERIAL)
def _joined(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, int]:
    """The fields ``data[starts[i] : starts[i] + lengths[i]]`` (a negative length: empty)
    joined by zero bytes, and how many zero bytes the fields themselves hold."""
    n = starts.shape[0]
    total = max(n - 1, 0)
    for i in range(n):
        if lengths[i] > 0:
            total += lengths[i]
    out = np.zeros(total, dtype=np.uint8)
    zeros = 0
    o = 0
    for i in range(n):
        m = lengths[i]
        if m > 0:
            a = starts[i]
            for j in range(m):
                v = data[a + j]
                zeros += v == 0
                out[o + j] = v
            o += m
        o += 1  # the separator (already zero)
    return out, zeros


def _column(data: np.ndarray, starts: np.ndarray, lengths: np.ndarray) -> bytes | None:
    """A column's fields joined by zero bytes; None when a field holds a zero byte itself."""
    joined, zeros = _joined(data, np.ascontiguousarray(starts), np.ascontiguousarray(lengths))
    return None if zeros else joined.tobytes()


def check_entries(data: bytes | memoryview, offsets: np.ndarray, what: str) -> None:
    """CorruptFileError unless every entry's id, text and metadata lengths exactly fill the
    entry ``data[offsets[i]:offsets[i + 1]]`` (offsets ascending, within ``data``): what a
    kernel walking the entries (hashing them, say) relies on."""
    from valori_store.errors import CorruptFileError

    n = len(offsets) - 1
    if n <= 0:
        return
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    if offsets[0] < 0 or (np.diff(offsets) < 0).any():
        raise CorruptFileError(f"{what}: record offsets are not ascending")
    f = np.empty((n, 6), dtype=np.int64)
    bad = _fields(_u8(bytes(data)), offsets, f)
    if bad >= 0:
        raise CorruptFileError(f"{what}: record {bad}: lengths do not fit its entry")


def unpack(data: bytes, offsets: np.ndarray, what: str) -> tuple[list[str], list[str | None], list[bytes]]:
    """(ids, texts, metadata bytes) of packed entries; CorruptFileError when an entry's
    lengths do not fit it or a string is not UTF-8 (metadata is not checked for canonical form)."""
    from valori_store.errors import CorruptFileError

    n = len(offsets) - 1
    f = np.empty((n, 6), dtype=np.int64)
    bad = _fields(_u8(data), offsets, f) if n else -1
    if bad >= 0:
        raise CorruptFileError(f"{what}: record {bad}: lengths do not fit its entry")
    if n == 0:
        return [], [], []
    u8 = _u8(data)
    # in bulk: each column joined by zero bytes, then decoded and split at C speed (a column
    # where a field holds a zero byte itself takes the per-record path; canonical JSON has none)
    try:
        joined = _column(u8, f[:, 0], f[:, 1])
        ids = joined.decode("utf-8").split("\x00") if joined is not None else []
        if len(ids) != n:
            ids = [data[a : a + b].decode("utf-8") for a, b in zip(f[:, 0].tolist(), f[:, 1].tolist())]
        joined = _column(u8, f[:, 2], f[:, 3])
        texts: list[str | None] = list(joined.decode("utf-8").split("\x00")) if joined is not None else []
        if len(texts) == n:
            for i in np.flatnonzero(f[:, 3] < 0).tolist():
                texts[i] = None
        else:
            texts = [None if b < 0 else data[a : a + b].decode("utf-8") for a, b in zip(f[:, 2].tolist(),
                                                                                         f[:, 3].tolist())]
    except UnicodeDecodeError:
        raise CorruptFileError(f"{what}: a record holds invalid UTF-8") from None
    joined = _column(u8, f[:, 4], f[:, 5])
    metas = joined.split(b"\x00") if joined is not None else []
    if len(metas) != n:
        metas = [data[a : a + b] for a, b in zip(f[:, 4].tolist(), f[:, 5].tolist())]
    return ids, texts, metas
