"""A tiny dependency-free progress bar for long CLI work (ingest, replay, verify).

It writes to a stream (stderr) only when that stream is a terminal and the caller enabled
it (the CLI disables it for ``--quiet`` and ``--json``), so pipes, logs and machine output
never contain bar characters. Redraws are throttled by a monotonic clock; the clock only
paces the display and never touches any result.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]


def _is_tty(stream: TextIO) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or exotic streams
        return False


class Progress:
    """``with Progress(total, "ingest", stream) as bar: bar.advance(n)``.

    ``total`` is the amount of work (items or bytes; ``unit="B"`` formats bytes). The bar
    is drawn on one line with ``\\r`` and finished with a newline on close. When disabled
    (not a TTY, or ``enabled=False``) every method is a no-op.
    """

    def __init__(
        self, total: int, label: str, stream: TextIO, *, enabled: bool = True, unit: str = "",
        width: int = 28, interval: float = 0.1, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = max(int(total), 0)
        self.label = label
        self.stream = stream
        self.active = enabled and _is_tty(stream)
        self.unit = unit
        self.width = width
        self.interval = interval
        self.clock = clock
        self.done = 0
        self._last_draw: float | None = None
        self._drawn = False

    def _amount(self, n: int) -> str:
        if self.unit != "B":
            return f"{n}{self.unit}"
        size = float(n)
        for suffix in ("B", "KiB", "MiB", "GiB"):
            if size < 1024 or suffix == "GiB":
                return f"{size:.0f} {suffix}" if suffix == "B" else f"{size:.1f} {suffix}"
            size /= 1024
        raise AssertionError("unreachable")

    def render(self) -> str:
        """The bar line for the current position (without the leading ``\\r``)."""
        frac = 1.0 if self.total == 0 else min(self.done / self.total, 1.0)
        filled = int(frac * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        return f"{self.label} [{bar}] {int(frac * 100):3d}% {self._amount(self.done)}/{self._amount(self.total)}"

    def _draw(self, force: bool = False) -> None:
        now = self.clock()
        if not force and self._last_draw is not None and now - self._last_draw < self.interval:
            return
        self._last_draw = now
        self.stream.write("\r" + self.render())
        self.stream.flush()
        self._drawn = True

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int) -> None:
        """Set the amount of work done so far."""
        self.done = max(int(done), 0)
        if self.active:
            self._draw(force=self.done >= self.total)

    def close(self) -> None:
        """Draw the final state and end the line (once)."""
        if self.active:
            self._draw(force=True)
            self.stream.write("\n")
            self.stream.flush()
            self.active = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
            return
        if self.active and self._drawn:  # leave the partial bar on its own line before the error
            self.stream.write("\n")
            self.stream.flush()
        self.active = False
