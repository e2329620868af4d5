"""What every subcommand shares: exit codes, error classification, output and progress.

Output rules: results go to stdout (text, or one JSON object with ``--json``); problems
go to stderr as ONE line ``valori-store: error: ...``; progress bars go to stderr only on
a terminal and never with ``--quiet`` or ``--json``.
"""

from __future__ import annotations

import argparse
import json
import os
import stat
import sys
from dataclasses import dataclass
from typing import Any, TextIO

from valori_store.cli.progress import Progress
from valori_store.errors import CorruptFileError, InputError, LockedError, NotFoundError, StorageError, ValoriError

PROG = "valori-store"

# Exit codes (documented in docs/cli.md; stable).
OK = 0
FAILED = 1  # a verification found a problem (mismatch, failed check), or the demo's own check failed
USAGE = 2  # wrong arguments or input (argparse errors, bad filter JSON, InputError)
NOT_FOUND = 3  # no store/snapshot/file at a path, or no such checkpoint/label/session/turn
CORRUPT = 4  # a log, snapshot or image fails its checksums or hash chain
LOCKED = 5  # another process holds the store open for writing (ingest only)
IO_ERROR = 6  # the operating system refused (permission denied, disk full...)
INTERNAL = 70  # a bug in valori-store (please report it)

KINDS = {
    OK: "ok", FAILED: "failed", USAGE: "usage", NOT_FOUND: "not-found", CORRUPT: "corrupt", LOCKED: "locked",
    IO_ERROR: "io", INTERNAL: "internal",
}


class CliError(Exception):
    """An error with its exit code; its message is printed as one line."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(USAGE, message)


def classify(exc: BaseException) -> tuple[int, str]:
    """(exit code, one-line message) for an exception escaping a subcommand."""
    if isinstance(exc, CliError):
        code = exc.code
    elif isinstance(exc, CorruptFileError):  # FormatVersionError included
        code = CORRUPT
    elif isinstance(exc, LockedError):
        code = LOCKED
    elif isinstance(exc, NotFoundError):
        code = NOT_FOUND
    elif isinstance(exc, StorageError):  # an OSError too: disk full, I/O error...
        code = IO_ERROR
    elif isinstance(exc, (InputError, ValoriError)):
        code = USAGE
    elif isinstance(exc, FileNotFoundError):
        code = NOT_FOUND
    elif isinstance(exc, OSError):
        code = IO_ERROR
    else:
        code = INTERNAL
    message = str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        message = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if code == INTERNAL:
        message = f"internal error ({type(exc).__name__}: {message}); please report it"
    return code, one_line(message)


#: Largest count accepted by ``-k`` / ``--fetch-k`` (the store's own limit, 2**63 - 1).
MAX_COUNT = (1 << 63) - 1


def count(text: str) -> int:
    """argparse type of a count (``-k``): an int in [0, MAX_COUNT], else a one-line usage error."""
    try:
        value = int(text.strip(), 10) if len(text) <= 40 else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_COUNT:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to 2**63 - 1, got {text[:40]!r}"
                                         + ("..." if len(text) > 40 else ""))
    return value


def is_number(text: str) -> bool:
    """True for a non-empty run of ASCII digits (``str.isdigit`` also accepts "²", which
    ``int`` refuses)."""
    return text.isascii() and text.isdigit()


def kind_of(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "a special file"


def check_input_path(path: str | os.PathLike[str], what: str, directory_ok: bool = True,
                     expected: str | None = None) -> None:
    """UsageError if ``path`` exists but is neither a regular file nor (when allowed) a
    directory: reading a FIFO would block forever and a device like /dev/zero never ends.
    A missing path is left to the command (it says what it expected there)."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):  # missing, unreadable, too long...: the command reports it
        return
    if stat.S_ISREG(mode) or (directory_ok and stat.S_ISDIR(mode)):
        return
    if expected is None:
        expected = "a store directory or a snapshot file" if directory_ok else "a regular file"
    raise UsageError(f"{what} {os.fsdecode(path)} is {kind_of(mode)}, not {expected}")


def one_line(text: str) -> str:
    return " ".join(str(text).split()) or "unknown error"


def dumps(obj: Any) -> str:
    """Deterministic JSON: sorted keys, UTF-8 text, two-space indent."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, indent=2, allow_nan=False)


@dataclass
class Ctx:
    """Per-invocation output settings and streams."""

    command: str
    json: bool
    quiet: bool
    out: TextIO
    err: TextIO
    emitted: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Ctx:
        return cls(args.command, bool(getattr(args, "json", False)), bool(getattr(args, "quiet", False)),
                   sys.stdout, sys.stderr)

    def line(self, text: str = "") -> None:
        """A line of human output (nothing in JSON mode)."""
        if not self.json:
            self.out.write(text + "\n")

    def emit(self, result: dict[str, Any]) -> None:
        """The JSON result (JSON mode only); ``command`` is added."""
        if self.json:
            self.out.write(dumps({"command": self.command, **result}) + "\n")
            self.emitted = True

    def fail(self, code: int, message: str) -> int:
        """Report a failure found by a command that already printed its result: one line
        on stderr; returns ``code`` for the command to return."""
        self.err.write(f"{PROG}: error: {one_line(message)}\n")
        return code

    def progress(self, total: int, label: str, unit: str = "") -> Progress:
        return Progress(total, label, self.err, enabled=not (self.quiet or self.json), unit=unit)

    def warn(self, message: str) -> None:
        """A warning line on stderr (not in quiet mode)."""
        if not self.quiet:
            self.err.write(f"{PROG}: warning: {one_line(message)}\n")


def short(h: str | None, n: int = 16) -> str:
    return "-" if h is None else h[:n]


def snippet(text: str | None, width: int = 60) -> str:
    """Text on one line, cut to ``width`` characters."""
    if text is None:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    """Plain-text columns (left aligned)."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), *(fmt.format(*r).rstrip() for r in rows)]
