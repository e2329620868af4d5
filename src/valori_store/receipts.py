"""Retrieval receipts (the documented import path): the value, recording, and verification.

See :mod:`valori_store.query.receipt` (what a receipt holds, how searches emit them) and
:mod:`valori_store.history.receipt_check` (re-execution at the recorded state).
"""

from valori_store.history.receipt_check import (
    STATUSES,
    ReceiptCheck,
    verify_receipt,
    verify_receipt_proofs,
    verify_receipts,
)
from valori_store.query.receipt import RECEIPT_VERSION, Receipt, record_receipts

__all__ = ["RECEIPT_VERSION", "STATUSES", "Receipt", "ReceiptCheck", "record_receipts", "verify_receipt",
           "verify_receipt_proofs", "verify_receipts"]
