"""A small fake Nextcloud for the Context Chat Backend ExApp: AppAPI plus context_chat's queues.

It serves what CCBE (through nc_py_api) calls on Nextcloud, in OCS envelopes
(``{"ocs": {"meta": {"status", "statuscode", "message"}, "data": …}}``), and records what it
was told, so tests can assert on it:

* AppAPI: ``GET /ocs/v1.php/cloud/capabilities`` (with ``app_api``), ``GET …/ex-app/state``
  (1 once the app is enabled: at init progress 100, as AppAPI enables the app then),
  ``PUT …/ex-app/status`` (every ``{progress, error}`` recorded), ``POST``/``DELETE
  …/api/v1/ai_provider/task_processing`` (TaskProcessing providers and custom task types);
* context_chat (v5.4 pull API): the documents and actions queues (``GET`` hands out what is
  not acknowledged yet, ``DELETE`` acknowledges), ``GET …/files/{id}`` (the raw bytes; 404
  for an unknown file), ``POST …/resolve_scope_list`` (folders expand to their files),
  ``POST …/enrich_sources``;
* TaskProcessing: ``GET /ocs/v2.php/taskprocessing/tasks_provider/next`` (204 when no task of
  the asked types waits), ``POST …/tasks_provider/{id}/result``, and the text-to-text LLM CCBE
  uses (``nc_texttotext``): ``POST /ocs/v1.php/taskprocessing/schedule`` + ``GET …/task/{id}``,
  answered at once with an output that echoes the prompt the way Nextcloud's ``testing`` app
  (``FakeTextToTextProvider``) does, so a chat answer shows exactly which context was
  retrieved.

Every request must carry AppAPI's authentication as AppAPI checks it for an ExApp (the
app's secret in ``AUTHORIZATION-APP-API``, its id in ``EX-APP-ID``, a non-empty
``EX-APP-VERSION``), else 401; any other path is recorded in :attr:`FakeNextcloud.unknown`
and answered 404. :meth:`FakeNextcloud.serve` runs it with uvicorn in a thread of the
calling process (long keep-alive: CCBE's clients keep connections open).
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

__all__ = [
    "CONTEXT_CHAT_PROVIDERS",
    "FakeNextcloud",
    "appapi_headers",
    "fake_llm_output",
    "free_port",
]

CONTEXT_CHAT_PROVIDERS = ("context_chat-context_chat", "context_chat-context_chat_search")
"""The TaskProcessing providers CCBE v5.4 registers when enabled."""


def appapi_headers(app_id: str, app_version: str, secret: str, user: str = "") -> dict[str, str]:
    """AppAPI's authentication headers for a request to an ExApp (and an ExApp's to Nextcloud):
    ``AUTHORIZATION-APP-API`` = base64(``user:secret``), ``EX-APP-ID``, ``EX-APP-VERSION``,
    ``AA-VERSION``, and ``OCS-APIRequest``."""
    token = base64.b64encode(f"{user}:{secret}".encode()).decode()
    return {
        "AUTHORIZATION-APP-API": token,
        "EX-APP-ID": app_id,
        "EX-APP-VERSION": app_version,
        "AA-VERSION": "3.0.0",
        "OCS-APIRequest": "true",
    }


def fake_llm_output(prompt: str) -> str:
    """The text-to-text answer: the prompt, echoed in the shape of Nextcloud's ``testing``
    app's fake text-to-text provider."""
    return f"This is a fake result: \n\n- Prompt: {prompt}\n- Model: unknown model\n- Maximum number of words: "


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ocs(data: Any, status: int = 200, message: str = "OK") -> JSONResponse:
    meta = {"status": "ok" if status < 400 else "failure", "statuscode": status, "message": message}
    return JSONResponse({"ocs": {"meta": meta, "data": data}}, status_code=status)


