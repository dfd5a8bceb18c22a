"""Fixtures shared by the integration tests (the root conftest has the stack, settings and
worker fixtures).  Everything here talks to the real stack."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from engine_checks import make_r2r, purging
from r2r_users import User, bearer

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


log = logging.getLogger(__name__)


@pytest.fixture
def admin(stack: dict[str, str]) -> dict[str, str]:
    return bearer(stack["R2R_BASE_URL"], stack["R2R_ADMIN_EMAIL"], stack["R2R_ADMIN_PASSWORD"])


@pytest.fixture
def make_user(stack: dict[str, str], admin: dict[str, str]) -> Iterator:
    """Creates verified users with the given superuser flag and max_chunks; removes them."""
    base = stack["R2R_BASE_URL"]
    made: list[User] = []

    def make(*, superuser: bool, max_chunks: int) -> User:
        email = f"patch-{uuid.uuid4().hex[:12]}@example.com"
        password = f"pw-{uuid.uuid4().hex}"
        created = httpx.post(
            f"{base}/v3/users",
            json={"email": email, "password": password, "is_verified": True},
            headers=admin,
            timeout=60,
        )
        assert created.status_code == 200, created.text
        user_id = created.json()["results"]["id"]
        updated = httpx.post(
            f"{base}/v3/users/{user_id}",
            json={"is_superuser": superuser, "limits_overrides": {"max_chunks": max_chunks}},
            headers=admin,
            timeout=60,
        )
        assert updated.status_code == 200, updated.text
        assert updated.json()["results"]["is_superuser"] is superuser
        user = User(user_id, email, password, bearer(base, email, password))
        made.append(user)
        return user

    yield make
    for user in made:
        listed = httpx.get(
            f"{base}/v3/documents",
            params={"limit": 100, "owner_only": True},
            headers=user.headers,
            timeout=60,
        )
        for doc in listed.json().get("results", []) if listed.status_code == 200 else []:
            httpx.delete(f"{base}/v3/documents/{doc['id']}", headers=admin, timeout=60)
        deleted = httpx.request(
            "DELETE", f"{base}/v3/users/{user.id}", json={}, headers=admin, timeout=60
        )
        if deleted.status_code != 200:
            log.warning("could not delete test user %s: %s", user.email, deleted.text[:200])
