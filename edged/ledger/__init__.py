"""The electronic ledger (电子台账): tamper-evident passage records, audit trail, reports.

Rows are append-only and hash-chained (:mod:`edged.ledger.chain`); the store
(:mod:`edged.ledger.store`) is the one writer; :mod:`edged.ledger.verify`
proves a database unaltered; reports, export and retention sit on top.
"""

from edged.ledger.record import Approval, PassageRecord, Snapshot
from edged.ledger.store import LedgerFullError, LedgerStore

__all__ = ["Approval", "LedgerFullError", "LedgerStore", "PassageRecord", "Snapshot"]
