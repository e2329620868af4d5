"""The notebooks in ``notebooks/`` run cleanly and reproduce their committed results.

Each notebook is executed from scratch (outputs cleared) in a fresh kernel, with a
temporary working directory, by the same code as ``notebooks/run.py``; any cell error
fails the test. Cells tagged ``deterministic`` (state hashes, result ids, raw integer
scores: outputs that must be bit-identical on every machine) must print exactly what
the committed notebook shows. Other cells (measurements of float behaviour, plots) may
legitimately differ between machines and are only required to run.

A notebook that needs an optional framework lists it in ``metadata.valori.requires`` and
is skipped only when that framework is missing.
"""

from __future__ import annotations

import copy
import difflib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"
EXPECTED = (
    "01_langchain_retriever.ipynb",
    "02_llamaindex_persistence.ipynb",
    "03_agent_memory_session.ipynb",
    "04_why_determinism.ipynb",
)
TAG = "deterministic"


def _load_runner() -> ModuleType:
    spec = importlib.util.spec_from_file_location("valori_notebooks_run", NOTEBOOK_DIR / "run.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


runner = _load_runner()
NOTEBOOKS = runner.notebooks()


def _text(outputs: list[Any]) -> str:
    """The textual content of a cell's outputs (streams and text/* results), in order."""
    parts: list[str] = []
    last_stream = None
    for out in outputs:
        kind = out["output_type"]
        if kind == "stream":  # chunking of a stream depends on flush timing: merge runs
            if last_stream == out["name"]:
                parts[-1] += out["text"]
            else:
                parts.append(f"[{out['name']}]\n{out['text']}")
            last_stream = out["name"]
            continue
        last_stream = None
        if kind in ("execute_result", "display_data"):
            for mime in sorted(out.get("data", {})):
                if mime.startswith("text/"):
                    parts.append(f"[{mime}]\n{out['data'][mime]}")
        elif kind == "error":
            parts.append(f"[error] {out['ename']}: {out['evalue']}")
    return "\n".join(parts)


def _tagged(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code" and TAG in c.metadata.get("tags", [])]


def test_the_expected_notebooks_exist() -> None:
    names = [p.name for p in NOTEBOOKS]
    missing = [n for n in EXPECTED if n not in names]
    assert not missing, f"notebooks missing from {NOTEBOOK_DIR}: {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_notebook_is_executed_and_clean(path: Path) -> None:
    """The committed file holds a complete, clean run (as written by notebooks/run.py)."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), (
        f"{path.name} is not a complete in-order run; regenerate it with `python notebooks/run.py`"
    )
    for cell in code:
        kinds = [(o["output_type"], o.get("name")) for o in cell.outputs]
        assert ("error", None) not in kinds, f"{path.name} cell {cell.id} has an error output"
        assert ("stream", "stderr") not in kinds, f"{path.name} cell {cell.id} writes to stderr: {_text(cell.outputs)}"
        assert "execution" not in cell.metadata, f"{path.name} cell {cell.id} records execution timings"
    tagged = _tagged(nb)
    assert tagged, f"{path.name} has no cell tagged {TAG!r}; nothing of it would be checked"
    assert all(_text(c.outputs) for c in tagged), f"{path.name}: a {TAG!r} cell has no text output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_and_reproduces_committed_results(path: Path, tmp_path: Path) -> None:
    committed = nbformat.read(path, as_version=4)
    for module in runner.requirements(committed):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{path.name} needs {module}, which is not installed")
    fresh = copy.deepcopy(committed)
    for cell in fresh.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    runner.execute(fresh, tmp_path)  # raises CellExecutionError on any failing cell

    want = {c.id: c for c in _tagged(committed)}
    got = {c.id: c for c in _tagged(fresh)}
    assert list(want) == list(got)
    for cell_id, cell in want.items():
        expected, actual = _text(cell.outputs), _text(got[cell_id].outputs)
        if expected != actual:
            diff = "\n".join(difflib.unified_diff(expected.splitlines(), actual.splitlines(), "committed",
                                                  "re-executed", lineterm=""))
            pytest.fail(f"{path.name} cell {cell_id} ({TAG}) printed something else than the committed "
                        f"output:\n{diff}")
