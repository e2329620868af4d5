"""The state tree of a record table (state spec 2, :mod:`valori_store.spec.state_tree`).

Each table row has its record's key and leaf (32 bytes each, row-aligned with the matrix,
computed when the row is written). Two levels of node digests are cached: the 256 fixed
subtrees (depth 2, one per first key byte) and the 4,096 nodes of depth 3 below them (one
per 12-bit key prefix). A write marks its depth-3 node stale; :meth:`StateTree.root`
recomputes only stale nodes: after one upsert, one depth-3 node (about N/4096 records) is
sorted and rehashed, then its depth-2 parent (one split digest over 16 cached children, or
a small bucket) and the 17 nodes above it. Everything is a function of the set of (key,
leaf) pairs, so rows' positions (which depend on history) never matter.
"""

from __future__ import annotations

import numpy as np

from valori_store.format.records_block import PackedRecords
from valori_store.kernels import tree as kernels
from valori_store.kernels.sha import SHA256_FN
from valori_store.spec import state_tree as spec_tree
from valori_store.state.growable import GrowableRows

SUBTREES = 256
#: Cached nodes of depth 3 (one per 12-bit key prefix), 16 under each fixed subtree.
NODES3 = 16 * SUBTREES
#: Most records in one image page (a trie node; see storage/page_store.py).
PAGE_MAX = 4096


