"""Execute the notebooks in place and write their outputs back.

Usage (from the repository root)::

    python notebooks/run.py                 # every notebooks/NN_*.ipynb
    python notebooks/run.py notebooks/04_why_determinism.ipynb

Each notebook runs in a fresh ``python3`` kernel started from *this* interpreter (so the
project's virtualenv), with ``notebooks/`` as its working directory and ``src/`` on
``PYTHONPATH``. Any cell error aborts with a non-zero exit status and leaves the file
untouched. Outputs are kept reproducible: stream chunks are merged (one stdout output per
cell, whatever the kernel's flush timing), no execution timings are recorded, the kernel's
Python patch version is not stored, and ``PYTHONHASHSEED`` and the matplotlib backend are
fixed. The test suite (``tests/notebooks``) imports :func:`execute` from here.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERNEL = "python3"
TIMEOUT = 600  # seconds per cell

__all__ = ["HERE", "clean", "execute", "kernel_env", "notebooks", "requirements"]


def notebooks() -> list[Path]:
    """The notebooks this runner executes: ``notebooks/NN_*.ipynb``, in name order."""
    return sorted(HERE.glob("[0-9][0-9]_*.ipynb"))


def requirements(nb: Any) -> list[str]:
    """Modules a notebook needs beyond the core (``metadata.valori.requires``)."""
    return list(nb.metadata.get("valori", {}).get("requires", []))


def kernel_env() -> dict[str, str]:
    """The kernel's environment: ours, plus ``src/`` first on PYTHONPATH and fixed knobs."""
    env = dict(os.environ)
    paths = [str(ROOT / "src")] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    env["PYTHONHASHSEED"] = "0"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    env.pop("JPY_PARENT_PID", None)
    return env


def clean(nb: Any) -> Any:
    """Strip what changes from run to run: timings, kernel patch version, widget state."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("ExecuteTime", None)
    info = nb.metadata.get("language_info")
    if info is not None:
        info.pop("version", None)
    nb.metadata.pop("widgets", None)
    return nb


def execute(nb: Any, cwd: Path, timeout: int = TIMEOUT) -> Any:
    """Run every code cell of ``nb`` (a NotebookNode, modified in place) in ``cwd``.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell.
    """
    from nbclient import NotebookClient  # local: only needed when executing

    client = NotebookClient(
        nb,
        kernel_name=KERNEL,
        timeout=timeout,
        allow_errors=False,
        record_timing=False,
        coalesce_streams=True,  # one stdout/stderr output per cell, however the kernel chunked it
        resources={"metadata": {"path": str(cwd)}},
    )
    client.execute(env=kernel_env(), cwd=str(cwd))
    return clean(nb)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Execute notebooks in place and write the outputs back.")
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks to run (default: all in notebooks/)")
    args = parser.parse_args(argv)

    import nbformat
    from nbclient.exceptions import CellExecutionError

    paths = args.paths or notebooks()
    for path in paths:
        start = time.perf_counter()
        nb = nbformat.read(path, as_version=4)
        try:
            execute(nb, path.resolve().parent)
        except CellExecutionError as exc:
            print(f"{_shown(path)}: a cell failed; file left unchanged\n{exc}", file=sys.stderr)
            return 1
        nbformat.validate(nb)
        with open(path, "w", encoding="utf-8", newline="\n") as f:
            nbformat.write(nb, f)
        print(f"{_shown(path)}: executed in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
