"""Shaped ``context_chat_backend/network_em.py``: CCBE's embedding client, as far as the
overlay touches it.

``NetworkEmbeddings(app_config=…)`` keeps the config (no I/O); ``check_connection(origin)``
is v5.4.0's TCP probe of ``app_config.embedding.base_url`` (v5.3.0's client has none, and
v5.3 gates nothing on it). The overlay builds this client only for backends that embed with
it (``BackendSpec.uses_ccbe_embedder``); the real one is used by ``tests/ccbe_contract``.
"""

import logging
import socket
from urllib.parse import urlparse

from . import GENERATION

logger = logging.getLogger("ccb.network_em")
TCP_CONNECT_TIMEOUT = 2


class NetworkEmbeddings:
    def __init__(self, app_config):
        self.app_config = app_config

    if GENERATION == "5.4":

        def check_connection(self, check_origin: str) -> bool:
            parsed = urlparse(self.app_config.embedding.base_url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            try:
                with socket.create_connection((parsed.hostname, port), TCP_CONNECT_TIMEOUT):
                    return True
            except OSError as e:
                logger.warning("[%s] Embedding server is not reachable: %s", check_origin, e)
                return False
