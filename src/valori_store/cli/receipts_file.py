"""Reading receipts for ``verify --receipts FILE``.

Accepted: one receipt object, a JSON list of them, JSON lines (one receipt per line), or
an object with a ``"receipt"`` (one) or ``"receipts"`` (a list) key — so the output of
``valori-store search --json --receipt`` can be verified as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from valori_store.cli.common import check_input_path
from valori_store.errors import InputError, NotFoundError


def _items(doc: Any) -> list[Any]:
    if isinstance(doc, dict) and "receipt" in doc and "digest" not in doc:
        return [doc["receipt"]]
    if isinstance(doc, dict) and "receipts" in doc and "digest" not in doc:
        if not isinstance(doc["receipts"], list):
            raise InputError("the 'receipts' key must hold a list of receipts")
        return list(doc["receipts"])
    if isinstance(doc, list):
        return list(doc)
    return [doc]


def load(path: str | Path) -> list[Any]:
    """Receipt candidates (dicts, unparsed) in file order; each is checked by the verifier."""
    p = Path(path)
    check_input_path(p, "--receipts", directory_ok=False)  # a FIFO or /dev/zero would never end
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"no receipts file at {p}") from None
    except IsADirectoryError:
        raise InputError(f"--receipts {p} is a directory; pass a JSON or JSON-lines file") from None
    except UnicodeDecodeError:
        raise InputError(f"--receipts {p} is not UTF-8 text") from None
    try:
        return _items(json.loads(text))
    except ValueError:
        pass
    out: list[Any] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.extend(_items(json.loads(line)))
        except ValueError as exc:
            raise InputError(f"--receipts {p} line {number} is not JSON ({exc}); expected a receipt, a list "
                             f"of receipts or JSON lines") from None
    if not out:
        raise InputError(f"--receipts {p} holds no receipts")
    return out
