"""Pinecone: a scaffold. Settings are validated, the app boots, storage answers 501.

Settings (environment; no ``config.yaml`` keys):

* ``PINECONE_API_KEY``: the project's API key (secret, never shown);
* ``PINECONE_INDEX``: the index name, 1-45 lowercase Latin letters, digits or ``-``
  (Pinecone's identifier limits).

Every storage call raises ``SafeDbException("backend not implemented: pinecone", 501)``
and ``check_connection`` is ``False``, so CCBE leaves Nextcloud's queues untouched.
"""

from __future__ import annotations

import re
from typing import Any

from .scaffold import ScaffoldBackend
from .settings import env_text, reject_kwargs, setting_error

__all__ = ["VectorDB"]

_INDEX_NAME = re.compile(r"[a-z0-9-]{1,45}")


class VectorDB(ScaffoldBackend):
    """The Pinecone scaffold (see the module docstring)."""

    backend_name = "pinecone"

    def __init__(self, embedding: Any = None, **kwargs: Any) -> None:
        """Read and check ``PINECONE_API_KEY`` and ``PINECONE_INDEX``; no I/O.

        Raises CCBE's ``DbException`` naming the missing or invalid variable, or an unknown
        ``config.yaml`` key of ``vectordb.pinecone``.
        """
        reject_kwargs(self.backend_name, kwargs)
        if not env_text(None, "PINECONE_API_KEY"):
            raise setting_error(
                self.backend_name, "PINECONE_API_KEY is not set (the project's API key)"
            )
        index = env_text(None, "PINECONE_INDEX")
        if not index:
            raise setting_error(self.backend_name, "PINECONE_INDEX is not set (the index name)")
        if not _INDEX_NAME.fullmatch(index):
            raise setting_error(
                self.backend_name,
                f"PINECONE_INDEX must be 1-45 lowercase letters, digits or '-', not {index!r}",
            )
        self.index = index  # the key is only checked: a scaffold never sends it
        super().__init__(embedding)
