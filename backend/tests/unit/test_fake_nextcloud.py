"""The fake Nextcloud (``tests/fake_nextcloud.py``) through nc_py_api, the client CCBE uses.

Every call below is one CCBE makes (v5.4.0's ``task_fetcher``/``controller``/``injest``/
``nc_texttotext``, nc_py_api's ``set_init_status``/``enabled_state``/task-processing
provider API), so the end-to-end tests' Nextcloud answers what the real one would.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator

import pytest
from fake_nextcloud import (
    CONTEXT_CHAT_PROVIDERS,
    FakeNextcloud,
    appapi_headers,
    fake_llm_output,
)

APP_VERSION = "5.4.0"


@pytest.fixture
def fake() -> FakeNextcloud:
    return FakeNextcloud(app_secret="s3cret-fake")


@pytest.fixture
def url(fake: FakeNextcloud, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fake.serve_for_exapp(monkeypatch, APP_VERSION) as base:
        yield base


def nextcloud_app():
    """nc_py_api's sync ``NextcloudApp``, as CCBE builds it (from the environment)."""
    from nc_py_api import NextcloudApp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return NextcloudApp()


def test_ocs_envelope_capabilities_state_and_init_progress(fake: FakeNextcloud, url: str) -> None:
    nc = nextcloud_app()
    assert "app_api" in nc.capabilities
    assert nc.enabled_state is False
    nc.set_init_status(20)
    nc.set_init_status(50, "something is wrong")
    assert nc.enabled_state is False, "an error must not enable the app"
    nc.set_init_status(100)
    assert nc.enabled_state is True  # AppAPI enables the app once init reaches 100
    assert fake.init_reports == [
        {"progress": 20, "error": ""},
        {"progress": 50, "error": "something is wrong"},
        {"progress": 100, "error": ""},
    ]
    assert fake.versions_seen == {APP_VERSION}


def test_task_processing_providers_register_and_unregister(fake: FakeNextcloud, url: str) -> None:
    from nc_py_api.ex_app.providers.task_processing import (
        ShapeDescriptor,
        ShapeType,
        TaskProcessingProvider,
        TaskType,
    )

    nc = nextcloud_app()
    for provider_id in CONTEXT_CHAT_PROVIDERS:
        task_type = provider_id.replace("-", ":", 1)
        shape = ShapeDescriptor(name="prompt", description="p", shape_type=ShapeType.TEXT)
        nc.providers.task_processing.register(
            TaskProcessingProvider(id=provider_id, name="CC", task_type=task_type),
            TaskType(
                id=task_type, name="CC", description="d", input_shape=[shape], output_shape=[]
            ),
        )
    assert sorted(fake.providers) == sorted(CONTEXT_CHAT_PROVIDERS)
    assert (
        fake.providers["context_chat-context_chat"]["customTaskType"]["id"]
        == "context_chat:context_chat"
    )
    nc.providers.task_processing.unregister("context_chat-context_chat")
    assert sorted(fake.providers) == ["context_chat-context_chat_search"]
    assert fake.unregistered == ["context_chat-context_chat"]


def test_documents_and_actions_queues_hand_out_until_acknowledged(
    fake: FakeNextcloud, url: str
) -> None:
    common = {"userIds": ["alice"], "modified": 1700000000, "size": 5.0}
    file_id = fake.enqueue_document(
        {
            **common,
            "reference": "files__default: 7",
            "title": "a.txt",
            "content": None,
            "type": "text/plain",
            "provider": "files__default",
        },
        content=b"hello",
    )
    note_id = fake.enqueue_document(
        {
            **common,
            "reference": "notes__notes: 3",
            "title": "n",
            "content": "a note",
            "type": "text/markdown",
            "provider": "notes__notes",
        }
    )
    action_id = fake.enqueue_action("delete_user_id", {"userId": "bob"})
    nc = nextcloud_app()
    queued = nc.ocs("GET", "/ocs/v2.php/apps/context_chat/queues/documents", params={"n": 32})
    assert set(queued["files"]) == {str(file_id)} and set(queued["content_providers"]) == {
        str(note_id)
    }
    again = nc.ocs("GET", "/ocs/v2.php/apps/context_chat/queues/documents", params={"n": 32})
    assert again == queued, "a fetch acknowledges nothing"
    nc.ocs(
        "DELETE",
        "/ocs/v2.php/apps/context_chat/queues/documents/",
        json={"files": [file_id], "content_providers": []},
    )
    assert fake.acked_documents == {"files": [file_id], "content_providers": []}
    assert fake.pending_documents() == 1
    actions = nc.ocs("GET", "/ocs/v2.php/apps/context_chat/queues/actions", params={"n": 512})
    assert actions["actions"][str(action_id)]["payload"] == {"userId": "bob"}
    nc.ocs("DELETE", "/ocs/v2.php/apps/context_chat/queues/actions/", json={"ids": [action_id]})
    assert fake.acked_actions == [], "the PHP app reads only the 'actions' key"
    nc.ocs("DELETE", "/ocs/v2.php/apps/context_chat/queues/actions/", json={"actions": [action_id]})
    assert fake.acked_actions == [action_id] and not fake.actions


