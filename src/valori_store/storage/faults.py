"""The storage layer's OS calls, and a fault-injection hook for tests (in the spirit of
SQLite's test VFS).

Every write, fsync, rename, truncate, directory fsync and ``fallocate`` of a store's files
goes through this module. Each call:

* loops over short writes (a write that returns fewer bytes than asked is continued where
  it stopped; one that writes nothing is ENOSPC);
* turns an :class:`OSError` into the package's :class:`~valori_store.errors.StorageError`
  (:class:`~valori_store.errors.DiskFullError` for ENOSPC, EDQUOT and EFBIG), whose
  ``strerror`` says what was being done, keeping ``errno`` and ``filename``.

The real OS function is looked up on :mod:`os` at call time (so tests that patch
``os.fsync`` still see every call). When no injector is active the only extra cost is one
check of a module global per call.

Fault injection (tests only)::

    with faults.inject("fsync", nth=2, error=errno.EIO):
        store.upsert(...)            # the second fsync of this block raises EIO

    with faults.counting() as calls:  # how many calls of each kind an operation makes
        store.checkpoint()
    calls.calls["write"]

:func:`inject` makes the ``nth`` call of one kind (see :data:`KINDS`) fail with ``error``
(an errno), or, with ``short=True`` (writes only), write only part of its bytes and return
the short count; with ``error`` as well the following write then fails with it, as a file
system does when it fills up half way through a write. ``sticky=True`` makes every call
from the ``nth`` on fail (a disk that stays full) until the block ends or
:meth:`Injector.heal` is called. ``match`` restricts the fault to calls whose description
(a path, or "event log") contains that text. Only one injector is active at a time.
"""

from __future__ import annotations

import errno as _errno
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from valori_store.errors import DiskFullError, StorageError, ValoriError

#: The kinds of call that can be made to fail.
KINDS = ("write", "fsync", "fdatasync", "replace", "truncate", "fsync_dir", "fallocate")
#: Errnos reported as DiskFullError.
FULL = frozenset({_errno.ENOSPC, _errno.EDQUOT, _errno.EFBIG})
#: Most buffers given to one ``pwritev`` (IOV_MAX is 1024 on Linux).
_IOV_MAX = 1024


def storage_error(exc: OSError, doing: str, prefix: str = "") -> OSError:
    """``exc`` as the package's StorageError (or DiskFullError), its message saying what was
    being done; a ValoriError is returned as it is unless a ``prefix`` is given (then it is
    rewritten as ``prefix + its reason (doing)``)."""
    if isinstance(exc, ValoriError) and not prefix:
        return exc
    cls = DiskFullError if exc.errno in FULL else StorageError
    reason = prefix + (exc.strerror or str(exc) or type(exc).__name__)
    if exc.errno is None:
        return cls(f"{reason} ({doing})")
    if exc.filename is not None:
        return cls(exc.errno, f"{reason} ({doing})", exc.filename)
    return cls(exc.errno, f"{reason} ({doing})")


