"""The ``valori-store`` command line: ``valori-store COMMAND [options]``.

Commands: inspect, verify, history, diff, replay, search, ingest, compact, migrate, demo (docs/cli.md).
Conventions: ``--help`` on every command; ``--json`` prints one JSON object on stdout;
``-q/--quiet`` silences progress bars and warnings; errors are ONE line on stderr
(``valori-store: error: ...``) with a documented exit code (see :mod:`.common`). Set
``VALORI_STORE_DEBUG=1`` to get a traceback instead of the one-line error.

Entry point: ``valori_store.cli:main`` (``python -m valori_store.cli`` works too).
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from valori_store import __version__
from valori_store.cli import (
    cmd_compact,
    cmd_demo,
    cmd_diff,
    cmd_history,
    cmd_ingest,
    cmd_inspect,
    cmd_migrate,
    cmd_replay,
    cmd_search,
    cmd_verify,
)
from valori_store.cli.common import (
    KINDS,
    PROG,
    USAGE,
    CliError,
    Ctx,
    UsageError,
    check_input_path,
    classify,
    dumps,
    one_line,
)

__all__ = ["main"]

COMMANDS = {
    "inspect": cmd_inspect, "verify": cmd_verify, "history": cmd_history, "diff": cmd_diff,
    "replay": cmd_replay, "search": cmd_search, "ingest": cmd_ingest, "compact": cmd_compact,
    "migrate": cmd_migrate, "demo": cmd_demo,
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error raises (one line, exit 2) instead of printing usage."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bar, no warnings")
    parser = _Parser(
        prog=PROG,
        description="Inspect, verify, replay, diff, search and fill valori-store stores. Exit codes: 0 ok, "
                    "1 verification failed, 2 usage error, 3 not found, 4 corrupt, 5 locked, 6 I/O error.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        module.add_parser(sub, [common])
    return parser


def _error(code: int, message: str, command: str | None, as_json: bool) -> int:
    sys.stderr.write(f"{PROG}: error: {one_line(message)}\n")
    if as_json:
        sys.stdout.write(dumps({"command": command, "ok": False, "error": {
            "code": code, "kind": KINDS.get(code, "error"), "message": one_line(message)}}) + "\n")
    return code


def check_paths(args: argparse.Namespace) -> None:
    """Reject input paths that are FIFOs, devices or sockets before any command reads them
    (a FIFO would block forever, /dev/zero never ends)."""
    for name in ("path", "paths"):
        value = getattr(args, name, None)
        for p in [value] if isinstance(value, str) else (value or []):
            check_input_path(p, "PATH")
    for p in getattr(args, "files", None) or []:
        check_input_path(p, "FILES:", expected="a text file or a directory")
    for p in getattr(args, "receipts", None) or []:
        check_input_path(p, "--receipts", directory_ok=False)


@contextmanager
def routed_warnings(ctx: Ctx) -> Iterator[None]:
    """Warnings raised while a command runs print as the CLI's one-line warnings (each
    distinct message once; none with --quiet), never as raw Python warnings."""
    seen: set[str] = set()

    def show(message: Warning | str, category: type[Warning], filename: str, lineno: int,
             file: object = None, line: str | None = None) -> None:
        text = one_line(str(message))
        if text not in seen:
            seen.add(text)
            ctx.warn(text)

    with warnings.catch_warnings():
        warnings.showwarning = show  # restored when the block ends
        yield


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args_list
    bad = next((a for a in args_list if not isinstance(a, str) or "\0" in a), None)
    if bad is not None:
        return _error(USAGE, "arguments must be text without NUL characters", None, as_json)
    if args_list[:1] == ["demo"]:
        return cmd_demo.passthrough(args_list[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help / --version
        return exc.code if isinstance(exc.code, int) else 0
    except CliError as exc:
        return _error(exc.code, str(exc), None, as_json)
    if args.command is None:
        return _error(USAGE, f"choose a command: {', '.join(COMMANDS)} (see '{PROG} --help')", None, as_json)
    ctx = Ctx.from_args(args)
    try:
        check_paths(args)
    except CliError as exc:
        return _error(exc.code, str(exc), args.command, as_json)
    try:
        with routed_warnings(ctx):
            return COMMANDS[args.command].run(args, ctx)
    except KeyboardInterrupt:
        sys.stderr.write(f"\n{PROG}: interrupted\n")
        return 130
    except BrokenPipeError:  # stdout closed early (e.g. piped into head): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    except Exception as exc:  # noqa: BLE001 - one line and an exit code, never a traceback
        if os.environ.get("VALORI_STORE_DEBUG"):
            raise
        code, message = classify(exc)
        return _error(code, message, args.command, as_json and not ctx.emitted)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
