"""Core record ids for LangGraph items: injective and order-preserving.

Every item ``(namespace, key)`` owns one *item record* and zero or more *vector records*;
every non-empty namespace owns one *namespace record*. Their core ids are built so that
the core's total order (ids as UTF-8 bytes) sorts items exactly like Python sorts
``(namespace_tuple, key)``: search ties and the no-query order follow from it.

Encoding: each string goes through :func:`_escape`, an order-preserving, prefix-free
code that maps ``\\x00 \\x01 \\x02`` to two-character codes starting with ``\\x02``
and every other character to itself. Labels are joined with ``\\x01``, the namespace
ends with ``\\x00``, then the escaped key, ``\\x00`` and a kind suffix. A separator is
always smaller than the first character of any code, so a shorter namespace (or key)
sorts before every longer one sharing its prefix, as tuples do.
"""

from __future__ import annotations

from valori_store.errors import IdError
from valori_store.format.canonical import MAX_ID_BYTES

_ESCAPES = {"\x00": "\x02\x01", "\x01": "\x02\x02", "\x02": "\x02\x03"}
_TABLE = str.maketrans(_ESCAPES)

ITEM_SUFFIX = "i"
VECTOR_SUFFIX = "v"
NAMESPACE_PREFIX = "\x00n\x00"  # no item id starts with \x00 (labels are non-empty, escaped)


def _escape(text: str) -> str:
    return text.translate(_TABLE)


def _namespace_part(namespace: tuple[str, ...]) -> str:
    return "\x01".join(_escape(label) for label in namespace) + "\x00"


def _checked(record_id: str, namespace: tuple[str, ...], key: str | None) -> str:
    size = len(record_id.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        what = f"namespace {namespace!r}" + ("" if key is None else f" with key {key[:40]!r}...")
        raise IdError(
            f"{what} needs a {size}-byte record id; the limit is {MAX_ID_BYTES} bytes: "
            f"use shorter namespace labels or keys"
        )
    return record_id


def item_prefix(namespace: tuple[str, ...], key: str) -> str:
    """The part shared by an item's item record and vector records."""
    return _namespace_part(namespace) + _escape(key) + "\x00"


def item_id(namespace: tuple[str, ...], key: str) -> str:
    """Id of the item record of ``(namespace, key)``."""
    return _checked(item_prefix(namespace, key) + ITEM_SUFFIX, namespace, key)


def vector_id(namespace: tuple[str, ...], key: str, ordinal: int) -> str:
    """Id of the ``ordinal``-th vector record of ``(namespace, key)`` (0-based)."""
    return _checked(f"{item_prefix(namespace, key)}{VECTOR_SUFFIX}{ordinal}", namespace, key)


def namespace_id(namespace: tuple[str, ...]) -> str:
    """Id of the namespace record of ``namespace``."""
    return _checked(NAMESPACE_PREFIX + _namespace_part(namespace), namespace, None)
