"""Shared fixtures for the LlamaIndex conformance suite.

``use_async`` runs every test body twice: once through the sync API, once through the
async one (``call`` picks ``add``/``async_add``, ``query``/``aquery``...), as chroma's
integration suite does.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

if importlib.util.find_spec("llama_index") is None or importlib.util.find_spec("llama_index.core") is None:
    collect_ignore_glob = ["test_*.py"]  # llama-index-core not installed: nothing to conform
else:
    from llama_index.core import Settings
    from llama_index.core.llms import MockLLM

ASYNC_NAMES = {
    "add": "async_add",
    "delete": "adelete",
    "delete_nodes": "adelete_nodes",
    "get_nodes": "aget_nodes",
    "clear": "aclear",
    "query": "aquery",
}


@pytest.fixture(autouse=True)
def _offline_settings() -> Any:
    """No network: a mock LLM (no OpenAI default) for anything that asks Settings."""
    previous = Settings._llm
    Settings.llm = MockLLM()
    yield
    Settings._llm = previous


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def use_async(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def call(use_async: bool) -> Callable[..., Awaitable[Any]]:
    """``await call(store, "query", q)`` runs the sync method or its async twin."""

    async def run(store: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        if use_async:
            return await getattr(store, ASYNC_NAMES[name])(*args, **kwargs)
        return getattr(store, name)(*args, **kwargs)

    return run
