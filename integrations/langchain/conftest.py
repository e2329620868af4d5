"""Make ``langchain_valori`` importable when the thin package is not installed.

``make test`` installs ``integrations/langchain/langchain-valori`` (editable); this only
adds its ``src`` to ``sys.path`` as a fallback, e.g. for a bare ``pytest`` run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("langchain_valori") is None:
    sys.path.insert(0, str(Path(__file__).resolve().parent / "langchain-valori" / "src"))
