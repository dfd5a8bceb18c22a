"""Pluggable RAG backends for the Context Chat Backend: the registry.

``RAG_BACKEND`` names the storage CCBE uses, one of :data:`BACKENDS` (default ``r2r``). It
wins over the ``vectordb:`` key of ``config.yaml``: every existing install keeps a persisted
config that says ``pgvector``, so that key can no longer be read as a choice. The key still
carries settings: the section named after the chosen backend (``vectordb: {pgvector:
{connection: …}}``) becomes its constructor's keyword arguments, the others are ignored.
An unknown name fails at startup (:class:`BackendSelectionError`) with the valid names.

Each backend is one module of this package defining ``VectorDB``, a subclass of CCBE's
``vectordb.base.BaseVectorDB`` that follows :mod:`.contract`, plus one entry in
:data:`BACKENDS`. Modules are imported only when their backend is chosen, so a backend's
dependencies are needed only by the installs that use it.

Public functions (what CCBE's patched loader, config parser and worker threads call):

* :func:`backend_names`, :func:`selected_name`, :func:`select_backend`: the choice;
* :func:`get_backend_class`: the class, checked like upstream's ``get_vector_db``;
* :func:`load_backend`: one constructed backend for an ``app_config`` (CCBE's
  ``VectorDBLoader.load()``);
* :func:`check_connection`: what the worker threads gate on instead of probing the local
  embedding server.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import import_module
from typing import Any

__all__ = [
    "BACKENDS",
    "DEFAULT_BACKEND",
    "ENV_VAR",
    "BackendSelectionError",
    "BackendSpec",
    "backend_names",
    "check_connection",
    "get_backend_class",
    "load_backend",
    "select_backend",
    "selected_name",
    "spec_for",
]

ENV_VAR = "RAG_BACKEND"
DEFAULT_BACKEND = "r2r"

logger = logging.getLogger("ccb.backends")


@dataclass(frozen=True)
class BackendSpec:
    """One registry entry: the backend ``name`` lives in the module ``backends.<name>``.

    ``uses_ccbe_embedder``: the backend embeds through CCBE's own embedding client
    (``network_em.NetworkEmbeddings``), so CCBE must build that client and keep its
    embedding server; backends that embed elsewhere (R2R) get ``embedding=None``.
    ``follows_contract``: construction is cheap and does no I/O and the class has
    ``check_connection`` (:mod:`.contract`). Only upstream's own pgvector does not.
    """

    name: str
    summary: str
    uses_ccbe_embedder: bool
    follows_contract: bool = True


BACKENDS: Mapping[str, BackendSpec] = {
    spec.name: spec
    for spec in (
        BackendSpec("r2r", "an R2R server (default); R2R embeds", uses_ccbe_embedder=False),
        BackendSpec(
            "pgvector",
            "upstream's PostgreSQL + pgvector store, unchanged",
            uses_ccbe_embedder=True,
            follows_contract=False,
        ),
        BackendSpec(
            "supabase",
            "upstream's pgvector flow on a Supabase database (SUPABASE_DB_URL)",
            uses_ccbe_embedder=True,
        ),
        BackendSpec(
            "pinecone", "scaffold: answers 501 until implemented", uses_ccbe_embedder=False
        ),
    )
}


class BackendSelectionError(AssertionError):
    """``RAG_BACKEND`` (or a name asked of the registry) is not a registered backend.

    An ``AssertionError`` like CCBE's own configuration errors: ``config_parser.get_config``
    raises ``AssertionError`` for a bad ``vectordb:`` key and ``dyn_loader.VectorDBLoader``
    turns ``AssertionError``/``ImportError`` from the class lookup into ``LoaderException``.
    """


def backend_names() -> list[str]:
    """The registered backend names, in registry order (the default first)."""
    return list(BACKENDS)


def spec_for(name: str) -> BackendSpec:
    """The registry entry of *name*.

    Raises :class:`BackendSelectionError` naming the valid names when *name* is unknown.
    """
    spec = BACKENDS.get(name)
    if spec is None:
        raise BackendSelectionError(
            f"unknown RAG backend {name!r}: {ENV_VAR} must be one of {', '.join(BACKENDS)}"
        )
    return spec


def selected_name(environ: Mapping[str, str] | None = None) -> str:
    """The backend ``RAG_BACKEND`` chooses (trimmed, case-insensitive; unset or empty: r2r).

    Raises :class:`BackendSelectionError` for an unknown name.
    """
    env = os.environ if environ is None else environ
    name = env.get(ENV_VAR, "").strip().lower() or DEFAULT_BACKEND
    return spec_for(name).name


def select_backend(
    vectordb_config: Mapping[str, Any] | None, environ: Mapping[str, str] | None = None
) -> tuple[str, dict[str, Any]]:
    """``(name, kwargs)`` for CCBE's ``TConfig.vectordb``: the chosen backend and its settings.

    *vectordb_config* is the raw ``vectordb:`` mapping of ``config.yaml`` (or ``None``). The
    name comes from :func:`selected_name`; the kwargs are a copy of that name's section
    (empty when the section is missing or null).

    Raises :class:`BackendSelectionError` for an unknown ``RAG_BACKEND`` and when the
    section of the chosen backend is not a mapping.
    """
    name = selected_name(environ)
    section = (vectordb_config or {}).get(name) or {}
    if not isinstance(section, Mapping):
        raise BackendSelectionError(
            f"config.yaml vectordb.{name} must be a mapping of settings, not {type(section).__name__}"
        )
    return name, dict(section)


def get_backend_class(name: str) -> type:
    """Import ``backends.<name>`` and return its ``VectorDB`` class.

    Checks what upstream's ``vectordb.loader.get_vector_db`` checks (a ``VectorDB`` class
    with a ``client`` attribute) and that it subclasses CCBE's ``BaseVectorDB``.

    Raises :class:`BackendSelectionError` for an unknown name or an invalid module, and
    ``ImportError`` (chained) when the module or its dependencies cannot be imported.
    """
    spec = spec_for(name)
    try:
        module = import_module(f".{spec.name}", __name__)
    except Exception as e:
        raise ImportError(f"could not import the {spec.name} RAG backend: {e}") from e
    from ..vectordb.base import BaseVectorDB

    klass = getattr(module, "VectorDB", None)
    if not isinstance(klass, type) or not issubclass(klass, BaseVectorDB):
        raise BackendSelectionError(
            f"backends.{spec.name} must define VectorDB, a subclass of BaseVectorDB"
        )
    if not hasattr(klass, "client"):
        raise BackendSelectionError(f"backends.{spec.name}.VectorDB has no 'client' attribute")
    return klass


def load_backend(app_config: Any) -> Any:
    """Construct the backend ``app_config.vectordb`` names (the body of a patched
    ``VectorDBLoader.load()``).

    CCBE's ``NetworkEmbeddings(app_config)`` is built only for backends with
    ``uses_ccbe_embedder``; the others get ``embedding=None``.

    Raises CCBE's ``LoaderException`` (chained) for an unknown or unimportable backend and
    for a ``DbException`` from construction (bad or missing settings), as upstream's
    loader does.
    """
    from ..types import LoaderException
    from ..vectordb.types import DbException

    name, kwargs = app_config.vectordb
    try:
        spec = spec_for(name)
        klass = get_backend_class(name)
    except (AssertionError, ImportError) as e:
        raise LoaderException(str(e)) from e
    try:
        embedding = None
        if spec.uses_ccbe_embedder:
            from ..network_em import NetworkEmbeddings

            embedding = NetworkEmbeddings(app_config=app_config)
        return klass(embedding, **kwargs)
    except DbException as e:
        raise LoaderException(str(e)) from e


def check_connection(
    name: str, kwargs: Mapping[str, Any], origin: str, embedding: Any = None
) -> bool:
    """Whether CCBE's worker threads may take work from Nextcloud's queues now.

    For contract backends: construct one (cheap, no I/O) and ask its
    ``check_connection(origin)``. For upstream's pgvector: what upstream asks, the
    embedding client's TCP probe (``embedding.check_connection(origin)``, v5.4; v5.3's
    client has none and v5.3 gates nothing: ``True``), ``False`` without a client. Never
    raises: a backend that cannot be constructed (bad settings) is reported as not
    connected and logged, so the queues stay untouched.
    """
    from .contract import probe

    try:
        spec = spec_for(name)
        if not spec.follows_contract:
            if embedding is None:
                return False
            return probe(embedding, origin) if hasattr(embedding, "check_connection") else True
        backend = get_backend_class(name)(embedding, **dict(kwargs))
    except Exception as e:  # noqa: BLE001 - bad settings mean "not connected", and are logged
        logger.warning("[%s] RAG backend %s is not usable: %s", origin, name, e)
        return False
    return probe(backend, origin)
