"""Reading a backend's settings: environment variables, validation messages, secrets.

Backends read their settings in ``__init__`` (no I/O) and report a bad or missing value as
CCBE's ``DbException`` naming the variable and what it should hold, never its value when
the value is secret. A secret a backend must keep lives in an object whose ``repr`` hides
it (a connection string as SQLAlchemy's ``URL``, whose ``repr``/``str`` mask the password).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from ..vectordb.types import DbException

__all__ = ["env_text", "reject_kwargs", "setting_error"]


def setting_error(backend: str, message: str) -> DbException:
    """``DbException("RAG backend <backend>: <message>")`` for a bad or missing setting."""
    return DbException(f"RAG backend {backend}: {message}")


def env_text(environ: Mapping[str, str] | None, name: str) -> str:
    """The trimmed value of the variable *name* in *environ* (default ``os.environ``), or ``""``."""
    env = os.environ if environ is None else environ
    return env.get(name, "").strip()


def reject_kwargs(backend: str, kwargs: Mapping[str, Any], allowed: tuple[str, ...] = ()) -> None:
    """Raise :func:`setting_error` naming the ``config.yaml`` keys of ``vectordb.<backend>``
    that the backend does not know (a typo must not be ignored silently)."""
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        known = f"; it takes {', '.join(allowed)}" if allowed else "; it takes none"
        raise setting_error(
            backend,
            f"unknown config.yaml setting(s) vectordb.{backend}.{', '.join(unknown)}{known}",
        )