def test_files_scope_lists_and_sources(fake: FakeNextcloud, url: str) -> None:
    from nc_py_api import NextcloudException

    fake.files[7] = b"file bytes"
    fake.folders["files__default: 100"] = ["files__default: 7", "files__default: 8"]
    nc = nextcloud_app()
    buffer = io.BytesIO()
    nc._session.download2fp(  # how CCBE's injest fetches a file
        url_path="/ocs/v2.php/apps/context_chat/files/7",
        fp=buffer,
        dav=False,
        params={"userId": "alice"},
    )
    assert buffer.getvalue() == b"file bytes" and fake.file_downloads == [(7, "alice")]
    with pytest.raises(NextcloudException) as missing:
        nc._session.download2fp(
            url_path="/ocs/v2.php/apps/context_chat/files/9",
            fp=io.BytesIO(),
            dav=False,
            params={"userId": "alice"},
        )
    assert missing.value.status_code == 404
    scope = nc.ocs(
        "POST",
        "/ocs/v2.php/apps/context_chat/resolve_scope_list",
        json={"source_ids": ["files__default: 100", "notes__notes: 3"], "userId": "alice"},
    )
    assert scope == {"source_ids": ["files__default: 7", "files__default: 8", "notes__notes: 3"]}
    enriched = nc.ocs(
        "POST",
        "/ocs/v2.php/apps/context_chat/enrich_sources",
        json={"sources": [{"source_id": "files__default: 7", "title": "a.txt"}], "userId": "alice"},
    )
    assert enriched["sources"] == [
        {
            "id": "files__default: 7",
            "label": "a.txt",
            "icon": "",
            "url": "http://nextcloud.invalid/f/7",
        }
    ]


def test_tasks_provider_next_and_result_and_the_echoing_llm(fake: FakeNextcloud, url: str) -> None:
    nc = nextcloud_app()
    types = ["context_chat:context_chat", "context_chat:context_chat_search"]
    assert nc.providers.task_processing.next_task(list(CONTEXT_CHAT_PROVIDERS), types) == {}
    task_id = fake.schedule_task(
        "context_chat:context_chat", "alice", {"prompt": "q?", "scopeType": "none"}
    )
    fake.schedule_task("core:text2text", "alice", {"input": "not for CCBE"})
    got = nc.providers.task_processing.next_task(list(CONTEXT_CHAT_PROVIDERS), types)
    assert got["task"]["id"] == task_id and got["task"]["userId"] == "alice"
    assert nc.providers.task_processing.next_task(list(CONTEXT_CHAT_PROVIDERS), types) == {}
    nc.providers.task_processing.report_result(task_id, {"output": "answer", "sources": []})
    assert fake.task_results[task_id]["output"] == {"output": "answer", "sources": []}
    assert fake.tasks[task_id]["status"] == "STATUS_SUCCESSFUL"
    # nc_texttotext: schedule core:text2text as the user, then poll the task
    nc.set_user("alice")
    scheduled = nc.ocs(
        "POST",
        "/ocs/v1.php/taskprocessing/schedule",
        json={
            "type": "core:text2text",
            "appId": "context_chat_backend",
            "input": {"input": "the prompt"},
        },
    )
    polled = nc.ocs("GET", f"/ocs/v1.php/taskprocessing/task/{scheduled['task']['id']}")
    assert polled["task"]["status"] == "STATUS_SUCCESSFUL"
    assert polled["task"]["output"]["output"] == fake_llm_output("the prompt")
    assert "- Prompt: the prompt" in fake_llm_output("the prompt")
    assert fake.llm_prompts == [("alice", "the prompt")]


def test_appapi_authentication_is_required(fake: FakeNextcloud, url: str, monkeypatch) -> None:
    import httpx
    from nc_py_api import NextcloudException

    monkeypatch.setenv("APP_SECRET", "not-the-secret")
    with pytest.raises(NextcloudException) as refused:
        nextcloud_app().ocs("GET", "/ocs/v1.php/apps/app_api/ex-app/state")
    assert refused.value.status_code == 401
    good = appapi_headers(fake.app_id, "", fake.app_secret)
    assert httpx.get(f"{url}/ocs/v1.php/cloud/capabilities", headers=good).status_code == 401
    other_app = appapi_headers("another_app", APP_VERSION, fake.app_secret)
    assert httpx.get(f"{url}/ocs/v1.php/cloud/capabilities", headers=other_app).status_code == 401
    assert [f.split(": ", 1)[1] for f in fake.auth_failures] == [
        "wrong or missing app secret",
        "empty EX-APP-VERSION",
        "EX-APP-ID 'another_app'",
    ]
    signed = appapi_headers(fake.app_id, APP_VERSION, fake.app_secret)
    assert httpx.get(f"{url}/ocs/v2.php/apps/nope", headers=signed).status_code == 404
    assert fake.unknown == ["GET /ocs/v2.php/apps/nope"]
