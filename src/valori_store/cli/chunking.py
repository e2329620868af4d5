"""Deterministic text chunking and file discovery for ``valori-store ingest``.

Chunking rule (a pure function of the text, ``size`` and ``overlap``; offsets and sizes
count code points of the text after ``\\r\\n`` and ``\\r`` become ``\\n``):

1. Skip whitespace; a chunk starts at the next non-space character ``start``.
2. If at most ``size`` characters remain, the chunk runs to the end. Otherwise it ends at
   the last paragraph break (``\\n\\n``) in the window ``(start + size // 2, start + size]``,
   else the last line break there, else the last whitespace there, else exactly at
   ``start + size``.
3. The chunk is that span with trailing whitespace removed; its offset is ``start``.
4. The next chunk starts ``overlap`` characters before the end (at least one character
   after ``start``); if the character before that position is not whitespace, it moves
   forward to the next whitespace up to the end, if there is one (so chunks start on
   word boundaries; a hard cut inside a long word keeps the exact overlap), then step 1.

``0 <= overlap < size // 2`` guarantees progress. Files: a directory argument is walked
recursively for ``.txt .text .md .markdown`` files (hidden names skipped); a file
argument is taken whatever its extension. Every file must be UTF-8 text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from valori_store.errors import InputError, NotFoundError

SUFFIXES = (".txt", ".text", ".md", ".markdown")
MIN_SIZE = 8


def check_sizes(size: int, overlap: int) -> None:
    if size < MIN_SIZE:
        raise InputError(f"--chunk-size must be >= {MIN_SIZE} characters, got {size}")
    if not 0 <= overlap < size // 2:
        raise InputError(f"--overlap must be >= 0 and < chunk-size / 2 (= {size // 2}), got {overlap}")


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _cut(t: str, start: int, size: int) -> int:
    n = len(t)
    if n - start <= size:
        return n
    hi = start + size
    lo = start + size // 2 + 1
    for sep in ("\n\n", "\n"):
        j = t.rfind(sep, lo, hi)
        if j >= 0:
            return j
    for j in range(hi - 1, lo - 1, -1):
        if t[j].isspace():
            return j
    return hi


def chunk_text(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """(offset, chunk) pairs by the rule in the module docstring."""
    check_sizes(size, overlap)
    t = normalise_newlines(text)
    n = len(t)
    out: list[tuple[int, str]] = []
    pos = 0
    while True:
        while pos < n and t[pos].isspace():
            pos += 1
        if pos >= n:
            return out
        end = _cut(t, pos, size)
        out.append((pos, t[pos:end].rstrip()))
        if end >= n:
            return out
        nxt = max(end - overlap, pos + 1)
        if not t[nxt - 1].isspace():
            ws = next((j for j in range(nxt, end + 1) if t[j].isspace()), None)  # end < n here
            if ws is not None:
                nxt = ws
        pos = nxt


@dataclass(frozen=True)
class SourceFile:
    path: Path
    rel: str  # POSIX path relative to the base directory: the id prefix and metadata "source"


def _hidden(p: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in p.relative_to(root).parts)


def discover(args: list[str], base: Path, exclude: Path | None = None) -> list[SourceFile]:
    """The files to ingest, sorted by relative path (UTF-8 bytes), without duplicates."""
    base_r = base.resolve()
    excl = exclude.resolve() if exclude is not None else None
    found: dict[str, Path] = {}
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and f.suffix.lower() in SUFFIXES and not _hidden(f, p):
                    r = f.resolve()
                    if excl is not None and (r == excl or excl in r.parents):
                        continue
                    found.setdefault(_rel(r, base_r, f), f)
        elif p.is_file():
            found.setdefault(_rel(p.resolve(), base_r, p), p)
        elif p.exists():
            raise InputError(f"{p} is not a regular file or directory (a FIFO or device?); ingest reads text and "
                             f"markdown files")
        else:
            raise NotFoundError(f"no file or directory {p} to ingest")
    return [SourceFile(found[k], k) for k in sorted(found, key=lambda s: s.encode("utf-8"))]


def _rel(resolved: Path, base: Path, given: Path) -> str:
    try:
        return resolved.relative_to(base).as_posix()
    except ValueError:
        raise InputError(f"{given} is outside the base directory {base}; ids are paths relative to it, "
                         f"so pass --base DIR (a directory containing every file)") from None


def read_text(f: SourceFile) -> str:
    try:
        return f.path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{f.path} is not UTF-8 text (byte {exc.start}); ingest reads text and markdown "
                         f"files") from None
