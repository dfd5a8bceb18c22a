"""Can the chosen RAG backend take work? The worker threads' gate and the /init diagnosis.

* :class:`ConnectionGate` replaces the embedding-server probe CCBE's worker threads make
  before taking work from Nextcloud (``network_em.check_connection``): it asks the backend
  (:func:`context_chat_backend.backends.check_connection`). A down store or a scaffold leaves
  every queue untouched. Upstream's own pgvector keeps upstream's gates exactly: the
  embedding-server probe where upstream probes, nothing on the actions thread.
* :func:`diagnose` says in one line what keeps the backend from working (``""`` when
  nothing does); the ``POST /init`` job reports it to AppAPI.
* :func:`models_needed`: the models ``/init`` fetches for the chosen backend (no local
  embedding model when the backend does not embed with CCBE's embedding server).

CCBE's embedding client (``network_em.NetworkEmbeddings``) is built only for backends that
embed with it (``BackendSpec.uses_ccbe_embedder``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from .. import backends
from ..backends.contract import probe

__all__ = [
    "LOCAL_EMBEDDER_MODEL_SUFFIX",
    "ConnectionGate",
    "diagnose",
    "embedding_client",
    "models_needed",
]

logger = logging.getLogger("ccb.exapp")

LOCAL_EMBEDDER_MODEL_SUFFIX = ".gguf"
"""``save_path`` suffix of the local llama.cpp embedding server's model in CCBE's
``models_to_fetch`` (the multilingual-e5 GGUF; the only GGUF CCBE fetches)."""


def embedding_client(app_config: Any) -> Any:
    """CCBE's embedding client for *app_config* (``NetworkEmbeddings``; no I/O)."""
    from ..network_em import NetworkEmbeddings

    return NetworkEmbeddings(app_config=app_config)


class ConnectionGate:
    """What a CCBE worker thread asks before it takes work from Nextcloud.

    ``check_connection(origin)`` has the signature of the embedding client's probe it
    replaces. *upstream_gated*: whether upstream CCBE gates this thread on its embedding
    server (the files and request threads: yes; the actions thread: no). Only upstream's
    pgvector (``follows_contract=False``) looks at it; every other backend is asked
    itself, on every thread.
    """

    def __init__(self, app_config: Any, *, upstream_gated: bool = True) -> None:
        self.app_config = app_config
        self.upstream_gated = upstream_gated
        self._embedding: Any = None

    def _embedder(self) -> Any:
        if self._embedding is None:
            self._embedding = embedding_client(self.app_config)
        return self._embedding

    def check_connection(self, origin: str) -> bool:
        """Whether the thread *origin* may take work now. Never raises (a failure is
        ``False`` and logged)."""
        try:
            name, kwargs = self.app_config.vectordb
            spec = backends.spec_for(name)
            if not spec.follows_contract and not self.upstream_gated:
                return True
            embedding = self._embedder() if spec.uses_ccbe_embedder else None
        except Exception as e:  # noqa: BLE001 - a gate answers, it does not fail
            logger.warning("[%s] the RAG backend gate failed: %s", origin, e)
            return False
        if backends.check_connection(name, kwargs, origin, embedding):
            return True
        logger.info(
            "[%s] RAG backend %s cannot take work now: its queue is left untouched", origin, name
        )
        return False


def diagnose(app_config: Any, origin: str = "init") -> str:
    """``""`` when the chosen backend can work, else one line naming what is wrong.

    Construction errors (missing or invalid settings) are reported with their message; then
    the backend's own ``diagnose(origin) -> str`` when it has one (the contract's optional
    hook, e.g. "R2R at … refused the credentials"), else its ``check_connection``. Upstream's
    pgvector is not checked: upstream's ``/init`` checks nothing, and its local embedding
    server starts only once the app is enabled. Never raises; messages never hold secrets
    (backends keep them out of their errors).
    """
    try:
        name, kwargs = app_config.vectordb
        spec = backends.spec_for(name)
    except Exception as e:  # noqa: BLE001
        return str(e)
    if not spec.follows_contract:
        return ""
    try:
        embedding = embedding_client(app_config) if spec.uses_ccbe_embedder else None
        backend = backends.get_backend_class(name)(embedding, **dict(kwargs))
    except Exception as e:  # noqa: BLE001 - reported, not raised
        message = str(e) or type(e).__name__
        return message if message.startswith("RAG backend") else f"RAG backend {name}: {message}"
    hook = getattr(backend, "diagnose", None)
    if callable(hook):
        try:
            return str(hook(origin) or "")
        except Exception as e:  # noqa: BLE001
            return f"RAG backend {name}: the readiness check failed: {type(e).__name__}: {e}"
    if probe(backend, origin):
        return ""
    return f"RAG backend {name} is not reachable (its connection check failed; see the log)"


def models_needed(app_config: Any, models: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """*models* (CCBE's ``models_to_fetch``) minus the local embedding server's model when
    the chosen backend does not embed with CCBE's embedding server. A new dict of copies
    (nc_py_api's fetch mutates the entries)."""
    name = app_config.vectordb[0]
    keep_embedder = backends.spec_for(name).uses_ccbe_embedder
    return {
        key: dict(options)
        for key, options in (models or {}).items()
        if keep_embedder
        or not str(options.get("save_path", "")).endswith(LOCAL_EMBEDDER_MODEL_SUFFIX)
    }
