"""What ``POST /init`` starts: check the RAG backend, fetch the models it needs, report.

AppAPI sends ``POST /init`` once the ExApp answers its heartbeat and waits for the ExApp to
report progress through ``PUT /ocs/v1.php/apps/app_api/ex-app/status`` (``{"progress":
0..100, "error": ""}``); at 100 it enables the app (``PUT /enabled?enabled=1``), a non-empty
``error`` stops the installation and shows the message to the admin. The job:

1. reports :data:`PROGRESS_STARTED`;
2. asks :func:`.readiness.diagnose`: missing or invalid settings, an unreachable store or
   refused credentials, a scaffold backend: reported as the ``error`` (at
   :data:`PROGRESS_STARTED`), and the job ends there;
3. reports :data:`PROGRESS_BACKEND_READY`, then fetches the models the backend needs
   (:func:`.readiness.models_needed`; none when ``CC_DOWNLOAD_MODELS_FROM_HF=false``)
   with nc_py_api's ``fetch_models_task``, which reports the download progress up to 99,
   then 100 (or the failed download as the error).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from .readiness import diagnose, models_needed

__all__ = ["PROGRESS_BACKEND_READY", "PROGRESS_STARTED", "InitJob"]

logger = logging.getLogger("ccb.exapp")

PROGRESS_STARTED = 5
PROGRESS_BACKEND_READY = 20


def _fetch_models(nc: Any, models: dict[str, dict], start: int) -> None:
    from nc_py_api.ex_app.integration_fastapi import fetch_models_task

    fetch_models_task(nc, models, start)


class InitJob:
    """The ``/init`` background job of one app (at most one run at a time).

    *app_config* is CCBE's ``TConfig`` (its ``vectordb`` names the backend); *models* are
    CCBE's ``models_to_fetch``. *fetch_models* is nc_py_api's ``fetch_models_task``
    signature ``(nc, models, start_progress)``; tests and the README's demo use the default.
    """

    def __init__(
        self,
        app_config: Any,
        models: Mapping[str, Mapping[str, Any]] | None = None,
        fetch_models: Callable[[Any, dict[str, dict], int], None] = _fetch_models,
    ) -> None:
        self.app_config = app_config
        self.models = models or {}
        self.fetch_models = fetch_models
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, nc: Any) -> bool:
        """Run :meth:`run` with *nc* (nc_py_api's ``NextcloudApp``) in a daemon thread and
        return at once. ``False`` (nothing started) while a run is still going: AppAPI's
        retry of ``/init`` must not start a second download."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                logger.info("/init: the init job is still running, not starting another")
                return False
            self._thread = threading.Thread(
                target=self.run, args=(nc,), name="ExAppInitJob", daemon=True
            )
            self._thread.start()
            return True

    def join(self, timeout: float | None = None) -> None:
        """Wait for the current run (tests, shutdown)."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def run(self, nc: Any) -> bool:
        """Check, fetch, report (see the module docstring). ``True`` when it reported 100.

        Never raises: a failure to report (Nextcloud unreachable) is logged; AppAPI then
        times the initialisation out and the admin can retry.
        """
        name = self.app_config.vectordb[0]
        try:
            nc.set_init_status(PROGRESS_STARTED)
            problem = diagnose(self.app_config, "init")
            if problem:
                logger.error("/init: the RAG backend %s cannot work: %s", name, problem)
                nc.set_init_status(PROGRESS_STARTED, problem)
                return False
            logger.info("/init: the RAG backend %s is ready", name)
            nc.set_init_status(PROGRESS_BACKEND_READY)
            models = models_needed(self.app_config, self.models)
            if models:
                logger.info("/init: fetching %s", ", ".join(models))
            self.fetch_models(nc, models, PROGRESS_BACKEND_READY)
        except Exception as e:  # a background job logs what it cannot report
            logger.exception("/init: the init job failed: %s", e)
            return False
        logger.info("/init: done (progress 100)")
        return True
