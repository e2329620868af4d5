"""State-tree kernels: record keys and leaves, and node digests of the hash trie.

They compute exactly :mod:`valori_store.spec.state_tree` (the tests compare them), with
SHA-256 from :mod:`.sha` called without the GIL. Per-record work is split over numba's
threads in fixed chunks, and so are subtrees; every digest depends on its inputs alone,
so the split changes nothing.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from valori_store.kernels.options import PARALLEL, SERIAL, serial_twin
from valori_store.kernels.sha import sha256_at
from valori_store.spec.state_tree import BUCKET_MAX, FIXED_DEPTH, KEY_NIBBLES, TAG_BUCKET, TAG_KEY, TAG_LEAF, TAG_NODE

#: Tags with their zero byte, as uint8 arrays (kernels copy them into the hash input).
KEY_TAG = np.frombuffer(TAG_KEY + b"\x00", dtype=np.uint8).copy()
LEAF_TAG = np.frombuffer(TAG_LEAF + b"\x00", dtype=np.uint8).copy()
BUCKET_TAG = np.frombuffer(TAG_BUCKET + b"\x00", dtype=np.uint8).copy()
NODE_TAG = np.frombuffer(TAG_NODE + b"\x00", dtype=np.uint8).copy()
#: Records per parallel work item.
CHUNK = 256


@njit(**SERIAL)
def _u32_at(buf: np.ndarray, o: int) -> int:
    return int(buf[o]) | (int(buf[o + 1]) << 8) | (int(buf[o + 2]) << 16) | (int(buf[o + 3]) << 24)


@njit(**PARALLEL)
def record_digests(fn: int, packed: np.ndarray, offsets: np.ndarray, rows: np.ndarray, plain: np.ndarray,
                   keys: np.ndarray, leaves: np.ndarray, key_tag: np.ndarray, leaf_tag: np.ndarray) -> None:
    """Key and leaf of each packed record ``i``: ``keys[i]``, ``leaves[i]`` (32 bytes each).

    ``packed``/``offsets``: the entries (:mod:`valori_store.format.records_block`); ``rows``
    (n, 4 * dim) uint8: the stored rows' little-endian bytes; ``plain[i]`` 1 for a record
    without a vector (its row is not hashed).
    """
    n = offsets.shape[0] - 1
    width = rows.shape[1]
    longest = 0
    for i in range(n):
        longest = max(longest, offsets[i + 1] - offsets[i])
    lt = leaf_tag.shape[0]
    kt = key_tag.shape[0]
    for c in prange((n + CHUNK - 1) // CHUNK):
        buf = np.empty(lt + 1 + longest + width, dtype=np.uint8)
        kbuf = np.empty(kt + longest, dtype=np.uint8)
        buf[:lt] = leaf_tag
        kbuf[:kt] = key_tag
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            start, stop = offsets[i], offsets[i + 1]
            size = stop - start
            flag = plain[i]
            buf[lt] = flag
            buf[lt + 1 : lt + 1 + size] = packed[start:stop]
            total = lt + 1 + size
            if flag == 0:
                buf[total : total + width] = rows[i]
                total += width
            sha256_at(fn, buf.ctypes.data, total, leaves[i].ctypes.data)
            id_len = _u32_at(packed, start)
            kbuf[kt : kt + id_len] = packed[start + 4 : start + 4 + id_len]
            sha256_at(fn, kbuf.ctypes.data, kt + id_len, keys[i].ctypes.data)


@njit(**SERIAL)
def _nibble(keys: np.ndarray, i: int, depth: int) -> int:
    b = keys[i, depth >> 1]
    return (b >> 4) if depth % 2 == 0 else (b & 15)


@njit(**SERIAL)
def node_digest(fn: int, keys: np.ndarray, leaves: np.ndarray, lo: int, hi: int, depth: int, out: np.ndarray,
                bucket_tag: np.ndarray, node_tag: np.ndarray) -> None:
    """Digest of the node holding the key-sorted entries ``[lo, hi)`` at ``depth`` into ``out``."""
    count = hi - lo
    if depth < FIXED_DEPTH or (count > BUCKET_MAX and depth < KEY_NIBBLES):
        nt = node_tag.shape[0]
        buf = np.empty(nt + 8 + 16 * 32, dtype=np.uint8)
        buf[:nt] = node_tag
        for b in range(8):
            buf[nt + b] = (count >> (8 * b)) & 255
        i = lo
        for child in range(16):
            j = i
            while j < hi and _nibble(keys, j, depth) == child:
                j += 1
            at = nt + 8 + 32 * child
            node_digest(fn, keys, leaves, i, j, depth + 1, buf[at : at + 32], bucket_tag, node_tag)
            i = j
        sha256_at(fn, buf.ctypes.data, buf.shape[0], out.ctypes.data)
        return
    bt = bucket_tag.shape[0]
    buf = np.empty(bt + 4 + 64 * count, dtype=np.uint8)
    buf[:bt] = bucket_tag
    for b in range(4):
        buf[bt + b] = (count >> (8 * b)) & 255
    for e in range(count):
        at = bt + 4 + 64 * e
        buf[at : at + 32] = keys[lo + e]
        buf[at + 32 : at + 64] = leaves[lo + e]
    sha256_at(fn, buf.ctypes.data, buf.shape[0], out.ctypes.data)


@njit(**PARALLEL)
def subtree_digests(fn: int, keys: np.ndarray, leaves: np.ndarray, bounds: np.ndarray, depths: np.ndarray,
                    out: np.ndarray, bucket_tag: np.ndarray, node_tag: np.ndarray) -> None:
    """``out[s]`` = digest of the node holding the key-sorted entries ``[bounds[s], bounds[s+1])``
    at ``depths[s]`` (one node per ``s``; nodes in parallel)."""
    for s in prange(bounds.shape[0] - 1):
        node_digest(fn, keys, leaves, bounds[s], bounds[s + 1], depths[s], out[s], bucket_tag, node_tag)


#: Serial twins for small inputs: starting numba's thread pool costs about 0.5 ms a call
#: on the project's 2-core machine, more than hashing a few hundred records.
record_digests_serial = serial_twin(record_digests)
subtree_digests_serial = serial_twin(subtree_digests)
#: Below this many records (or entries) a call runs serially.
SERIAL_BELOW = 2048
