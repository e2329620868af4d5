"""The runnable example runs offline and reports identical results after reload."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "example.py"


def test_example_runs(tmp_path: Path, capsys) -> None:
    main = runpy.run_path(str(EXAMPLE))["main"]
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "results and state hash identical: True" in out
    assert "restored context identical: True" in out
    lines = out.splitlines()
    tie = lines.index(next(line for line in lines if line.startswith("exact tie")))
    first, second = lines[tie + 1].split(), lines[tie + 2].split()
    assert first[0] == second[0] and (first[1], second[1]) == ("doc-016#0", "doc-024#0")
    assert (tmp_path / "valori-db").is_dir() and (tmp_path / "storage" / "default__vector_store.json").is_file()