def _sorted_rows(keys: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """``rows`` ordered by their keys (ascending bytes)."""
    if len(rows) < 2:
        return rows
    head = np.ascontiguousarray(keys[rows, :8]).view(">u8").ravel()
    order = np.argsort(head, kind="stable")
    ordered = head[order]
    if (ordered[1:] == ordered[:-1]).any():  # equal first 8 bytes: order by the whole key
        order = np.lexsort(tuple(np.ascontiguousarray(keys[rows, i:i + 8]).view(">u8").ravel() for i in (24, 16, 8, 0)))
    return rows[order]


class StateTree:
    """Row-aligned keys and leaves plus cached subtree digests. Not thread-safe (the table
    is mutated under the store's write lock; :meth:`root` may run under a read lock, since
    readers compute the same values)."""

    def __init__(self, metric_code: int, dim: int) -> None:
        self.metric_code = metric_code
        self.dim = dim
        self._keys = GrowableRows((32,), np.uint8)
        self._leaves = GrowableRows((32,), np.uint8)
        #: Each row's 12-bit key prefix, contiguous: a depth-3 node's rows in one fast scan.
        self._p12 = GrowableRows((), np.uint16)
        self.dirty = np.ones(SUBTREES, dtype=np.bool_)  # fixed subtrees whose digest is stale
        self.sub = np.zeros((SUBTREES, 32), dtype=np.uint8)
        self.counts = np.zeros(SUBTREES, dtype=np.int64)
        self.known3 = np.zeros(NODES3, dtype=np.bool_)  # depth-3 nodes whose cached digest is current
        self.sub3 = np.zeros((NODES3, 32), dtype=np.uint8)
        self.counts3 = np.zeros(NODES3, dtype=np.int64)
        self._root: bytes | None = None

    @property
    def keys(self) -> np.ndarray:
        return self._keys.array

    @property
    def leaves(self) -> np.ndarray:
        return self._leaves.array

    def grow(self, capacity: int, used: int) -> None:
        self._keys.grow(capacity, used)
        self._leaves.grow(capacity, used)
        self._p12.grow(capacity, used)

    # ------------------------------------------------------------------ row updates
    def write(self, positions: np.ndarray, packed: PackedRecords, rows: np.ndarray, plain: bool,
              digests: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Set the keys and leaves of records written at table ``positions``: ``digests``
        when given (from :meth:`digests` of the same records), else computed here."""
        if packed.count == 0:
            return
        keys, leaves = digests if digests is not None else self.digests(packed, rows, plain)
        self.keys[positions] = keys
        self.leaves[positions] = leaves
        self._p12.array[positions] = prefix12(keys)
        self.mark(keys)

    def digests(self, packed: PackedRecords, rows: np.ndarray, plain: bool) -> tuple[np.ndarray, np.ndarray]:
        """(keys, leaves) of packed records and their stored rows ((n, dim) int32; ignored
        when ``plain``). Pure: changes nothing (so it may run beside the log append)."""
        n = packed.count
        flags = np.full(n, 1 if plain else 0, dtype=np.uint8)
        row_bytes = (np.zeros((n, 0), dtype=np.uint8) if plain
                     else np.ascontiguousarray(rows, dtype="<i4").view(np.uint8).reshape(n, 4 * self.dim))
        return record_digests(packed, row_bytes, flags)

    def mark(self, keys: np.ndarray) -> None:
        """Mark the nodes holding these keys ((n, 32) uint8) stale."""
        if len(keys):
            p = prefix12(keys)
            self.known3[p] = False
            self.dirty[p >> 4] = True
            self._root = None

    def move(self, src: int, dst: int) -> None:
        self.keys[dst] = self.keys[src]
        self.leaves[dst] = self.leaves[src]
        self._p12.array[dst] = self._p12.array[src]

    def clear(self, row: int) -> None:
        self.keys[row] = 0
        self.leaves[row] = 0
        self._p12.array[row] = 0

    # ------------------------------------------------------------------ digests
    def _refresh(self, n: int) -> None:
        """Recompute the stale depth-3 nodes, then the stale fixed subtrees from them."""
        dirty = np.flatnonzero(self.dirty)
        if not len(dirty):
            return
        keys = self.keys
        p12 = self._p12.array[:n]
        stale = ~self.known3 & np.repeat(self.dirty, 16)
        prefixes = np.flatnonzero(stale)
        need: list[tuple[int, np.ndarray]] = []  # (12-bit prefix, its rows in key order)
        if len(prefixes) <= 2:  # one scan per node
            need = [(int(p), _sorted_rows(keys, np.flatnonzero(p12 == p))) for p in prefixes]
        elif len(prefixes):  # one scan for all, then one sort of their rows only
            rows = _sorted_rows(keys, np.flatnonzero(stale[p12]))
            ordered = p12[rows]
            starts = np.searchsorted(ordered, prefixes, side="left")
            ends = np.searchsorted(ordered, prefixes, side="right")
            need = [(int(p), rows[starts[i] : ends[i]]) for i, p in enumerate(prefixes)]
        if need:
            out = self._digests_of([g for _, g in need], 3)
            for i, (p, g) in enumerate(need):
                self.sub3[p] = out[i]
                self.counts3[p] = len(g)
            self.known3[prefixes] = True
        small = []
        for s in dirty.tolist():
            count = int(self.counts3[16 * s : 16 * s + 16].sum())
            self.counts[s] = count
            if spec_tree.is_split(spec_tree.FIXED_DEPTH, count):
                children = [self.sub3[p].tobytes() for p in range(16 * s, 16 * s + 16)]
                self.sub[s] = np.frombuffer(spec_tree.split_digest(count, children), dtype=np.uint8)
            else:  # a bucket of at most BUCKET_MAX records
                small.append((s, _sorted_rows(keys, np.flatnonzero((p12 >= 16 * s) & (p12 < 16 * s + 16)))))
        if small:
            out = self._digests_of([g for _, g in small], spec_tree.FIXED_DEPTH)
            for i, (s, _) in enumerate(small):
                self.sub[s] = out[i]
        self.dirty[:] = False

    def _digests_of(self, groups: list[np.ndarray], depth: int) -> np.ndarray:
        """Digests of the nodes of ``depth`` holding each group of rows (in key order)."""
        rows = np.concatenate(groups) if groups else np.zeros(0, np.int64)
        bounds = np.zeros(len(groups) + 1, dtype=np.int64)
        np.cumsum([len(g) for g in groups], out=bounds[1:])
        sk, sl = np.ascontiguousarray(self.keys[rows]), np.ascontiguousarray(self.leaves[rows])
        return node_digests(sk, sl, bounds, np.full(len(groups), depth, dtype=np.int64))

    def top(self, n: int) -> bytes:
        """The digest of the top node (the empty prefix)."""
        self._refresh(n)
        level1 = []
        for hi in range(16):
            children = [self.sub[16 * hi + lo].tobytes() for lo in range(16)]
            level1.append(spec_tree.split_digest(int(self.counts[16 * hi:16 * hi + 16].sum()), children))
        return spec_tree.split_digest(int(self.counts.sum()), level1)

    def root(self, n: int) -> bytes:
        """The state root of the first ``n`` rows (cached until the next change)."""
        if self._root is None:
            self._root = spec_tree.root_of(self.top(n), self.metric_code, self.dim)
        return self._root

    def set_rows(self, start: int, keys: np.ndarray, leaves: np.ndarray) -> None:
        """Rows ``[start, start + len(keys))`` hold these keys and leaves (bulk loading)."""
        self.keys[start : start + len(keys)] = keys
        self.leaves[start : start + len(keys)] = leaves
        self._p12.array[start : start + len(keys)] = prefix12(keys)
        self.mark(keys)

    def set_subtrees(self, digests: np.ndarray, counts: np.ndarray) -> None:
        """Digests and counts of all 256 fixed subtrees, known to be current (bulk loading
        from checked pages: no rehashing)."""
        self.sub[:] = digests
        self.counts[:] = counts
        self.dirty[:] = False
        self.known3[:] = False  # computed when their subtree first changes
        self._root = None

    def pages(self, n: int, page_max: int = PAGE_MAX) -> list[tuple[int, bytes, np.ndarray, bytes]]:
        """The state split into pages: ``(depth, key prefix, rows in key order, node digest)``
        for every non-empty trie node of at most ``page_max`` records whose parent holds more
        (starting from the 256 fixed subtrees), in ascending key order."""
        keys, leaves = self.keys, self.leaves
        order = _sorted_rows(keys, np.arange(n, dtype=np.int64))
        sk = np.ascontiguousarray(keys[order])
        plan: list[tuple[int, int, int]] = []  # (lo, hi, depth) into the sorted order

        def visit(lo: int, hi: int, depth: int) -> None:
            if hi == lo:
                return
            if hi - lo <= page_max or depth >= spec_tree.KEY_NIBBLES:
                plan.append((lo, hi, depth))
                return
            byte = sk[lo:hi, depth >> 1]
            nib = (byte >> 4) if depth % 2 == 0 else (byte & 15)
            cuts = np.searchsorted(nib, np.arange(17), side="left") + lo
            for c in range(16):
                visit(int(cuts[c]), int(cuts[c + 1]), depth + 1)

        firsts = np.searchsorted(sk[:, 0], np.arange(SUBTREES + 1), side="left") if n else np.zeros(SUBTREES + 1, int)
        for s in range(SUBTREES):
            visit(int(firsts[s]), int(firsts[s + 1]), spec_tree.FIXED_DEPTH)
        if not plan:
            return []
        bounds = np.array([p[0] for p in plan] + [plan[-1][1]], dtype=np.int64)
        depths = np.array([p[2] for p in plan], dtype=np.int64)
        digests = node_digests(sk, np.ascontiguousarray(leaves[order]), bounds, depths)
        return [(d, key_prefix(sk[lo], d), order[lo:hi], digests[i].tobytes()) for i, (lo, hi, d) in enumerate(plan)]

    def prove(self, n: int, key: bytes) -> tuple[list[tuple[int, list[bytes]]], list[tuple[bytes, bytes]]]:
        """The proof path of ``key`` (present or not): the (count, 15 sibling digests) of
        every split node from the top, and the entries of its bucket (key order)."""
        self._refresh(n)
        k = np.frombuffer(key, dtype=np.uint8)
        hi, lo = int(k[0]) >> 4, int(k[0]) & 15
        level1 = [spec_tree.split_digest(int(self.counts[16 * h:16 * h + 16].sum()),
                                         [self.sub[16 * h + i].tobytes() for i in range(16)]) for h in range(16)]
        path = [(int(self.counts.sum()), [d for h, d in enumerate(level1) if h != hi]),
                (int(self.counts[16 * hi:16 * hi + 16].sum()),
                 [self.sub[16 * hi + i].tobytes() for i in range(16) if i != lo])]
        p12 = self._p12.array[:n]
        rows = _sorted_rows(self.keys, np.flatnonzero((p12 >= 16 * int(k[0])) & (p12 < 16 * int(k[0]) + 16)))
        sk = np.ascontiguousarray(self.keys[rows])
        sl = np.ascontiguousarray(self.leaves[rows])
        begin, end, depth = 0, len(rows), spec_tree.FIXED_DEPTH
        while spec_tree.is_split(depth, end - begin):
            byte = sk[begin:end, depth >> 1]
            nib = (byte >> 4) if depth % 2 == 0 else (byte & 15)
            cuts = np.searchsorted(nib, np.arange(17), side="left") + begin
            mine = (int(k[depth >> 1]) >> 4) if depth % 2 == 0 else (int(k[depth >> 1]) & 15)
            children = node_digests(sk, sl, cuts.astype(np.int64), np.full(16, depth + 1, dtype=np.int64))
            path.append((end - begin, [children[c].tobytes() for c in range(16) if c != mine]))
            begin, end, depth = int(cuts[mine]), int(cuts[mine + 1]), depth + 1
        bucket = [(sk[i].tobytes(), sl[i].tobytes()) for i in range(begin, end)]
        return path, bucket

    def subtree(self, n: int, first_byte: int) -> tuple[bytes, int]:
        """(digest, record count) of one fixed subtree (sharded stores combine these)."""
        self._refresh(n)
        return self.sub[first_byte].tobytes(), int(self.counts[first_byte])


def node_digests(keys: np.ndarray, leaves: np.ndarray, bounds: np.ndarray, depths: np.ndarray) -> np.ndarray:
    """(m, 32) digests of the nodes holding the key-sorted entries ``[bounds[i], bounds[i+1])``
    at ``depths[i]``."""
    out = np.empty((len(depths), 32), dtype=np.uint8)
    if SHA256_FN:
        small = len(depths) < 2 or int(bounds[-1] - bounds[0]) < kernels.SERIAL_BELOW
        kernel = kernels.subtree_digests_serial if small else kernels.subtree_digests
        kernel(SHA256_FN, keys, leaves, bounds, depths, out, kernels.BUCKET_TAG, kernels.NODE_TAG)
        return out
    for g in range(len(depths)):
        entries = [(keys[i].tobytes(), leaves[i].tobytes()) for i in range(bounds[g], bounds[g + 1])]
        out[g] = np.frombuffer(spec_tree.node_digest(entries, int(depths[g])), dtype=np.uint8)
    return out


def prefix12(keys: np.ndarray) -> np.ndarray:
    """The first 12 bits (3 nibbles) of each key ((n, 32) uint8) as uint16."""
    return (keys[:, 0].astype(np.uint16) << 4) | (keys[:, 1] >> 4).astype(np.uint16)


def key_prefix(key: np.ndarray, depth: int) -> bytes:
    """The first ``depth`` nibbles of a key as bytes (a trailing half byte keeps its high nibble)."""
    out = bytearray(key[: (depth + 1) // 2].tobytes())
    if depth % 2:
        out[-1] &= 0xF0
    return bytes(out)


def record_digests(packed: PackedRecords, row_bytes: np.ndarray, flags: np.ndarray, serial: bool = False
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(keys, leaves) of packed records, each (n, 32) uint8; ``row_bytes`` (n, 4 * dim) or
    (n, 0) when every record lacks a vector; ``flags`` 1 for a record without a vector.
    ``serial``: hash on the calling thread only (for callers that run several at once)."""
    n = packed.count
    keys = np.empty((n, 32), dtype=np.uint8)
    leaves = np.empty((n, 32), dtype=np.uint8)
    if n == 0:
        return keys, leaves
    if SHA256_FN:
        kernel = kernels.record_digests_serial if serial or n < kernels.SERIAL_BELOW else kernels.record_digests
        kernel(SHA256_FN, np.frombuffer(packed.data, dtype=np.uint8), packed.offsets, row_bytes,
               flags, keys, leaves, kernels.KEY_TAG, kernels.LEAF_TAG)
    else:
        _record_digests_py(packed, row_bytes, flags, keys, leaves)
    return keys, leaves


def _record_digests_py(packed: PackedRecords, row_bytes: np.ndarray, flags: np.ndarray, keys: np.ndarray,
                       leaves: np.ndarray) -> None:
    """The hashlib fallback of :func:`kernels.tree.record_digests` (JIT off, no libcrypto)."""
    data, offsets = packed.data, packed.offsets
    for i in range(packed.count):
        entry = data[offsets[i]:offsets[i + 1]]
        id_len = int.from_bytes(entry[:4], "little")
        keys[i] = np.frombuffer(spec_tree.tagged_hash(spec_tree.TAG_KEY, entry[4:4 + id_len]), dtype=np.uint8)
        body = (b"\x01" + entry) if flags[i] else (b"\x00" + entry + row_bytes[i].tobytes())
        leaves[i] = np.frombuffer(spec_tree.tagged_hash(spec_tree.TAG_LEAF, body), dtype=np.uint8)
