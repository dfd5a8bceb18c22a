"""Build an R2R client from credentials and the engine's settings (timeouts, retry budget)."""

from __future__ import annotations

from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials


def make_client(credentials: R2RCredentials, settings: BridgeSettings) -> R2RClient:
    """A pooled R2R client for *credentials* with the settings' timeouts and retry budget."""
    return R2RClient(
        credentials.base_url,
        credentials.api_key.get() or None,
        email=credentials.email or None,
        password=credentials.password.get() or None,
        connect_timeout=settings.connect_timeout,
        read_timeout=settings.read_timeout,
        retry_max_time=settings.client_retry_max_time,
    )
