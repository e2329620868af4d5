"""Validation of record ids and texts (what the store accepts before anything changes).

Ids are non-empty str, valid Unicode (no lone surrogates), at most :data:`MAX_ID_BYTES`
bytes of UTF-8; texts are str or None, valid Unicode.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from valori_store.errors import IdError, InputError, MetadataError
from valori_store.spec.numbers import MAX_ID_BYTES

__all__ = ["MAX_ID_BYTES", "MAX_NAME_BYTES", "check_id", "check_id_list", "check_ids", "check_name_text", "check_text"]


def check_text(text: Any, position: int) -> str | None:
    """Return the text if it is str or None, else raise MetadataError."""
    if text is None or type(text) is str:
        if text is not None:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise MetadataError(f"text #{position} is not valid Unicode (lone surrogate?)") from None
        return text
    raise MetadataError(f"text #{position} must be a str or None, got {type(text).__name__}")


def check_id(record_id: Any, position: int | None = None) -> str:
    """Return the id if it is a non-empty str encodable as UTF-8, else raise IdError."""
    where = f"id #{position}" if position is not None else "id"
    if type(record_id) is not str:
        raise IdError(f"{where} must be a str, got {type(record_id).__name__} ({record_id!r})")
    if not record_id:
        raise IdError(f"{where} is empty; ids must be non-empty strings")
    try:
        encoded = record_id.encode("utf-8")
    except UnicodeEncodeError:
        raise IdError(f"{where} {record_id!r} is not valid Unicode (lone surrogate?)") from None
    if len(encoded) > MAX_ID_BYTES:
        raise IdError(f"{where} is {len(encoded)} bytes long; the limit is {MAX_ID_BYTES}")
    return record_id


def check_ids(ids: Sequence[Any]) -> list[str]:
    """Validate a batch of ids at once (fast path), falling back to check_id for the message."""
    out = list(ids)
    if all(type(i) is str and i for i in out):
        try:
            encoded = "\x00".join(out).encode("utf-8")  # one pass checks every id's Unicode
        except UnicodeEncodeError:
            pass
        else:
            # a code point is at most 4 UTF-8 bytes: the first bound avoids encoding each id
            if (len(encoded) <= MAX_ID_BYTES or 4 * max(map(len, out)) <= MAX_ID_BYTES
                    or max(len(i.encode("utf-8")) for i in out) <= MAX_ID_BYTES):
                return out
    return [check_id(i, n) for n, i in enumerate(out)]


def check_id_list(ids: Any, what: str = "ids") -> list[str]:
    """Validate an iterable of ids (a lone str is rejected: wrap it in a list)."""
    if isinstance(ids, (str, bytes)) or not isinstance(ids, Iterable):
        raise InputError(f"{what} must be a list of str, got {type(ids).__name__}")
    return check_ids(list(ids))


#: Longest checkpoint label or note topic, in UTF-8 bytes.
MAX_NAME_BYTES = 4096


def check_name_text(text: Any, what: str) -> str:
    """A checkpoint label or note topic: a str of valid Unicode, at most MAX_NAME_BYTES."""
    if type(text) is not str:
        raise InputError(f"{what} must be a str, got {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InputError(f"{what} {text!r} is not valid Unicode (lone surrogate?)") from None
    if size > MAX_NAME_BYTES:
        raise InputError(f"{what} is {size} bytes long; the limit is {MAX_NAME_BYTES}")
    return text
