"""``valori-store demo [ARGS...]``: run the guided demo (:func:`valori_store.cli.demo.main`).

Every argument after ``demo`` is passed to the demo unchanged (``valori-store demo
--help`` shows the demo's own options); its exit code is returned as is.
"""

from __future__ import annotations

import argparse
from typing import Any

HELP = "run the guided demo (arguments are passed to the demo; see 'valori-store demo --help')"


def add_parser(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    # Listed for help only: main() hands everything after "demo" to the demo before parsing.
    sub.add_parser("demo", help=HELP, description=HELP, add_help=False)


def passthrough(argv: list[str]) -> int:
    from valori_store.cli import demo

    code = demo.main(list(argv))
    return int(code or 0)
