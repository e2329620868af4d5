"""Core record ids for LangGraph items: injective, order-preserving and decodable.

Every item ``(namespace, key)`` owns one *item record* and zero or more *vector records*.
Their core ids are built so that the core's total order (ids as UTF-8 bytes) sorts items
exactly like Python sorts ``(namespace_tuple, key)``: search ties, the no-query order and
the namespace listing follow from it.

Encoding: each string goes through :func:`_escape`, an order-preserving, prefix-free
code that maps ``\\x00 \\x01 \\x02`` to two-character codes starting with ``\\x02``
and every other character to itself. Labels are joined with ``\\x01``, the namespace
ends with ``\\x00``, then the escaped key, ``\\x00`` and a kind suffix. A separator is
always smaller than the first character of any code, so a shorter namespace (or key)
sorts before every longer one sharing its prefix, as tuples do. A raw ``\\x00`` only
ever appears as a separator, so :func:`decode_item` reads an id back unambiguously.

Stores written by valori-store 0.1 also hold one *namespace record* per non-empty
namespace (:func:`legacy_namespace_id`); the current layout derives namespaces from the
item records instead and deletes such a record when a batch writes to its namespace.
"""

from __future__ import annotations

from valori_store.errors import IdError
from valori_store.state.validate import MAX_ID_BYTES

_ESCAPES = {"\x00": "\x02\x01", "\x01": "\x02\x02", "\x02": "\x02\x03"}
_TABLE = str.maketrans(_ESCAPES)
_UNESCAPES = {code[1]: char for char, code in _ESCAPES.items()}

ITEM_SUFFIX = "i"
VECTOR_SUFFIX = "v"
NAMESPACE_PREFIX = "\x00n\x00"  # 0.1 namespace records; no item id starts with \x00


def _escape(text: str) -> str:
    return text.translate(_TABLE)


def _unescape_labels(text: str) -> list[str]:
    """The labels of an encoded namespace (or the single label of an encoded key), read left
    to right: ``\x02`` starts a two-character code, a bare ``\x01`` separates labels."""
    labels: list[str] = []
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\x02":
            code = text[i + 1: i + 2]
            if code not in _UNESCAPES:
                raise IdError(f"{text!r} is not an encoded LangGraph namespace or key")
            out.append(_UNESCAPES[code])
            i += 2
            continue
        if ch == "\x01":
            labels.append("".join(out))
            out = []
        else:
            out.append(ch)
        i += 1
    labels.append("".join(out))
    return labels


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


def namespace_text(record_id: str) -> str:
    """The encoded namespace of an item or vector record id (cheap: no unescaping).

    Equal namespaces give equal texts, and the texts sort like the namespaces."""
    return record_id[: record_id.index("\x00")]


def decode_namespace(text: str) -> tuple[str, ...]:
    """The namespace tuple of a :func:`namespace_text`."""
    if "\x02" not in text:  # nothing escaped: every \x01 separates labels
        return tuple(text.split("\x01"))
    return tuple(_unescape_labels(text))


def decode_item(record_id: str) -> tuple[tuple[str, ...], str, str]:
    """``(namespace, key, suffix)`` of an item or vector record id (suffix ``"i"`` or
    ``"v<ordinal>"``); IdError for an id this module did not build."""
    parts = record_id.split("\x00")
    if len(parts) != 3 or not parts[0] or not parts[2]:
        raise IdError(f"{record_id!r} is not a LangGraph item or vector record id")
    key = _unescape_labels(parts[1])
    if len(key) != 1:
        raise IdError(f"{record_id!r} is not a LangGraph item or vector record id")
    return decode_namespace(parts[0]), key[0], parts[2]


def legacy_namespace_id(namespace: tuple[str, ...]) -> str | None:
    """Id of the 0.1 namespace record of ``namespace`` (None when it could not exist:
    longer than the id limit)."""
    record_id = NAMESPACE_PREFIX + _namespace_part(namespace)
    return None if len(record_id.encode("utf-8", "surrogatepass")) > MAX_ID_BYTES else record_id
