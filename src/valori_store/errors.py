"""The package's error hierarchy.

Every error raised on purpose by valori-store derives from :class:`ValoriError`.
Input errors also derive from :class:`ValueError` (and lookup misses from
:class:`KeyError`) so that framework code catching the builtin types keeps working.
Messages say what was wrong and what to do about it.
"""

from __future__ import annotations


class ValoriError(Exception):
    """Base class of every error raised by valori-store."""


class InputError(ValoriError, ValueError):
    """An argument has the wrong type, shape, length or value."""


class VectorError(InputError):
    """A vector cannot be stored or searched (NaN, inf, not numeric...)."""


class DimensionError(VectorError):
    """A vector's length differs from the store's dimension."""


class RangeError(VectorError):
    """A component lies outside the Q16.16 range [-32768, 32768 - 2**-16]."""


class ZeroVectorError(VectorError):
    """A zero vector was given to a cosine store (it has no direction)."""


class IdError(InputError):
    """An id is not a non-empty string, or an id appears twice in one batch."""


class MetadataError(InputError):
    """Metadata or text is not JSON-native (str, int, float, bool, None, list, str-keyed dict)."""


class FilterError(InputError):
    """A filter does not follow the filter language (see docs/filters.md)."""


class NotFoundError(ValoriError, KeyError):
    """A checkpoint, label, sequence number or path does not exist."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class CorruptFileError(ValoriError):
    """A snapshot or log file fails a length, checksum or hash-chain check."""


class FormatVersionError(CorruptFileError):
    """A file was written by an unknown (newer) format or numeric spec version."""


class StorageError(ValoriError, OSError):
    """The operating system failed a write, fsync, rename or truncate of a store's files
    (an I/O error, a read-only file system...). Also an :class:`OSError`: ``errno``,
    ``strerror`` (which says what was being done) and ``filename`` are set. The call that
    raised it changed nothing it had not already acknowledged (see docs/store.md)."""


class DiskFullError(StorageError):
    """No space left on the device or quota (ENOSPC, EDQUOT), or a file would grow past
    the file system's limit (EFBIG). Nothing was written; free space and retry."""


class LockedError(ValoriError):
    """Another writer holds the store directory's lock."""


class ClosedError(ValoriError):
    """The store was closed; open it again to use it."""


class ReadOnlyError(ValoriError):
    """A mutation was attempted on a store opened read-only."""
