"""What a RAG backend provides beyond CCBE's ``BaseVectorDB``.

A backend is ``backends.<name>.VectorDB``, a subclass of ``vectordb.base.BaseVectorDB``
implementing its ten storage methods (:data:`STORAGE_METHODS`) with upstream's semantics on
both CCBE generations (:mod:`.compat` absorbs the differences), plus ``get_users`` and
``get_instance`` (never called by CCBE; trivial answers are fine). On top of that:

1. **Construction is cheap and does no I/O.** CCBE builds the backend anew in a fresh
   subprocess for every storage operation (``utils.exec_in_proc``; forkserver in v5.4), and
   the worker threads build one just to ask :meth:`RagBackend.check_connection`. The
   constructor ``__init__(self, embedding=None, **kwargs)`` only reads and validates
   settings (the environment and the kwargs from ``config.yaml``); connections, sessions
   and caches are made on first use. Bad or missing settings raise CCBE's ``DbException``
   with a message naming the variable, which CCBE's loader turns into ``LoaderException``:
   the app stops at startup instead of failing later.
2. **``check_connection(origin: str) -> bool``** answers whether the storage can take work
   now (a cheap probe with a short timeout). It never raises. CCBE's worker threads call
   it before taking documents, actions or queries from Nextcloud; ``False`` leaves every
   queue untouched, which is what must happen while the store is down or not implemented.
   Optionally **``diagnose(origin: str) -> str``** says what keeps the store from working
   in one line for the admin (``""`` when nothing does: unreachable, credentials refused,
   not implemented, …; no secrets); the ExApp's ``POST /init`` job reports it to AppAPI
   (:mod:`context_chat_backend.exapp.readiness`). Without it, ``/init`` can only say that
   ``check_connection`` failed.
3. **Everything crosses process boundaries.** The instance pickles (it holds settings, not
   connections: drop them in ``__getstate__``), and so do results and exceptions: use
   CCBE's ``DbException``/``SafeDbException``/``IndexingError`` or exceptions whose
   ``args`` rebuild them. In-memory caches do not survive between operations.
4. **"Not implemented" is CCBE's ``SafeDbException(message, 501)``** with the message
   ``backend not implemented: <name>`` (:func:`not_implemented`), raised by every storage
   method; CCBE's exception handler answers ``501 {"error": message}``. Such a backend's
   ``check_connection`` is ``False``: CCBE's actions thread acknowledges actions whose
   handler raises ``SafeDbException``, so it must never reach them.
5. **Secrets never appear** in messages, logs or ``repr`` (:mod:`.settings`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from ..vectordb.types import SafeDbException

__all__ = [
    "NOT_IMPLEMENTED_PREFIX",
    "NOT_IMPLEMENTED_STATUS",
    "STORAGE_METHODS",
    "DiagnosingBackend",
    "RagBackend",
    "is_not_implemented",
    "not_implemented",
    "probe",
]

logger = logging.getLogger("ccb.backends")

STORAGE_METHODS: tuple[str, ...] = (
    "add_indocuments",
    "check_sources",
    "update_access",
    "update_access_provider",
    "decl_update_access",
    "delete_source_ids",
    "delete_provider",
    "delete_user",
    "count_documents_by_provider",
    "doc_search",
)
"""``BaseVectorDB``'s abstract methods that touch storage (both generations)."""

NOT_IMPLEMENTED_STATUS = 501
NOT_IMPLEMENTED_PREFIX = "backend not implemented: "


@runtime_checkable
class RagBackend(Protocol):
    """The contract's additions to ``BaseVectorDB`` (see the module docstring)."""

    def check_connection(self, origin: str) -> bool:
        """Whether the storage can take work now; cheap, short timeout, never raises."""
        ...


@runtime_checkable
class DiagnosingBackend(RagBackend, Protocol):
    """A backend with the optional ``diagnose`` hook (see the module docstring)."""

    def diagnose(self, origin: str) -> str:
        """``""`` when the storage can work, else one line saying why not; never raises."""
        ...


def not_implemented(backend: str, detail: str = "") -> SafeDbException:
    """The exception every storage method of an unimplemented *backend* raises.

    ``SafeDbException("backend not implemented: <backend>[ (<detail>)]", 501)``: CCBE's
    handler answers ``501 {"error": <that message>}``.
    """
    message = f"{NOT_IMPLEMENTED_PREFIX}{backend}"
    if detail:
        message = f"{message} ({detail})"
    return SafeDbException(message, NOT_IMPLEMENTED_STATUS)


def is_not_implemented(exc: BaseException) -> bool:
    """Whether *exc* is the :func:`not_implemented` answer (after any pickling round trip)."""
    args: tuple[Any, ...] = getattr(exc, "args", ())
    return (
        isinstance(exc, SafeDbException)
        and len(args) > 1
        and args[1] == NOT_IMPLEMENTED_STATUS
        and str(args[0]).startswith(NOT_IMPLEMENTED_PREFIX)
    )


def probe(backend: Any, origin: str) -> bool:
    """``backend.check_connection(origin)`` that never raises (a raise counts as ``False``)."""
    try:
        return bool(backend.check_connection(origin))
    except Exception as e:  # noqa: BLE001 - a probe answers, it does not fail
        logger.warning("[%s] connection check of %s raised: %s", origin, type(backend).__name__, e)
        return False
