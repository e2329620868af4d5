"""Canonical encoding of metadata (and note bodies): validation, encoding, decoding.

Metadata is JSON-native: str, int, float, bool, None, lists and str-keyed dicts, nested.
Its canonical form is JSON with sorted keys, no whitespace, UTF-8, NaN/inf forbidden.
Other types (tuples, sets, bytes, numpy scalars, datetimes...) are rejected with a
MetadataError naming the path: converting them silently would not round-trip exactly.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from itertools import chain, repeat
from typing import Any

from valori_store.errors import MetadataError

#: Largest encoded metadata (the formats store u32 lengths; 0xFFFFFFFF marks "no text").
MAX_FIELD_BYTES = (1 << 32) - 2


#: Deepest nesting accepted in metadata (deeper is almost always a cycle).
MAX_DEPTH = 64


#: Integers in metadata, note bodies and filters have at most this many decimal digits
#: (Python's default int-to-str limit; fixed here so the accepted values never depend on a
#: process's sys.set_int_max_str_digits setting).
MAX_INT_DIGITS = 4300
_INT_LIMIT = 10**MAX_INT_DIGITS


def check_int(value: int, path: str) -> None:
    """MetadataError for an integer of more than MAX_INT_DIGITS decimal digits."""
    if value.bit_length() > 14000 and abs(value) >= _INT_LIMIT:
        raise MetadataError(f"metadata value at {path} is an integer of more than {MAX_INT_DIGITS} digits")


def _check_json(value: Any, path: str, depth: int = 0) -> None:
    """Raise MetadataError unless ``value`` is JSON-native (exact types, finite floats,
    integers of at most MAX_INT_DIGITS digits)."""
    if depth > MAX_DEPTH:
        raise MetadataError(f"metadata at {path} is nested more than {MAX_DEPTH} levels deep (a cycle?)")
    t = type(value)
    if t is int:
        check_int(value, path)
        return
    if value is None or t is str or t is bool:
        return
    if t is float:
        if not math.isfinite(value):
            raise MetadataError(f"metadata value at {path} is {value!r}; NaN and infinity are not JSON")
        return
    if t is list:
        for i, item in enumerate(value):
            _check_json(item, f"{path}[{i}]", depth + 1)
        return
    if t is dict:
        for key, item in value.items():
            if type(key) is not str:
                raise MetadataError(f"metadata key {key!r} at {path} must be a str, got {type(key).__name__}")
            _check_json(item, f"{path}.{key}", depth + 1)
        return
    raise MetadataError(
        f"metadata value at {path} has type {t.__name__}; use str, int, float, bool, None, "
        f"list or dict (convert it yourself, e.g. tuple -> list, datetime -> ISO string)"
    )


#: One reusable encoder (json.dumps with options builds a new encoder per call).
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _make_flat_encoder() -> tuple[Callable[[dict[str, Any], int], Any], Callable[[dict[str, Any]], str]]:
    """CPython's C encoder with the canonical options, built once (same output as _ENCODER):
    (chunk encoder ``f(value, 0) -> list of str``, ``encode(value) -> str``).

    Used only for flat dicts of scalars (no cycles possible; ``allow_nan`` is off, so NaN
    and infinity raise ValueError); falls back to _ENCODER where the C accelerator is missing.
    """
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:  # pragma: no cover - not CPython
        return (lambda value, _level: [_ENCODER.encode(value)]), _ENCODER.encode
    c_encode = make(None, None, json.encoder.encode_basestring, None, ":", ",", True, False, False)

    def flat_encode(value: dict[str, Any]) -> str:
        chunks = c_encode(value, 0)
        return chunks[0] if len(chunks) == 1 else "".join(chunks)
    return c_encode, flat_encode


_FLAT_CHUNKS, _FLAT_ENCODE = _make_flat_encoder()


def _flat_encode_checked(metadata: dict[str, Any], position: int) -> str:
    """The flat encoder's text, with the integer limit enforced (an encoding longer than
    MAX_INT_DIGITS is checked value by value; the encoder itself may refuse first)."""
    try:
        text = _FLAT_ENCODE(metadata)
    except ValueError:
        text = None
    if text is None or len(text) > MAX_INT_DIGITS:
        try:
            _check_json(metadata, "$")
        except MetadataError as exc:
            raise MetadataError(f"metadata #{position}: {exc}") from None
        if text is None:
            raise MetadataError(f"metadata #{position} cannot be encoded as JSON")
    return text


def canonical_json(value: Any) -> bytes:
    """Canonical UTF-8 JSON bytes of a JSON-native value (validated first)."""
    _check_json(value, "$")
    return _utf8(_ENCODER.encode(value))


def _utf8(text: str, where: str = "metadata") -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MetadataError(f"{where} contains a string that is not valid Unicode (a lone surrogate?)") from None


_SCALARS = (str, int, bool, type(None))


def _flat_and_plain(metadata: dict[Any, Any]) -> bool:
    """True for the common case: str keys and str/int/bool/None/finite-float values."""
    for key, value in metadata.items():
        if type(key) is not str:
            return False
        t = type(value)
        if t in _SCALARS:
            continue
        if t is float and value - value == 0.0:  # finite (NaN and inf give NaN)
            continue
        return False
    return True


def canonical_metadata(metadata: Any, position: int) -> bytes:
    """Canonical bytes of one record's metadata; ``None`` means ``{}``."""
    if metadata is None:
        return b"{}"
    if type(metadata) is dict and _flat_and_plain(metadata):
        out = _utf8(_flat_encode_checked(metadata, position), f"metadata #{position}")
        if len(out) > MAX_FIELD_BYTES:
            raise MetadataError(f"metadata #{position} is larger than 4 GiB encoded")
        return out
    if not isinstance(metadata, Mapping):
        raise MetadataError(f"metadata #{position} must be a dict, got {type(metadata).__name__}")
    if type(metadata) is not dict:
        metadata = dict(metadata)
    try:
        out = canonical_json(metadata)
    except MetadataError as exc:
        raise MetadataError(f"metadata #{position}: {exc}") from None
    if len(out) > MAX_FIELD_BYTES:
        raise MetadataError(f"metadata #{position} is larger than 4 GiB encoded")
    return out


