"""Fixtures shared by the integration tests (the root conftest has the stack, settings and
worker fixtures).  Everything here talks to the real stack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from engine_checks import make_r2r, purging

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.ledger import Ledger


@pytest.fixture
def ledger(settings) -> Ledger:
    """The PostgreSQL ledger on the test database."""
    return Ledger.from_settings(settings)


@pytest.fixture
def r2r(settings) -> Iterator[R2RClient]:
    """A patient R2R client logged in like the workers (for the test's own reads)."""
    with make_r2r(settings) as client:
        yield client


@pytest.fixture
def purge(settings, ledger, tmp_path) -> Iterator[list[str]]:
    """Tenants appended to the yielded list lose their R2R documents and collections after
    the test; its private queue is dropped and stray workers reaped (request it before
    ``workers``)."""
    yield from purging(settings, ledger, tmp_path)
