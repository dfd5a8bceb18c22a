"""The PostgreSQL ledger keeps the host-facing contract (the same checks the in-memory
twin passes in ``unit/test_memory_ledger.py``); applying goes through a real claim and
finalise, as a worker does."""

from __future__ import annotations

import uuid

import pytest
from ledger_contract import CHECKS

from onyx.r2r_sender.ledger import Ledger, LockSession, Outcome

pytestmark = pytest.mark.integration


def _apply(ledger: Ledger, tenant: str, doc_id: str, r2r_id: uuid.UUID | None) -> None:
    with LockSession(ledger.engine) as locks:
        claims = [c for c in ledger.claim(locks, tenant, 100) if c.document_id == doc_id]
        assert claims, f"{doc_id} was not due"
        claim = claims[0]
        outcome = Outcome(
            r2r_id=r2r_id,
            version=None if r2r_id is None else claim.desired_version,
            deleted=r2r_id is None,
            labels=claim.desired_labels,
            collections=[],
        )
        assert ledger.finalize_success(locks, claim, outcome)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_postgres_ledger_keeps_the_contract(check, settings, tenant_id) -> None:
    check(Ledger.from_settings(settings), tenant_id, _apply)
