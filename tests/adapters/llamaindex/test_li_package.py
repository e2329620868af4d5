"""Packaging: the core never imports LlamaIndex; the thin ecosystem package re-exports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
THIN = ROOT / "integrations" / "llamaindex" / "llama-index-vector-stores-valori"


def _run(code: str, *paths: Path) -> subprocess.CompletedProcess[str]:
    env_path = [str(ROOT / "src"), *map(str, paths)]
    prelude = f"import sys; sys.path[:0] = {env_path!r}\n"
    return subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=120)


def test_import_valori_store_does_not_import_llama_index() -> None:
    out = _run("import valori_store, valori_store.store\nprint(sorted(m for m in sys.modules if 'llama' in m))")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_thin_package_is_a_namespace_re_export() -> None:
    pytest.importorskip("llama_index.core")
    assert not (THIN / "llama_index" / "__init__.py").exists()
    assert not (THIN / "llama_index" / "vector_stores" / "__init__.py").exists()
    out = _run(
        "from llama_index.vector_stores.valori import ValoriVectorStore\n"
        "import valori_store.llamaindex as impl, llama_index.core\n"
        "assert ValoriVectorStore is impl.ValoriVectorStore\n"
        "print(ValoriVectorStore(dim=2).class_name())",
        THIN,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ValoriVectorStore"


def test_thin_package_declares_its_distribution() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    meta = tomllib.loads((THIN / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "llama-index-vector-stores-valori"
    assert meta["build-system"]["build-backend"] == "hatchling.build"
    assert meta["tool"]["hatch"]["build"]["targets"]["wheel"]["include"] == ["llama_index/vector_stores/valori/"]
