"""Shaped ``context_chat_backend`` (see ``ccbe_shaped/__init__.py``).

``GENERATION`` is ``CCBE_SHAPED_GENERATION`` (``5.3`` or ``5.4``, default ``5.4``). The
overlay's directory joins this package's ``__path__``, as the overlay joins a real
checkout by being copied into it.
"""

import os
from pathlib import Path

GENERATION = os.environ.get("CCBE_SHAPED_GENERATION", "5.4")
if GENERATION not in ("5.3", "5.4"):
    raise ImportError(f"CCBE_SHAPED_GENERATION must be 5.3 or 5.4, not {GENERATION!r}")

__path__.append(str(Path(__file__).resolve().parents[4] / "ccbe" / "context_chat_backend"))
