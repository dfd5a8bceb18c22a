"""The desired-state ledger in PostgreSQL (schema ``r2r_bridge``): all of its SQL lives here.

* :mod:`.store`: :class:`Ledger` (the host protocol
  :class:`~onyx.r2r_sender.desired_state.DesiredStateLedger`, workers' claims and
  finalisation, operators' counts, dead letters and replays) and :class:`LockSession`;
* :mod:`.ops`: the engine jobs' queries (reconciliation marks, cursors, runs);
* :mod:`.models`: the tables; :mod:`.migrate` and ``migrations/``: alembic.
"""

from onyx.r2r_sender.applier import Outcome
from onyx.r2r_sender.desired_state import DesiredState, RecordResult
from onyx.r2r_sender.ledger.store import (
    LOCK_CLASS,
    Claim,
    DeadLetter,
    Ledger,
    LockSession,
    get_engine,
)

__all__ = [
    "LOCK_CLASS",
    "Claim",
    "DeadLetter",
    "DesiredState",
    "Ledger",
    "LockSession",
    "Outcome",
    "RecordResult",
    "get_engine",
]
