"""Objects shaped like the Nextcloud Context Chat Backend's (CCBE), for tests without CCBE.

``context_chat_backend/`` here is a small package with CCBE's names, fields and signatures
for what the overlay in ``ccbe/context_chat_backend/backends`` touches: ``types.py``
(``IndexingError``, ``SourceItem``, ``ReceivedFileItem``, ``TConfig``, ``LoaderException``),
``network_em.py`` (``NetworkEmbeddings``), ``chain/types.py`` (``InDocument``, ``ScopeType``), ``vectordb/types.py`` (``DbException``,
``SafeDbException``, ``UpdateAccessOp``) and ``vectordb/base.py`` (``BaseVectorDB``), as they
are at v5.3.0 (257c5cea) and v5.4.0 (9c525e5). ``CCBE_SHAPED_GENERATION=5.3|5.4`` picks the
generation when the package is imported. The real modules are exercised by
``backend/tests/ccbe_contract`` (``scripts/ccbe_contract``).

How the overlay finds CCBE's modules: it imports them **relatively** (``from
..vectordb.base import BaseVectorDB``), so the same files work wherever the
``backends`` package sits inside a ``context_chat_backend`` package. In a checkout it is
copied to ``context_chat_backend/backends/`` next to CCBE's own modules; here the shaped
``context_chat_backend/__init__.py`` appends the overlay's directory to the package's
``__path__``, so ``context_chat_backend.backends`` is the overlay and ``..vectordb`` the
shaped modules. :func:`load_generation` puts this directory on ``sys.path`` and (re)imports
the package for one generation.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

GENERATIONS = ("5.3", "5.4")
ENV_VAR = "CCBE_SHAPED_GENERATION"
SHAPED_DIR = Path(__file__).resolve().parent


def load_generation(
    generation: str, monkeypatch: Any = None, unset: tuple[str, ...] = ()
) -> ModuleType:
    """Import ``context_chat_backend`` (shaped, with the overlay) for *generation*.

    Forgets every ``context_chat_backend`` module imported before, so a test sees exactly
    one generation. With *monkeypatch* the environment variable is restored afterwards, and
    the variables in *unset* (backend settings) are removed for the test.
    """
    if generation not in GENERATIONS:
        raise ValueError(f"unknown CCBE generation {generation!r}")
    if monkeypatch is not None:
        for name in unset:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv(ENV_VAR, generation)
    else:
        os.environ[ENV_VAR] = generation
    for name in [
        m
        for m in sys.modules
        if m == "context_chat_backend" or m.startswith("context_chat_backend.")
    ]:
        del sys.modules[name]
    if str(SHAPED_DIR) not in sys.path:
        sys.path.insert(0, str(SHAPED_DIR))
    importlib.invalidate_caches()
    return importlib.import_module("context_chat_backend")


def run_storage_call(generation: str, backend: str, method: str, env: dict[str, str]) -> Any:
    """In a fresh process: load *generation*, set *env*, construct *backend* from the
    registry and call its *method* without arguments. Returns what it returns; what it
    raises is raised again in the caller (pickled across, as CCBE's ``exec_in_proc`` does)."""
    os.environ.update(env)
    package = load_generation(generation)
    registry = importlib.import_module(f"{package.__name__}.backends")
    return getattr(registry.get_backend_class(backend)(None), method)()


def r2r_placeholder_reason() -> str | None:
    """Why the R2R backend cannot be tested yet, or ``None`` once it is real.

    ``backends/r2r.py`` is a placeholder until the engine's synchronous apply path lands:
    constructing it raises ``NotImplementedError`` whatever the settings. A real backend
    constructs, or refuses missing settings with CCBE's ``DbException``. Tests of the R2R
    path skip with this reason instead of faking R2R.
    """
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("R2R_")}
    try:
        package = load_generation("5.4")
        registry = importlib.import_module(f"{package.__name__}.backends")
        try:
            registry.get_backend_class("r2r")(None)
        except NotImplementedError as e:
            return f"the R2R backend (ccbe/…/backends/r2r.py) is still the placeholder: {e}"
        except Exception:  # a real backend refusing missing settings
            return None
        return None
    finally:
        os.environ.update(saved)