#: Exact value types of the batch fast path (floats are checked finite by the encoder).
_FLAT_TYPES = frozenset((str, int, bool, float, type(None)))


def canonical_metadata_batch(metadatas: Sequence[Any]) -> list[bytes]:
    """``[canonical_metadata(m, k) for k, m in enumerate(metadatas)]``, faster.

    When every entry is a flat dict with str keys and plain scalar values (the common
    case), the whole batch is type-checked and encoded by C-level iteration (no Python
    code per record). Anything else goes record by record, where
    :func:`canonical_metadata` also raises the precise error.
    """
    batch = metadatas if type(metadatas) is list else list(metadatas)
    if _all_flat(batch):
        try:
            out = list(map(str.encode, map("".join, map(_FLAT_CHUNKS, batch, repeat(0)))))
        except (ValueError, UnicodeEncodeError):  # NaN/inf, too long integers, lone surrogates
            pass
        else:
            if not out or max(map(len, out)) <= MAX_INT_DIGITS:  # longer ones: checked one by one
                return out
    return _metadata_one_by_one(batch)


def _all_flat(batch: list[Any]) -> bool:
    """Every entry is an exact dict with exact-str keys and values of :data:`_FLAT_TYPES`."""
    if not batch or set(map(type, batch)) != {dict}:
        return False
    if not set(map(type, chain.from_iterable(batch))) <= {str}:
        return False
    return set(map(type, chain.from_iterable(map(dict.values, batch)))) <= _FLAT_TYPES


def _metadata_one_by_one(metadatas: list[Any]) -> list[bytes]:
    out: list[bytes] = []
    add = out.append
    scalars = _SCALARS
    for k, m in enumerate(metadatas):
        if type(m) is dict:
            for key, value in m.items():
                t = type(value)
                if type(key) is not str or (t not in scalars and not (t is float and value - value == 0.0)):
                    add(canonical_metadata(m, k))
                    break
            else:
                data = _utf8(_flat_encode_checked(m, k), f"metadata #{k}")
                if len(data) > MAX_FIELD_BYTES:
                    raise MetadataError(f"metadata #{k} is larger than 4 GiB encoded")
                add(data)
        elif m is None:
            add(b"{}")
        else:
            add(canonical_metadata(m, k))
    return out


def is_canonical_metadata(blob: bytes) -> bool:
    """True if ``blob`` is exactly the canonical encoding of a JSON object."""
    try:
        value = json.loads(blob)
        return type(value) is dict and canonical_json(value) == blob
    except (ValueError, MetadataError, RecursionError):
        return False


#: One reusable decoder: ``raw_decode`` of the UTF-8 text skips json.loads' per-call
#: encoding detection (canonical blobs are UTF-8 JSON objects without surrounding space).
_DECODER = json.JSONDecoder()


def decode_metadata(blob: bytes) -> dict[str, Any]:
    """Fresh dict from canonical metadata bytes (callers may mutate it freely)."""
    text = str(blob, "utf-8")
    value, end = _DECODER.raw_decode(text)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)
    return value
