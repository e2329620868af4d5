"""Every ```python block in ``docs/**/*.md`` is executed, so the docs cannot drift from the code.

Blocks of one page run in order in one namespace (a page reads like a session), inside a
fresh temporary working directory. A block whose first line is ``# doc: skip`` is shown
but not run (use sparingly, e.g. for a snippet that needs a network service). Pages whose
snippets need an optional framework are skipped only when that framework is missing; CI
installs every extra, so there nothing is skipped.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
BLOCK = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
# A page may declare the modules its snippets need: <!-- doc-requires: langchain_core langgraph -->
REQUIRES = re.compile(r"<!--\s*doc-requires:\s*([^>]*?)\s*-->")


def _pages() -> list[Path]:
    return sorted(p for p in DOCS.rglob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def _blocks(text: str) -> list[tuple[int, str]]:
    """(line number, source) of each runnable block."""
    out = []
    for m in BLOCK.finditer(text):
        src = m.group(1)
        if src.lstrip().startswith("# doc: skip"):
            continue
        out.append((text.count("\n", 0, m.start()) + 2, src))
    return out


def test_some_pages_have_snippets() -> None:
    assert _pages(), "no docs page has a python snippet; the runner would test nothing"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(DOCS)))
def test_page_snippets_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text(encoding="utf-8")
    for req in REQUIRES.findall(text):
        for mod in req.split():
            if importlib.util.find_spec(mod) is None:
                pytest.skip(f"{page.relative_to(DOCS)} needs {mod}, which is not installed")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"doc_{page.stem}"}
    where = str(page.relative_to(DOCS))
    for line, src in _blocks(text):
        code = compile(src, f"{where}:{line}", "exec")
        try:
            exec(code, namespace)
        except Exception as exc:  # noqa: BLE001 - re-raised with the location
            raise AssertionError(f"snippet at {where} line {line} failed: {exc!r}") from exc
