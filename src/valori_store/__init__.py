"""valori-store: a deterministic vector memory for AI applications.

Vectors become Q16.16 integers, search is exact integer arithmetic under a total order
(score descending, then id ascending), and every change is an event in a hash-chained
log, so states, snapshots and results are bit-identical on every machine.
"""

from __future__ import annotations

from valori_store.api import ReadOnlyStore, StateView, ValoriStore, open_readonly
from valori_store.errors import (
    ClosedError,
    CorruptFileError,
    DimensionError,
    DiskFullError,
    FilterError,
    FormatVersionError,
    IdError,
    InputError,
    LockedError,
    MetadataError,
    NotFoundError,
    RangeError,
    ReadOnlyError,
    StorageError,
    ValoriError,
    VectorError,
    ZeroVectorError,
)
from valori_store.history.migrate import Migration, migrate
from valori_store.history.verify import VerifyReport, verify
from valori_store.query.proof import ProofCheck, StateProof, verify_proof
from valori_store.records import Annotation, Checkpoint, Hit, Record
from valori_store.spec import SPEC_VERSION

__version__ = "0.1.0"

__all__ = [
    "SPEC_VERSION",
    "Annotation",
    "Checkpoint",
    "ClosedError",
    "CorruptFileError",
    "DimensionError",
    "DiskFullError",
    "FilterError",
    "FormatVersionError",
    "Hit",
    "IdError",
    "InputError",
    "LockedError",
    "Migration",
    "MetadataError",
    "NotFoundError",
    "RangeError",
    "ReadOnlyError",
    "ReadOnlyStore",
    "Record",
    "StateView",
    "StorageError",
    "ValoriError",
    "ValoriStore",
    "VectorError",
    "VerifyReport",
    "ZeroVectorError",
    "ProofCheck",
    "StateProof",
    "migrate",
    "open_readonly",
    "verify",
    "verify_proof",
]
