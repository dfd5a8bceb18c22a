"""R2R: PLACEHOLDER. The R2R backend lands on top of the engine's synchronous apply path.

Nothing here works yet: constructing the backend raises ``NotImplementedError`` so that
``RAG_BACKEND=r2r`` (the default) fails loudly instead of pretending to store anything.
The real module will be ``VectorDB(BaseVectorDB)`` following :mod:`.contract`, writing
through the bridge engine's synchronous apply path and client (no second R2R client).
"""

from __future__ import annotations

from typing import Any

from ..vectordb.base import BaseVectorDB

__all__ = ["VectorDB"]

WAITING = "waiting for the engine's sync API"


class VectorDB(BaseVectorDB):
    """Placeholder: every construction raises ``NotImplementedError(WAITING)``."""

    client: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> VectorDB:
        raise NotImplementedError(WAITING)
