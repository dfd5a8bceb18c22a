"""R2R users for tests: a login's bearer header and the users a test creates (real R2R)."""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass
class User:
    id: str
    email: str
    password: str
    headers: dict[str, str]


def bearer(base: str, email: str, password: str) -> dict[str, str]:
    response = httpx.post(
        f"{base}/v3/users/login", data={"username": email, "password": password}, timeout=60
    )
    response.raise_for_status()
    return {"Authorization": f"Bearer {response.json()['results']['access_token']['token']}"}