@dataclass
class FakeNextcloud:
    """The fake's state (thread-safe; read it under :attr:`lock` or through the helpers).

    Queue items are given as Nextcloud's PHP app serves them: documents keyed by queue id
    (``{"userIds", "reference", "title", "content", "modified", "type", "provider",
    "size"}``; ``content`` is ``None`` for files, whose bytes are in :attr:`files`), actions
    as ``{"type", "payload"}``.
    """

    app_id: str = "context_chat_backend"
    app_secret: str = "fake-nextcloud-secret"
    enabled: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock)
    init_reports: list[dict[str, Any]] = field(default_factory=list)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    unregistered: list[str] = field(default_factory=list)
    documents: dict[str, dict[int, dict[str, Any]]] = field(
        default_factory=lambda: {"files": {}, "content_providers": {}}
    )
    acked_documents: dict[str, list[int]] = field(
        default_factory=lambda: {"files": [], "content_providers": []}
    )
    document_fetches: int = 0
    actions: dict[int, dict[str, Any]] = field(default_factory=dict)
    acked_actions: list[int] = field(default_factory=list)
    action_fetches: int = 0
    files: dict[int, bytes] = field(default_factory=dict)
    file_downloads: list[tuple[int, str]] = field(default_factory=list)
    folders: dict[str, list[str]] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    task_results: dict[int, dict[str, Any]] = field(default_factory=dict)
    llm_prompts: list[tuple[str, str]] = field(default_factory=list)
    versions_seen: set[str] = field(default_factory=set)
    auth_failures: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ------------------------------------------------------------------ test helpers
    def enqueue_document(self, item: Mapping[str, Any], content: bytes | None = None) -> int:
        """Queue one document; a file (``content`` key ``None``) needs its bytes in *content*.
        Returns its queue id."""
        with self.lock:
            queue_id = next(self._ids)
            kind = "files" if item.get("content") is None else "content_providers"
            self.documents[kind][queue_id] = dict(item)
            if kind == "files":
                if content is None:
                    raise ValueError(f"file {item['reference']} needs its content")
                self.files[int(str(item["reference"]).rsplit(":", 1)[1])] = content
            return queue_id

    def enqueue_action(self, action_type: str, payload: Mapping[str, Any]) -> int:
        """Queue one action (``delete_source_ids``, ``update_access_source_id``, …)."""
        with self.lock:
            queue_id = next(self._ids)
            self.actions[queue_id] = {"id": queue_id, "type": action_type, "payload": dict(payload)}
            return queue_id

    def schedule_task(self, task_type: str, user_id: str, task_input: Mapping[str, Any]) -> int:
        """Schedule a TaskProcessing task for CCBE (``context_chat:context_chat`` or
        ``context_chat:context_chat_search``); its result lands in :attr:`task_results`."""
        with self.lock:
            task_id = next(self._ids)
            self.tasks[task_id] = {
                "id": task_id,
                "type": task_type,
                "status": "STATUS_SCHEDULED",
                "userId": user_id,
                "appId": "assistant",
                "input": dict(task_input),
                "output": None,
            }
            return task_id

    def pending_documents(self) -> int:
        with self.lock:
            return sum(len(items) for items in self.documents.values())

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy of what was recorded (for failure messages)."""
        with self.lock:
            return json.loads(
                json.dumps(
                    {
                        "enabled": self.enabled,
                        "init_reports": self.init_reports,
                        "providers": sorted(self.providers),
                        "pending_documents": {k: sorted(v) for k, v in self.documents.items()},
                        "acked_documents": self.acked_documents,
                        "pending_actions": sorted(self.actions),
                        "acked_actions": self.acked_actions,
                        "task_results": self.task_results,
                        "auth_failures": self.auth_failures,
                        "unknown": self.unknown,
                    },
                    default=str,
                )
            )

    # ------------------------------------------------------------------ the app
    def _authorised(self, request: Request) -> str | None:
        """The user of an AppAPI-signed request, or ``None`` (recorded) when AppAPI would refuse it."""
        headers = request.headers
        problem = ""
        user = ""
        try:
            user, _, secret = (
                base64.b64decode(headers.get("AUTHORIZATION-APP-API", "")).decode().partition(":")
            )
        except ValueError:
            secret = ""
        if secret != self.app_secret:
            problem = "wrong or missing app secret"
        elif headers.get("EX-APP-ID") != self.app_id:
            problem = f"EX-APP-ID {headers.get('EX-APP-ID')!r}"
        elif not headers.get("EX-APP-VERSION"):
            problem = "empty EX-APP-VERSION"
        with self.lock:
            if problem:
                self.auth_failures.append(f"{request.method} {request.url.path}: {problem}")
                return None
            self.versions_seen.add(headers["EX-APP-VERSION"])
        return user

    def app(self) -> FastAPI:
        """The FastAPI app serving the routes of the module docstring."""
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def appapi_auth(request: Request, call_next: Callable) -> Response:
            user = fake._authorised(request)
            if user is None:
                return _ocs([], 401, "Unauthorized")
            request.state.user = user
            return await call_next(request)

        async def body(request: Request) -> dict[str, Any]:
            raw = await request.body()
            return json.loads(raw) if raw else {}

        # ---------------------------------------------------------- AppAPI
        @app.get("/ocs/v1.php/cloud/capabilities")
        async def capabilities() -> JSONResponse:
            version = {
                "major": 32,
                "minor": 0,
                "micro": 0,
                "string": "32.0.0",
                "edition": "",
                "extendedSupport": False,
            }
            caps = {
                "app_api": {"loglevel": 1, "version": "32.0.0"},
                "core": {"webdav-root": "remote.php/webdav"},
            }
            return _ocs({"version": version, "capabilities": caps})

        @app.get("/ocs/v1.php/apps/app_api/ex-app/state")
        async def state() -> JSONResponse:
            with fake.lock:
                return _ocs(1 if fake.enabled else 0)

        @app.put("/ocs/v1.php/apps/app_api/ex-app/status")
        async def status(request: Request) -> JSONResponse:
            report = await body(request)
            with fake.lock:
                fake.init_reports.append(
                    {"progress": int(report.get("progress", -1)), "error": report.get("error", "")}
                )
                if report.get("progress") == 100 and not report.get("error"):
                    fake.enabled = True  # AppAPI enables the app at 100 (then calls PUT /enabled)
            return _ocs([])

        @app.post("/ocs/v1.php/apps/app_api/api/v1/ai_provider/task_processing")
        async def register_provider(request: Request) -> JSONResponse:
            params = await body(request)
            with fake.lock:
                fake.providers[params["provider"]["id"]] = params
            return _ocs([])

        @app.delete("/ocs/v1.php/apps/app_api/api/v1/ai_provider/task_processing")
        async def unregister_provider(name: str) -> JSONResponse:
            with fake.lock:
                if fake.providers.pop(name, None) is None:
                    return _ocs([], 404, "provider not found")
                fake.unregistered.append(name)
            return _ocs([])

        # ---------------------------------------------------------- context_chat queues
        @app.get("/ocs/v2.php/apps/context_chat/queues/documents")
        async def documents(n: int = 64) -> JSONResponse:
            with fake.lock:
                fake.document_fetches += 1
                return _ocs(
                    {
                        kind: {str(k): v for k, v in itertools.islice(items.items(), n)}
                        for kind, items in fake.documents.items()
                    }
                )

        @app.delete("/ocs/v2.php/apps/context_chat/queues/documents/")
        @app.delete("/ocs/v2.php/apps/context_chat/queues/documents")
        async def ack_documents(request: Request) -> JSONResponse:
            done = await body(request)
            with fake.lock:
                for kind in ("files", "content_providers"):
                    for queue_id in done.get(kind, []):
                        if fake.documents[kind].pop(int(queue_id), None) is not None:
                            fake.acked_documents[kind].append(int(queue_id))
            return _ocs([])

        @app.get("/ocs/v2.php/apps/context_chat/queues/actions")
        async def actions(n: int = 512) -> JSONResponse:
            with fake.lock:
                fake.action_fetches += 1
                items = itertools.islice(fake.actions.items(), n)
                return _ocs({"actions": {str(k): v for k, v in items}})

        @app.delete("/ocs/v2.php/apps/context_chat/queues/actions/")
        @app.delete("/ocs/v2.php/apps/context_chat/queues/actions")
        async def ack_actions(request: Request) -> JSONResponse:
            done = await body(request)
            with fake.lock:
                for queue_id in done.get("actions", []):  # the PHP app reads only "actions"
                    if fake.actions.pop(int(queue_id), None) is not None:
                        fake.acked_actions.append(int(queue_id))
            return _ocs([])

        @app.get("/ocs/v2.php/apps/context_chat/files/{file_id}")
        async def file(file_id: int, userId: str = "") -> Response:
            with fake.lock:
                content = fake.files.get(file_id)
                fake.file_downloads.append((file_id, userId))
            if content is None:
                return _ocs([], 404, f"file {file_id} not found")
            return Response(content, media_type="application/octet-stream")

        @app.post("/ocs/v2.php/apps/context_chat/resolve_scope_list")
        async def resolve_scope_list(request: Request) -> JSONResponse:
            params = await body(request)
            resolved: list[str] = []
            with fake.lock:
                for source_id in params.get("source_ids") or []:
                    resolved.extend(fake.folders.get(source_id, [source_id]))
            return _ocs({"source_ids": resolved})

        @app.post("/ocs/v2.php/apps/context_chat/enrich_sources")
        async def enrich_sources(request: Request) -> JSONResponse:
            params = await body(request)
            sources = [
                {
                    "id": s["source_id"],
                    "label": s.get("title") or s["source_id"],
                    "icon": "",
                    "url": f"http://nextcloud.invalid/f/{s['source_id'].rsplit(':', 1)[-1].strip()}",
                }
                for s in params.get("sources") or []
            ]
            return _ocs({"sources": sources})

        # ---------------------------------------------------------- TaskProcessing
        @app.get("/ocs/v2.php/taskprocessing/tasks_provider/next")
        async def next_task(request: Request) -> Response:
            params = await body(request)
            types = set(params.get("taskTypeIds") or [])
            with fake.lock:
                for task in fake.tasks.values():
                    if task["status"] == "STATUS_SCHEDULED" and task["type"] in types:
                        task["status"] = "STATUS_RUNNING"
                        provider = task["type"].replace(":", "-")
                        return _ocs({"task": task, "provider": {"name": provider}})
            return Response(status_code=204)

        @app.post("/ocs/v2.php/taskprocessing/tasks_provider/{task_id}/result")
        async def task_result(task_id: int, request: Request) -> JSONResponse:
            result = await body(request)
            with fake.lock:
                task = fake.tasks.get(task_id)
                if task is None:
                    return _ocs([], 404, "task not found")
                task["status"] = (
                    "STATUS_FAILED" if result.get("errorMessage") else "STATUS_SUCCESSFUL"
                )
                task["output"] = result.get("output")
                fake.task_results[task_id] = result
                return _ocs({"task": task})

        @app.post("/ocs/v1.php/taskprocessing/schedule")
        async def schedule_llm(request: Request) -> JSONResponse:
            params = await body(request)
            if params.get("type") != "core:text2text":
                return _ocs([], 412, "no provider for this task type")
            prompt = str((params.get("input") or {}).get("input", ""))
            with fake.lock:
                task_id = next(fake._ids)
                fake.llm_prompts.append((request.state.user, prompt))
                task = {
                    "id": task_id,
                    "type": "core:text2text",
                    "status": "STATUS_SUCCESSFUL",
                    "userId": request.state.user,
                    "appId": params.get("appId", ""),
                    "input": params.get("input"),
                    "output": {"output": fake_llm_output(prompt)},
                }
                fake.tasks[task_id] = task
            return _ocs({"task": task})

        @app.get("/ocs/v1.php/taskprocessing/task/{task_id}")
        async def llm_task(task_id: int) -> JSONResponse:
            with fake.lock:
                task = fake.tasks.get(task_id)
            if task is None:
                return _ocs([], 404, "task not found")
            return _ocs({"task": task})

        @app.api_route("/{path:path}", methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
        async def unknown(path: str, request: Request) -> JSONResponse:
            with fake.lock:
                fake.unknown.append(f"{request.method} /{path}")
            return _ocs([], 404, "not served by the fake Nextcloud")

        return app

    def exapp_env(self, url: str, app_version: str) -> dict[str, str]:
        """The environment AppAPI gives an ExApp registered with this fake at *url* (what
        nc_py_api reads: ``APP_ID``, ``APP_SECRET``, ``APP_VERSION``, ``APP_PORT``,
        ``AA_VERSION``, ``NEXTCLOUD_URL``)."""
        return {
            "APP_ID": self.app_id,
            "APP_SECRET": self.app_secret,
            "APP_VERSION": app_version,
            "APP_PORT": str(free_port()),
            "AA_VERSION": "3.0.0",
            "NEXTCLOUD_URL": url,
        }

    @contextlib.contextmanager
    def serve_for_exapp(self, monkeypatch: Any, app_version: str) -> Iterator[str]:
        """:meth:`serve`, with :meth:`exapp_env` set through pytest's *monkeypatch*: the
        ExApp code of this process (nc_py_api) talks to the fake."""
        with self.serve() as url:
            for key, value in self.exapp_env(url, app_version).items():
                monkeypatch.setenv(key, value)
            yield url

    @contextlib.contextmanager
    def serve(self, port: int | None = None, host: str = "127.0.0.1") -> Iterator[str]:
        """Serve the fake on *host*:*port* (a free port by default) in a daemon thread;
        yields its base URL (``NEXTCLOUD_URL``) and stops it on exit."""
        import uvicorn

        port = port or free_port()
        config = uvicorn.Config(
            self.app(), host=host, port=port, log_level="warning", timeout_keep_alive=120, ws="none"
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name="FakeNextcloud", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the fake Nextcloud did not start on {host}:{port}")
            time.sleep(0.05)
        try:
            yield f"http://{host}:{port}"
        finally:
            server.should_exit = True
            thread.join(10)
