"""Build an R2R client from credentials and the engine's settings (timeouts, retry budget)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials
from onyx.r2r_sender.token_store import TokenStore

MAX_CONNECTIONS = 64  # per R2R server and process


def make_client(
    credentials: R2RCredentials,
    settings: BridgeSettings,
    *,
    event_hooks: Mapping[str, list[Callable[..., Any]]] | None = None,
    token_store: TokenStore | None = None,
    max_connections: int = MAX_CONNECTIONS,
) -> R2RClient:
    """A pooled R2R client for *credentials* with the settings' timeouts and retry budget.

    *token_store* shares a login's token between processes (:class:`~onyx.r2r_sender.token_store.FileTokenStore`).
    *event_hooks* are httpx's (``{"request": [...], "response": [...]}``), e.g. to count
    requests as they happen.
    """
    return R2RClient(
        credentials.base_url,
        credentials.api_key.get() or None,
        email=credentials.email or None,
        password=credentials.password.get() or None,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retry_max_time=settings.client_retry_max_time,
        # a worker applies claim_batch documents per drain thread side by side, and a
        # document with many new principals creates collections concurrently
        max_connections=max_connections,
        event_hooks=event_hooks,
        token_store=token_store,
    )
