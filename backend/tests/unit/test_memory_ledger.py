"""The in-memory ledger twin keeps the host-facing contract (the same checks run on
PostgreSQL in ``integration/test_ledger_contract.py``)."""

from __future__ import annotations

import uuid

import pytest
from ledger_contract import CHECKS

from onyx.r2r_sender.memory_ledger import InMemoryLedger


def _apply(ledger: InMemoryLedger, tenant: str, doc_id: str, r2r_id: uuid.UUID | None) -> None:
    ledger.mark_applied(tenant, doc_id, r2r_id)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_in_memory_ledger_keeps_the_contract(check) -> None:
    check(InMemoryLedger(), f"t_{uuid.uuid4().hex[:8]}", _apply)