class _Rule:
    """Fail the ``nth`` call of ``kind`` (see :func:`inject`)."""

    def __init__(self, kind: str, nth: int, error: int | None, short: bool, sticky: bool, match: str | None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        if short and kind != "write":
            raise ValueError("short=True applies to writes only")
        if nth < 1:
            raise ValueError("nth counts from 1")
        if error is None and not short:
            raise ValueError("give an errno, or short=True")
        self.kind, self.nth, self.error, self.short, self.sticky, self.match = kind, nth, error, short, sticky, match
        self.seen = 0
        self.after_short = False

    def decide(self, what: str) -> str | None:
        if self.match is not None and self.match not in what:
            return None
        self.seen += 1
        n = self.seen
        if self.after_short:  # the call after a short write
            self.after_short = self.sticky
            return "fail"
        if n == self.nth and self.short:
            self.after_short = self.error is not None
            return "short"
        if n == self.nth or (self.sticky and n > self.nth and self.error is not None):
            return "fail"
        return None


class Injector:
    """Counts storage calls by kind and fails the chosen ones (see the module docstring)."""

    def __init__(self, match: str | None = None) -> None:
        self.match = match
        #: Calls seen per kind (of those ``match`` selects).
        self.calls: Counter[str] = Counter()
        #: How many calls were failed (or cut short).
        self.fired = 0
        self._rules: list[_Rule] = []
        self._healed = False
        self._lock = threading.Lock()

    def also(self, kind: str, nth: int = 1, error: int | None = _errno.EIO, *, short: bool = False,
             sticky: bool = False, match: str | None = None) -> Injector:
        """Add a fault (several kinds can fail in one block: a write, then the truncate that
        would clean up after it)."""
        self._rules.append(_Rule(kind, nth, error, short, sticky, match))
        return self

    def heal(self) -> None:
        """Stop failing calls (the disk has space again); counting goes on."""
        self._healed = True

    def _decide(self, kind: str, what: str) -> int | str | None:
        """For this call: an errno to fail with, "short" (a short write), or None."""
        if self.match is not None and self.match not in what:
            return None
        with self._lock:
            self.calls[kind] += 1
            if self._healed:
                return None
            action: int | str | None = None
            for rule in self._rules:
                if rule.kind == kind:
                    got = rule.decide(what)
                    if got is not None and action is None:
                        action = got if got == "short" else (rule.error if rule.error is not None else _errno.EIO)
            if action is not None:
                self.fired += 1
            return action


def _raise(error: int, what: str) -> None:
    raise OSError(error, f"{os.strerror(error)} [injected]", what)


_active: Injector | None = None
_install_lock = threading.Lock()


@contextmanager
def inject(kind: str, nth: int = 1, error: int | None = _errno.EIO, *, short: bool = False, sticky: bool = False,
           match: str | None = None) -> Iterator[Injector]:
    """Make the ``nth`` call of ``kind`` fail inside the block (see the module docstring)."""
    injector = Injector().also(kind, nth, error, short=short, sticky=sticky, match=match)
    with _installed(injector):
        yield injector


@contextmanager
def counting(match: str | None = None) -> Iterator[Injector]:
    """Count the storage calls made inside the block, failing none."""
    injector = Injector(match)
    with _installed(injector):
        yield injector


@contextmanager
def _installed(injector: Injector) -> Iterator[None]:
    global _active
    with _install_lock:
        if _active is not None:
            raise RuntimeError("a fault injector is already active")
        _active = injector
    try:
        yield
    finally:
        _active = None


def _check(kind: str, what: str) -> None:
    """Raise the injected error for this call, if any (non-write kinds)."""
    injector = _active
    if injector is not None:
        action = injector._decide(kind, what)
        if isinstance(action, int):
            _raise(action, what)


# ---------------------------------------------------------------------------- writes


def _views(buffers: Sequence[Any]) -> list[memoryview]:
    out = []
    for b in buffers:
        v = b if isinstance(b, memoryview) else memoryview(b)
        if v.ndim != 1 or v.format not in ("B", "b", "c"):
            v = v.cast("B") if v.c_contiguous else memoryview(bytes(v))
        if len(v):
            out.append(v)
    return out


def _advance(views: list[memoryview], n: int) -> list[memoryview]:
    """The buffers left after ``n`` bytes of them were written."""
    while n and views:
        if n >= len(views[0]):
            n -= len(views[0])
            views = views[1:]
        else:
            views = [views[0][n:]] + views[1:]
            n = 0
    return views


def _pwritev_once(fd: int, views: list[memoryview], offset: int, what: str) -> int:
    injector = _active
    if injector is not None:
        action = injector._decide("write", what)
        if isinstance(action, int):
            _raise(action, what)
        if action == "short":
            data = b"".join(bytes(v) for v in views)
            return os.pwrite(fd, data[: max(1, len(data) // 2)] if len(data) > 1 else data, offset)
    batch = views[:_IOV_MAX]
    if len(batch) == 1 or not hasattr(os, "pwritev"):
        return os.pwrite(fd, batch[0], offset)
    return os.pwritev(fd, batch, offset)


def pwrite_all(fd: int, buffers: Sequence[Any], offset: int, what: str) -> None:
    """Write ``buffers`` (bytes-like, in order, not joined) at ``offset`` of ``fd``, all of
    them (short writes continued); StorageError otherwise, after which any prefix of the
    bytes may have been written."""
    views = _views(buffers)
    try:
        while views:
            n = _pwritev_once(fd, views, offset, what)
            if n <= 0:
                raise OSError(_errno.ENOSPC, "the write made no progress", None)
            offset += n
            views = _advance(views, n)
    except OSError as exc:
        raise storage_error(exc, f"writing {what}") from exc


def write_all(fh: Any, data: Any, what: str) -> None:
    """Write all of ``data`` to the file object ``fh`` (unbuffered: each ``fh.write`` is one
    OS write; short writes continued); StorageError otherwise."""
    views = _views([data])
    try:
        while views:
            view = views[0]
            injector = _active
            action = injector._decide("write", what) if injector is not None else None
            if isinstance(action, int):
                _raise(action, what)
            n = fh.write(view[: max(1, len(view) // 2)] if action == "short" and len(view) > 1 else view)
            if not n or n <= 0:
                raise OSError(_errno.ENOSPC, "the write made no progress", None)
            views = _advance(views, n)
    except OSError as exc:
        raise storage_error(exc, f"writing {what}") from exc


# ---------------------------------------------------------------------------- the rest


def _os_call(kind: str, what: str, doing: str, call: Any, *args: Any) -> Any:
    """``call(*args)`` (an :mod:`os` function, looked up by the caller at call time) with
    the fault check of ``kind`` first; an OSError becomes StorageError saying ``doing``."""
    try:
        if _active is not None:
            _check(kind, what)
        return call(*args)
    except OSError as exc:
        raise storage_error(exc, doing) from exc


def fsync(fd: int, what: str) -> None:
    _os_call("fsync", what, f"fsync of {what}", os.fsync, fd)


def fdatasync(fd: int, what: str) -> None:
    _os_call("fdatasync", what, f"fdatasync of {what}", getattr(os, "fdatasync", os.fsync), fd)


def ftruncate(fd: int, size: int, what: str) -> None:
    _os_call("truncate", what, f"truncating {what} to {size} bytes", os.ftruncate, fd, size)


def replace(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """``os.replace`` (an atomic rename)."""
    _os_call("replace", str(dst), f"renaming {os.fspath(src)} to {os.fspath(dst)}", os.replace, src, dst)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """fsync a directory so a rename or a new file inside it is durable."""
    try:
        if _active is not None:
            _check("fsync_dir", str(path))
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as exc:
        raise storage_error(exc, f"fsync of directory {os.fspath(path)}") from exc


def fallocate(fn: Any, fd: int, mode: int, offset: int, length: int, what: str) -> int:
    """Call the C ``fallocate`` ``fn``: 0 on success, -1 when refused (injected: -1)."""
    injector = _active
    if injector is not None and isinstance(injector._decide("fallocate", what), int):
        return -1
    return int(fn(fd, mode, offset, length))


def copy_file_range(src: int, dst: int, count: int, offset_src: int, offset_dst: int, what: str) -> int:
    """``os.copy_file_range`` (a write of kind ``write``): bytes copied. Raises the OSError
    itself (AttributeError where the call is missing) so a caller can fall back to
    ``pread`` + :func:`pwrite_all`."""
    if _active is not None:
        _check("write", what)
    return os.copy_file_range(src, dst, count, offset_src, offset_dst)
