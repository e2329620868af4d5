"""How LangGraph items live in core records (the core store is the only persistence).

Two record kinds, told apart by the metadata key ``lg:kind``:

* ``item`` — one per item, a record *without a vector* (``ValoriStore.upsert_plain``):
  text = the value as JSON (key order kept), metadata = the namespace, key, timestamps,
  number of vector records and the *value fields*. Listings (searches without a query,
  unscored items) and namespaces are read from these with ``ValoriStore.select``.
* ``vec`` — one per embedded text of an item: text = that text, vector = its embedding,
  metadata = namespace, key, the field path, and the same value fields (so a value filter
  applies to vector records inside the core search, before top-k).

Namespaces are not stored: they are the distinct namespaces of the item records (decoded
from their ids, :mod:`._ids`), so a namespace exists exactly while it holds an item.

Value fields: every node reachable from the value through dicts is stored under the key
``"v:" + JSON(path)`` (``v:["a"]``, ``v:["a","b"]``...), and ``lg:dicts`` lists the
paths of the nodes that are dicts. Nested filters address those keys directly.

Stores written by valori-store 0.1 differ in two ways, both read transparently: item
records carry the unit vector ``e0`` (never ranked: searches only rank ``vec`` records;
rewriting an item makes it a record without a vector), and each non-empty namespace has a
*namespace record* (kind ``ns``, :data:`LEGACY_NS`) that every read ignores and that a
batch writing to its namespace deletes in the same event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from valori_store.errors import InputError, MetadataError
from valori_store.format.canonical import canonical_json

KIND = "lg:kind"
NS = "lg:ns"
KEY = "lg:key"
DEPTH = "lg:depth"
CREATED = "lg:created"
UPDATED = "lg:updated"
NVEC = "lg:nvec"
PATH = "lg:path"
DICTS = "lg:dicts"

ITEM, VEC = "item", "vec"
LEGACY_NS = "ns"  # kind of the 0.1 namespace records (never read, deleted on write)


def level_key(i: int) -> str:
    """Metadata key of namespace label ``i`` counted from the front."""
    return f"lg:n{i}"


def field_key(path: tuple[str, ...] | list[str]) -> str:
    """Metadata key of the value node at ``path``."""
    return "v:" + path_text(path)


def path_text(path: tuple[str, ...] | list[str]) -> str:
    return json.dumps(list(path), ensure_ascii=False, separators=(",", ":"))


def check_value(value: Any, namespace: tuple[str, ...], key: str) -> dict[str, Any]:
    """A JSON-native dict copy of ``value`` or a MetadataError naming the item."""
    if not isinstance(value, Mapping):
        raise InputError(f"the value of item {namespace!r}/{key!r} must be a dict, got {type(value).__name__}")
    value = dict(value)
    try:
        canonical_json(value)
    except MetadataError as exc:
        raise MetadataError(f"the value of item {namespace!r}/{key!r} is not JSON-native: {exc}") from None
    return value


def value_fields(value: dict[str, Any]) -> dict[str, Any]:
    """The ``v:`` fields and the sorted ``lg:dicts`` list of a (checked) value."""
    fields: dict[str, Any] = {}
    dicts: list[str] = []

    def walk(node: dict[str, Any], path: tuple[str, ...]) -> None:
        for k, v in node.items():
            here = (*path, k)
            fields[field_key(here)] = v
            if type(v) is dict:
                dicts.append(path_text(here))
                walk(v, here)

    walk(value, ())
    fields[DICTS] = sorted(dicts)
    return fields


def location(namespace: tuple[str, ...], key: str) -> dict[str, Any]:
    """Namespace and key fields shared by item and vector records."""
    meta: dict[str, Any] = {NS: list(namespace), KEY: key, DEPTH: len(namespace)}
    for i, label in enumerate(namespace):
        meta[level_key(i)] = label
    return meta


def item_metadata(
    namespace: tuple[str, ...], key: str, fields: dict[str, Any], created: datetime, updated: datetime, nvec: int
) -> dict[str, Any]:
    meta = {KIND: ITEM, **location(namespace, key), CREATED: created.isoformat(), UPDATED: updated.isoformat(),
            NVEC: nvec}
    meta.update(fields)
    return meta


def vec_metadata(namespace: tuple[str, ...], key: str, fields: dict[str, Any], path: str) -> dict[str, Any]:
    meta = {KIND: VEC, **location(namespace, key), PATH: path}
    meta.update(fields)
    return meta


def value_text(value: dict[str, Any]) -> str:
    """The value as JSON text, keys in the caller's order (what ``get`` returns)."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text)
