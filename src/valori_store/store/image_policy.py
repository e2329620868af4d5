"""When a spec-2 durable store writes an image (checkpoints never do).

* Automatically, after a mutation, once the log has grown since the last image by at
  least the larger of :data:`AUTO_BYTES` and :data:`AUTO_FACTOR` times the state's vector
  bytes: images then cost O(1) per logged byte (a bulk ingest from empty writes about 1.5
  copies of the final state before its closing image, most of them pruned), and restore
  and reopen never replay more than about two states' worth of log.
* On ``sync()`` and ``close()``, once the log has grown by :data:`SYNC_BYTES`.
* On ``write_image()``, always.

An image writes only pages no earlier image holds, then retention prunes
(:func:`valori_store.storage.page_store.prune`). A failed image write is a warning: the log
holds everything, recovery then replays more.
"""

from __future__ import annotations

import warnings

from valori_store.storage import page_store
from valori_store.storage.image_files import RecoveryWarning
from valori_store.store.live import Live

#: Least log growth (bytes) between two automatic images.
AUTO_BYTES = 64 << 20
#: ... and at least this many times the state's vector bytes.
AUTO_FACTOR = 2
#: Least log growth before ``sync()``/``close()`` write an image.
SYNC_BYTES = 16 << 20


def applies(live: Live) -> bool:
    return live.durable and live.table.spec >= 2 and not live.read_only


def grown(live: Live) -> int:
    """Log bytes appended since the newest image (or since the store was created)."""
    return live.log.end - live.image_end


def write(live: Live, strict: bool = False) -> None:
    """Write an image of the current state (caller holds the write lock). A failure is a
    RecoveryWarning (the log holds everything; the image only saves replay time), or, with
    ``strict`` (an explicit ``write_image()``), the StorageError itself."""
    assert live.root is not None
    try:
        live.log.sync()
        page_store.write_image(live.root, live.table, live.seq, live.log.end, live.log.chain)
        page_store.prune(live.root, live.log.first_seq)
    except OSError as exc:
        if strict:
            raise
        warnings.warn(f"an image could not be written ({exc}); recovery will replay more of the log",
                      RecoveryWarning, stacklevel=4)
        return
    live.image_end = live.log.end


def after_mutation(live: Live) -> None:
    """The automatic rule (caller holds the write lock)."""
    if applies(live) and grown(live) >= max(AUTO_BYTES, AUTO_FACTOR * 4 * live.table.dim * live.table.n):
        write(live)


def on_sync(live: Live) -> None:
    if applies(live) and grown(live) >= SYNC_BYTES:
        write(live)
