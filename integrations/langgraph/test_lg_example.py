"""The runnable example runs offline and its replay is identical (exit code 0)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_example_runs_and_replays_identically() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE.parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, str(HERE / "example_agent_memory.py")], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "identical to the original: True" in out.stdout
    # two runs print the same memory hashes: the example is deterministic
    again = subprocess.run([sys.executable, str(HERE / "example_agent_memory.py")], capture_output=True, text=True,
                           env=env, timeout=300)
    strip = lambda s: [line for line in s.splitlines() if "rewinding" not in line]  # noqa: E731 (checkpoint ids are uuids)
    assert strip(again.stdout) == strip(out.stdout)
