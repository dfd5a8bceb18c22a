"""The Context Chat Backend as an AppAPI ExApp with a pluggable RAG backend.

What CCBE's patches (``patches/ccbe/v5.3``, ``patches/ccbe/v5.4``) call, one job per module:

* :mod:`.lifecycle`: the AppAPI routes ``GET /heartbeat``, ``PUT /enabled``, ``POST /init``
  (and ``POST /trigger``), replacing nc_py_api's ``set_handlers`` in ``controller.py``;
* :mod:`.init_job`: what ``POST /init`` starts in the background (check the RAG backend,
  fetch the models it needs, report progress to AppAPI);
* :mod:`.readiness`: whether the RAG backend can take work (the worker threads' gate, the
  init job's diagnosis) and which models it needs;
* :mod:`.version_header`: the ``EX-APP-VERSION`` response header (added once, in ``main.py``);
* :mod:`.push`: the v5.3 push API's per-part header check (``PUT /loadSources``).

Like :mod:`context_chat_backend.backends` it imports CCBE's own modules relatively and only
where they are used, so nothing here does work at import time.
"""
