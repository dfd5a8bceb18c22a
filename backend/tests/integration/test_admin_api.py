"""The admin API end to end: the standalone app (same router as in Onyx) on the real test
database, Redis and R2R.  Credentials are live-tested against R2R, read back from the raw
row to prove encryption at rest, rotated with the real CLI, and used by a real worker.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_helpers import (
    ADMIN_TOKEN,
    OTHER_KEY,
    TEST_KEY,
    AdminClient,
    admin_client,
    admin_context,
    captured_logs,
    create_api_key,
    forget_tenant,
    raw_config_row,
    revoke_api_key,
    sample_docs,
)
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from redis import Redis

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.celery_app import queue_key
from onyx.r2r_sender.credentials import (
    CredentialStore,
    credentials_for,
    export_state,
    secret_hint,
)
from onyx.r2r_sender.credentials_crypto import EncryptionKey, EncryptionKeyError, Keyring

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def ctx(settings):
    return admin_context(settings)


@pytest.fixture
def admin(ctx, tenant_id) -> Iterator[AdminClient]:
    client = admin_client(ctx, tenant_id)
    yield client
    forget_tenant(ctx.ledger.engine, tenant_id)


def _manual_decrypt(secret: str, tenant_id: str, column: str, blob: bytes) -> str:
    """Decrypt a stored blob without the module: HKDF-SHA256 key, AES-256-GCM, tenant AAD."""
    key = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=b"onyx-r2r credential encryption v1",
        info=b"onyx-r2r tenant_config aes-256-gcm",
    ).derive(secret.encode())
    aad = f"onyx-r2r/tenant_config/{column}/{tenant_id}".encode()
    return AESGCM(key).decrypt(blob[12:24], blob[24:], aad).decode()


def _no_secret(secret: str, *texts: str) -> None:
    for text in texts:
        assert secret not in text
        for part in secret.split("."):  # R2R keys are "key_<id>.<secret>"
            if len(part) >= 12:
                assert part not in text


# ------------------------------------------------------------------- save
def test_good_key_is_saved_encrypted_masked_and_never_logged(admin, stack, ctx, tenant_id):
    key = stack["R2R_API_KEY"]
    url = stack["R2R_BASE_URL"]
    with captured_logs() as lines:
        saved = admin.put("/config", json={"base_url": url, "api_key": key})
        shown = admin.get("/config")
        tested = admin.post("/test", json={"base_url": url})  # the stored key, same URL
        status = admin.get("/status")
    assert saved.status_code == 200, saved.text
    body = shown.json()
    assert body["source"] == "stored" and body["credential_type"] == "r2r_api"
    assert body["base_url"] == url and body["has_api_key"] and body["encrypted"]
    assert body["api_key_hint"] == secret_hint(key) and "…" in body["api_key_hint"]
    assert "api_key" not in body
    assert tested.status_code == 200 and tested.json()["ok"], tested.text
    assert "Connected to R2R" in tested.json()["message"]
    assert status.status_code == 200
    _no_secret(key, saved.text, shown.text, tested.text, status.text, "\n".join(lines))
    assert any("stored the r2r credential" in line for line in lines)  # capture works

    row = raw_config_row(ctx.ledger.engine, tenant_id)
    assert row is not None and row["credential_type"] == "r2r_api"
    blob = bytes(row["api_key_ciphertext"])
    assert blob.startswith(b"R2K1") and key.encode() not in blob
    _no_secret(key, repr(row))
    assert row["key_version"] == 1
    assert _manual_decrypt(TEST_KEY, tenant_id, "api_key_ciphertext", blob) == key
    with pytest.raises(InvalidTag):  # the tenant id is authenticated
        _manual_decrypt(TEST_KEY, tenant_id + "x", "api_key_ciphertext", blob)
    with pytest.raises(InvalidTag):
        _manual_decrypt(OTHER_KEY, tenant_id, "api_key_ciphertext", blob)

    stored = credentials_for(tenant_id, store=ctx.store)
    assert stored is not None and stored.api_key.get() == key and stored.base_url == url


def test_bad_key_is_refused_with_r2rs_reason_and_nothing_is_stored(admin, stack, ctx, tenant_id):
    url = stack["R2R_BASE_URL"]
    bad = "key_notreal0000.this-is-not-a-valid-secret"
    with captured_logs() as lines:
        refused = admin.put("/config", json={"base_url": url, "api_key": bad})
    assert refused.status_code == 400
    error = refused.json()
    assert error["error"] == "connection_test_failed"
    assert error["reason"] == "Invalid token or API key"  # R2R's own words
    assert "rejected the API key" in error["detail"] and error["r2r_status"] == 401
    assert raw_config_row(ctx.ledger.engine, tenant_id) is None
    assert admin.get("/config").json()["source"] != "stored"
    _no_secret(bad, refused.text, "\n".join(lines))

    # with a good credential stored, a failed update leaves it untouched
    assert admin.put("/config", json={"base_url": url, "api_key": stack["R2R_API_KEY"]}).is_success
    before = raw_config_row(ctx.ledger.engine, tenant_id)
    assert admin.put("/config", json={"base_url": url, "api_key": bad}).status_code == 400
    assert admin.post("/test", json={"base_url": url, "api_key": bad}).status_code == 400
    assert raw_config_row(ctx.ledger.engine, tenant_id) == before


def test_login_credential_and_wrong_password(admin, stack, ctx, tenant_id):
    url, email, password = (
        stack["R2R_BASE_URL"],
        stack["R2R_ADMIN_EMAIL"],
        stack["R2R_ADMIN_PASSWORD"],
    )
    with captured_logs() as lines:
        wrong = admin.put(
            "/config",
            json={"base_url": url, "login_email": email, "password": "wrong-password-123"},
        )
        saved = admin.put(
            "/config", json={"base_url": url, "login_email": email, "password": password}
        )
    assert wrong.status_code == 400
    assert "rejected the login" in wrong.json()["detail"]
    assert saved.status_code == 200, saved.text
    body = saved.json()
    assert body["login_email"] == email and body["has_password"] and not body["has_api_key"]
    _no_secret(password, wrong.text, saved.text, "\n".join(lines))
    row = raw_config_row(ctx.ledger.engine, tenant_id)
    assert row["api_key_ciphertext"] is None
    blob = bytes(row["password_ciphertext"])
    assert password.encode() not in blob
    assert _manual_decrypt(TEST_KEY, tenant_id, "password_ciphertext", blob) == password
    stored = credentials_for(tenant_id, store=ctx.store)
    assert stored is not None and stored.uses_login and stored.email == email
    # the stored password is reused for the same URL and email
    assert (
        admin.post("/test", json={"base_url": url, "login_email": email}).json()["auth"] == "login"
    )


def test_stored_secret_is_not_sent_to_a_changed_url(admin, stack):
    url, key = stack["R2R_BASE_URL"], stack["R2R_API_KEY"]
    assert admin.put("/config", json={"base_url": url, "api_key": key}).is_success
    other = url.replace("127.0.0.1", "localhost")
    moved = admin.put("/config", json={"base_url": other})
    assert moved.status_code == 422
    assert "Enter the API key again" in moved.json()["detail"]
    assert admin.post("/test", json={"base_url": other}).status_code == 422
    assert admin.put("/config", json={"base_url": other, "api_key": key}).status_code == 200
    assert admin.get("/config").json()["base_url"] == other


# ------------------------------------------------------------------- auth
def test_non_admins_get_403_and_nothing_changes(admin, stack, ctx, tenant_id):
    url, key = stack["R2R_BASE_URL"], stack["R2R_API_KEY"]
    calls = [
        ("GET", "/config", None),
        ("PUT", "/config", {"base_url": url, "api_key": key}),
        ("DELETE", "/config", None),
        ("POST", "/test", {"base_url": url, "api_key": key}),
        ("PUT", "/export", {"enabled": True, "mode": "mirror"}),
        ("GET", "/status", None),
        ("GET", "/dead-letters", None),
        ("POST", "/dead-letters/replay", {"all": True}),
        ("POST", "/resync", None),
        ("POST", "/reconcile", None),
    ]
    for auth in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": ADMIN_TOKEN}):
        for method, path, body in calls:
            response = admin.client.request(
                method,
                f"/admin/r2r{path}",
                json=body,
                headers={"X-Onyx-Tenant": tenant_id, **auth},
            )
            assert response.status_code == 403, (auth, method, path)
            assert response.json()["error"] == "forbidden"
            assert "Admin access required" in response.json()["detail"]
            _no_secret(key, response.text)
    assert raw_config_row(ctx.ledger.engine, tenant_id) is None


# -------------------------------------------------------------- URL policy
@pytest.mark.parametrize(
    "url, status, fragment",
    [
        ("ftp://127.0.0.1:7272", 422, "http:// or https://"),
        ("127.0.0.1:7272", 422, "http:// or https://"),
        ("http://admin:pw@127.0.0.1:7272", 422, "must not contain a user name or password"),
        ("http://169.254.169.254", 422, "cloud metadata"),
        ("http://169.254.169.254.nip.invalid", 422, "could not be resolved"),
        ("http://[fe80::1]:7272", 422, "link-local"),
        ("http://169.254.7.7:7272", 422, "link-local"),
        ("http://metadata.google.internal", 422, "cloud metadata service"),
        ("http://100.100.100.200", 422, "cloud metadata"),
        ("http://[fd00:ec2::254]", 422, "cloud metadata"),
        ("http://[::ffff:a9fe:a9fe]", 422, "cloud metadata"),
        ("http://0.0.0.0:7272", 422, "not a usable server address"),
        ("http://127.0.0.1:7272/?debug=1", 422, "query string"),
        ("http://127.0.0.1:9", 400, "Could not reach R2R"),
        ("http://127.0.0.1:7272/nothing-here", 400, "without /v3"),
    ],
)
def test_url_validation(admin, stack, ctx, tenant_id, url, status, fragment):
    response = admin.put("/config", json={"base_url": url, "api_key": stack["R2R_API_KEY"]})
    assert response.status_code == status, response.text
    assert fragment in response.json()["detail"]
    assert raw_config_row(ctx.ledger.engine, tenant_id) is None


def test_public_policy_refuses_loopback(settings, stack, tenant_id):
    from onyx.r2r_sender.url_policy import UrlPolicy

    ctx = admin_context(settings, url_policy=UrlPolicy.PUBLIC)
    client = admin_client(ctx, tenant_id)
    response = client.put(
        "/config", json={"base_url": stack["R2R_BASE_URL"], "api_key": stack["R2R_API_KEY"]}
    )
    assert response.status_code == 422
    assert "loopback" in response.json()["detail"]
    assert client.get("/config").json()["url_policy"] == "public"


# -------------------------------------------------------------- encryption
def test_without_a_key_secrets_are_refused_unless_the_dev_flag_is_set(settings, stack, tenant_id):
    body = {"base_url": stack["R2R_BASE_URL"], "api_key": stack["R2R_API_KEY"]}
    strict = admin_client(admin_context(settings, key=None), tenant_id)
    try:
        refused = strict.put("/config", json=body)
        assert refused.status_code == 409
        assert refused.json()["error"] == "encryption_not_configured"
        assert "ONYX_R2R_ENCRYPTION_KEY" in refused.json()["detail"]
        assert "ONYX_R2R_ALLOW_UNENCRYPTED_SECRETS=true" in refused.json()["detail"]
        assert raw_config_row(strict.context.ledger.engine, tenant_id) is None
        assert strict.get("/config").json()["encryption"]["configured"] is False

        dev = admin_client(admin_context(settings, key=None, allow_unencrypted=True), tenant_id)
        saved = dev.put("/config", json=body)
        assert saved.status_code == 200 and saved.json()["encrypted"] is False
        row = raw_config_row(dev.context.ledger.engine, tenant_id)
        assert bytes(row["api_key_ciphertext"]).startswith(b"R2P0") and row["key_version"] == 0
    finally:
        forget_tenant(strict.context.ledger.engine, tenant_id)


def _rotate(settings, *args: str, new: str, old: str | None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "ONYX_R2R_DATABASE_URL": settings.database_url,
        "ONYX_R2R_ENCRYPTION_KEY": new,
    }
    env.pop("ONYX_R2R_OLD_ENCRYPTION_KEY", None)
    if old:
        env["ONYX_R2R_OLD_ENCRYPTION_KEY"] = old
    return subprocess.run(
        [sys.executable, "-m", "onyx.r2r_sender.cli", "rotate-key", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_rotate_key_reencrypts_with_the_new_key(settings, stack):
    url, key = stack["R2R_BASE_URL"], stack["R2R_API_KEY"]
    tenants = [f"test_rot_{uuid.uuid4().hex[:10]}" for _ in range(3)]
    a, plain, stranger = tenants
    ctx_a = admin_context(settings)
    try:
        assert (
            admin_client(ctx_a, a).put("/config", json={"base_url": url, "api_key": key}).is_success
        )
        dev = admin_context(settings, key=None, allow_unencrypted=True)
        assert (
            admin_client(dev, plain)
            .put("/config", json={"base_url": url, "api_key": key})
            .is_success
        )
        third = admin_context(settings, key="a-third-key-nobody-has-0123456789")
        assert (
            admin_client(third, stranger)
            .put("/config", json={"base_url": url, "api_key": key})
            .is_success
        )
        before = {t: raw_config_row(ctx_a.ledger.engine, t) for t in tenants}

        # a row under an unknown key stops the whole rotation; nothing changes
        failed = _rotate(settings, *[f"--tenant={t}" for t in tenants], new=OTHER_KEY, old=TEST_KEY)
        assert failed.returncode == 2, failed.stdout + failed.stderr
        assert "cannot be decrypted" in failed.stderr and "rotate-key" in failed.stderr
        _no_secret(key, failed.stdout, failed.stderr)
        assert {t: raw_config_row(ctx_a.ledger.engine, t) for t in tenants} == before

        done = _rotate(settings, f"--tenant={a}", f"--tenant={plain}", new=OTHER_KEY, old=TEST_KEY)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "re-encrypted 1 stored credentials" in done.stdout
        assert "1 were unencrypted" in done.stdout
        _no_secret(key, done.stdout, done.stderr)
        new_id = EncryptionKey(OTHER_KEY, source="x").key_id
        for tenant, version in ((a, 2), (plain, 1)):
            row = raw_config_row(ctx_a.ledger.engine, tenant)
            blob = bytes(row["api_key_ciphertext"])
            assert blob[4:12] == new_id and row["key_version"] == version
            assert _manual_decrypt(OTHER_KEY, tenant, "api_key_ciphertext", blob) == key
        new_store = CredentialStore(
            ctx_a.ledger.engine, keyring=Keyring(EncryptionKey(OTHER_KEY, source="new"))
        )
        assert new_store.load(a).api_key.get() == key
        with pytest.raises(EncryptionKeyError, match="cannot be decrypted"):
            ctx_a.store.load(a)  # the old key alone no longer opens it

        again = _rotate(settings, f"--tenant={a}", new=OTHER_KEY, old=TEST_KEY)
        assert again.returncode == 0 and "1 already used it" in again.stdout
        missing = _rotate(settings, f"--tenant={a}", new="", old=None)
        assert missing.returncode == 2 and "ONYX_R2R_ENCRYPTION_KEY" in missing.stderr
    finally:
        for tenant in tenants:
            forget_tenant(ctx_a.ledger.engine, tenant)


# ------------------------------------------------------- export and status
@pytest.fixture
def switches(monkeypatch):
    """Set the environment's switches for one test (the API reads them on every request)."""

    def set_switches(**values: str) -> None:
        for name in ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND"):
            monkeypatch.delenv(name, raising=False)
        for name, value in values.items():
            monkeypatch.setenv(name, value)

    return set_switches


def test_export_switch_and_delete(admin, stack, ctx, tenant_id, switches):
    switches(ONYX_EXPORT_R2R="tenant")
    on = admin.put("/export", json={"enabled": True, "mode": "mirror"})
    assert on.status_code == 200, on.text
    assert on.json()["export_enabled"] and on.json()["export_state"] == "mirror"
    assert on.json()["export_source"] == "stored"
    assert on.json()["source"] != "stored"  # no secret yet: the env's server is used
    assert credentials_for(tenant_id, store=ctx.store) is None
    bad = admin.put("/export", json={"enabled": True, "mode": "sideways"})
    assert bad.status_code == 422 and "mode" in bad.json()["detail"]
    url, key = stack["R2R_BASE_URL"], stack["R2R_API_KEY"]
    saved = admin.put("/config", json={"base_url": url, "api_key": key}).json()
    assert saved["export_state"] == "mirror" and saved["export_source"] == "stored"  # kept
    gone = admin.delete("/config")
    assert gone.json() == {"deleted": True, "message": "The stored connection was removed."}
    assert raw_config_row(ctx.ledger.engine, tenant_id) is None
    assert admin.delete("/config").json()["deleted"] is False


def test_config_shows_the_effective_state_and_its_source(admin, stack, ctx, tenant_id, switches):
    """The environment's replace mode is shown as such; saving a connection stores no
    export choice (it used to store "off", which overrode the environment)."""
    switches(ONYX_EXPORT_R2R="true", R2R_EXPORT_MODE="replace")
    shown = admin.get("/config").json()
    assert (shown["export_enabled"], shown["export_mode"]) == (True, "replace")
    assert shown["export_state"] == "replace" and shown["export_source"] == "environment"
    assert shown["searches_r2r"] and shown["stored_export"] is None
    assert shown["switches"] == {
        "export": "true",
        "mode": "replace",
        "backend": "",
        "locked": False,
    }
    url, key = stack["R2R_BASE_URL"], stack["R2R_API_KEY"]
    saved = admin.put("/config", json={"base_url": url, "api_key": key})
    assert saved.status_code == 200, saved.text
    assert saved.json()["export_state"] == "replace"
    assert saved.json()["export_source"] == "environment"
    assert raw_config_row(ctx.ledger.engine, tenant_id)["export_enabled"] is None
    assert export_state(tenant_id, store=ctx.store) is None
    switches(ONYX_EXPORT_R2R="true", ONYX_INDEX_BACKEND="r2r")
    mirror = admin.get("/config").json()
    assert mirror["export_state"] == "mirror" and mirror["searches_r2r"]


def test_the_switch_is_refused_while_the_environment_has_the_bridge_off(admin, switches):
    switches(R2R_EXPORT_MODE="replace")
    shown = admin.get("/config").json()
    assert shown["export_state"] == "off" and not shown["export_enabled"]
    assert shown["switches"]["locked"] is True
    refused = admin.put("/export", json={"enabled": True, "mode": "mirror"})
    assert refused.status_code == 409
    assert refused.json()["error"] == "switched_off_by_environment"
    assert "ONYX_EXPORT_R2R" in refused.json()["detail"]


def _wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not reached")


def test_leaving_replace_mode_needs_a_rebuild_of_onyxs_index(admin, ctx, tenant_id, switches):
    switches(ONYX_EXPORT_R2R="tenant")
    assert admin.put("/export", json={"enabled": True, "mode": "replace"}).status_code == 200
    # without a rebuild: refused, nothing changes
    for change in ({"enabled": False}, {"enabled": True, "mode": "mirror"}, {"enabled": None}):
        refused = admin.put("/export", json=change)
        assert refused.status_code == 409, change
        assert refused.json()["error"] == "onyx_index_stale"
        assert "Onyx's own index was not written" in refused.json()["detail"]
    assert admin.delete("/config").json()["error"] == "onyx_index_stale"
    # outside Onyx no rebuild can start: refused as well
    assert ctx.rebuild_onyx_index is None
    unavailable = admin.put("/export", json={"enabled": False, "onyx_index": "rebuild"})
    assert unavailable.json()["error"] == "rebuild_unavailable"
    assert export_state(tenant_id, store=ctx.store) == (True, "replace")
    # with Onyx's rebuild (here a recorder standing in for Onyx's database functions)
    started: list[str] = []
    ctx.rebuild_onyx_index = lambda tenant: started.append(tenant) or 3
    ctx.rebuild_delay_seconds = 0.0
    assert admin.post("/onyx-reindex").json()["error"] == "still_replacing"
    switched = admin.put("/export", json={"enabled": False, "onyx_index": "rebuild"})
    assert switched.status_code == 200, switched.text
    assert switched.json()["export_state"] == "off"
    assert _wait_for(lambda: started) == [tenant_id]
    rebuild = _wait_for(lambda: admin.get("/config").json()["onyx_rebuild"]["state"] == "started")
    assert rebuild
    shown = admin.get("/config").json()["onyx_rebuild"]
    assert shown["connectors"] == 3 and "3 connectors" in shown["message"]
    # entering replace mode needs nothing; a failing rebuild is reported on the page
    assert admin.put("/export", json={"enabled": True, "mode": "replace"}).status_code == 200

    def broken(tenant: str) -> int:
        raise RuntimeError("cc_pair table is locked")

    ctx.rebuild_onyx_index = broken
    assert admin.put("/export", json={"enabled": None, "onyx_index": "rebuild"}).status_code == 200
    failed = _wait_for(
        lambda: (admin.get("/config").json()["onyx_rebuild"] or {}).get("state") == "failed"
    )
    assert failed and "locked" in admin.get("/config").json()["onyx_rebuild"]["message"]
    assert admin.get("/config").json()["export_source"] == "environment"
    assert ctx.redis.delete(f"onyx_r2r:onyx_rebuild:{tenant_id}") == 1


def test_status_dead_letter_paging_and_replay_rules(admin, settings, ctx, tenant_id):
    sender = R2RDocumentSender(tenant_id=tenant_id, settings=settings)
    sender.doorbell.ring = lambda *a, **k: False  # no worker in this test: keep rows pending
    report = sender.send_batch(sample_docs("status", 3))
    assert len(report.changed) == 3
    for i in range(5):
        ctx.ledger.record_invalid(tenant_id, f"bad-{i}", f"document bad-{i} has no text")
    time.sleep(1.1)
    status = admin.get("/status").json()
    assert status["counts"]["pending"] == 3 and status["counts"]["dead"] == 5
    assert status["backlog"] == 3 and status["total"] == 8
    assert status["oldest_pending_seconds"] >= 1.0
    assert len(status["throughput"]) == 15 and status["backlog_history"][-1]["pending"] == 3
    assert status["breaker"]["state"] in ("closed", "half_open", "open")
    assert status["last_reconcile"] is None

    first = admin.get("/dead-letters", params={"limit": 2}).json()
    second = admin.get("/dead-letters", params={"limit": 2, "offset": 2}).json()
    assert first["total"] == 5 and len(first["items"]) == 2 and len(second["items"]) == 2
    item = first["items"][0]
    assert item["error_class"] == "invalid_document" and "has no text" in item["reason"]
    assert item["operation"] == "upsert" and item["attempts"] == 1 and item["last_attempt_at"]
    classes = {c["name"]: c for c in admin.get("/dead-letter-classes").json()["classes"]}
    assert classes[item["error_class"]]["label"] == "Invalid document"  # what the page shows
    assert {i["document_id"] for i in first["items"]}.isdisjoint(
        {i["document_id"] for i in second["items"]}
    )
    assert admin.get("/dead-letters", params={"limit": 0}).status_code == 422

    both = admin.post("/dead-letters/replay", json={"all": True, "document_ids": ["bad-0"]})
    assert both.status_code == 422 and "either" in both.json()["detail"]
    assert admin.post("/dead-letters/replay", json={}).status_code == 422
    nothing = admin.post("/dead-letters/replay", json={"all": True}).json()
    assert nothing["requeued"] == 0 and "invalid" in nothing["message"]

    with ctx.ledger.engine.begin() as conn:  # a finished reconcile run shows up in status
        from sqlalchemy import text

        conn.execute(
            text(
                "INSERT INTO r2r_bridge.reconcile_run (tenant_id, finished_at, outcome, result) "
                "VALUES (:t, now(), 'ok', CAST(:r AS jsonb))"
            ),
            {"t": tenant_id, "r": json.dumps({"orphans_deleted": 0, "recreated": 2})},
        )
    last = admin.get("/status").json()["last_reconcile"]
    assert last["outcome"] == "ok" and last["result"]["recreated"] == 2


def test_resync_and_reconcile_send_named_tasks_with_expiry(admin, settings, tenant_id):
    redis = Redis.from_url(settings.broker_url)
    try:
        for path, task in (("/resync", "onyx_r2r.backfill"), ("/reconcile", "onyx_r2r.reconcile")):
            started = admin.post(path)
            assert started.status_code == 202, started.text
            body = started.json()
            assert body["task"] == task and body["task_id"]
            again = admin.post(path)
            assert again.status_code == 409 and again.json()["error"] == "already_requested"
        messages = [json.loads(m) for m in redis.lrange(queue_key(settings.queue), 0, -1)]
        by_task = {m["headers"]["task"]: m for m in messages}
        for task in ("onyx_r2r.backfill", "onyx_r2r.reconcile"):
            headers = by_task[task]["headers"]
            assert headers["expires"], "sent with expires="
            assert f"'tenant_id': '{tenant_id}'" in headers["kwargsrepr"]
    finally:
        redis.delete(queue_key(settings.queue))


# -------------------------------------------------- a real worker, end to end
def test_workers_use_the_stored_credential_and_replay_fixes_dead_letters(
    admin, settings, stack, ctx, tenant_id, tmp_path, monkeypatch
):
    """The env points workers at nothing; only the tenant's stored credential works.
    Revoking its key in R2R dead-letters a document; saving a new credential (a login)
    and replaying through the API syncs it."""
    from stack_helpers import WorkerFactory, wait_until

    url = stack["R2R_BASE_URL"]
    fresh = create_api_key(stack)
    monkeypatch.setenv("ONYX_R2R_ENCRYPTION_KEY", TEST_KEY)
    monkeypatch.setenv("ONYX_R2R_CREDENTIAL_CACHE_SECONDS", "0.5")
    worker_settings = settings.with_overrides(
        r2r_base_url="http://127.0.0.1:9",
        r2r_api_key="",
        r2r_email="",
        r2r_password="",
        max_attempts=2,
    )
    factory = WorkerFactory(settings=worker_settings, tmp=tmp_path)
    try:
        saved = admin.put("/config", json={"base_url": url, "api_key": fresh["api_key"]})
        assert saved.status_code == 200, saved.text
        worker = factory.start(concurrency=2)
        sender = R2RDocumentSender(tenant_id=tenant_id, settings=settings)
        assert len(sender.send_batch(sample_docs("e2e", 3)).changed) == 3

        def counts() -> dict:
            return admin.get("/status").json()["counts"]

        wait_until(lambda: counts()["synced"] == 3, 120, what="3 documents synced")
        status = admin.get("/status").json()
        assert sum(p["applied"] for p in status["throughput"]) >= 3
        assert status["backlog"] == 0

        revoke_api_key(stack, fresh["key_id"])
        assert len(sender.send_batch(sample_docs("e2e-late", 1)).changed) == 1
        wait_until(lambda: counts()["dead"] == 1, 120, what="a dead letter")
        dead = admin.get("/dead-letters").json()["items"][0]
        assert dead["document_id"] == "e2e-late-0" and dead["error_class"] == "r2r_config"
        assert "rejected the API key" in dead["reason"] and dead["attempts"] == 2

        fixed = admin.put(
            "/config",
            json={
                "base_url": url,
                "api_key": "",
                "login_email": stack["R2R_ADMIN_EMAIL"],
                "password": stack["R2R_ADMIN_PASSWORD"],
            },
        )
        assert fixed.status_code == 200 and not fixed.json()["has_api_key"], fixed.text
        time.sleep(1.0)  # the worker's credential cache (0.5 s here)
        replayed = admin.post("/dead-letters/replay", json={"document_ids": ["e2e-late-0"]})
        assert replayed.json()["requeued"] == 1
        wait_until(
            lambda: counts()["synced"] == 4 and counts()["dead"] == 0,
            120,
            what="replayed doc synced",
        )
        log = worker.log()
        _no_secret(fresh["api_key"], log)
        _no_secret(stack["R2R_ADMIN_PASSWORD"], log)
    finally:
        factory.stop_all()
        revoke_api_key(stack, fresh["key_id"])


def test_leaving_replace_mode_is_refused_when_onyx_has_no_index_of_its_own(
    admin, ctx, tenant_id, switches, monkeypatch
):
    """Replace mode without Vespa and OpenSearch (ONYX_DISABLE_VESPA=true,
    ENABLE_OPENSEARCH_INDEXING_FOR_ONYX=false, what replace mode needs so Onyx's workers
    start): Onyx's own factory raises for any tenant that is not in replace mode, so the
    switch is refused, even with a rebuild, naming the two settings (issue 17)."""
    switches(ONYX_EXPORT_R2R="tenant")
    monkeypatch.setenv("ONYX_DISABLE_VESPA", "true")
    monkeypatch.setenv("ENABLE_OPENSEARCH_INDEXING_FOR_ONYX", "false")
    assert admin.put("/export", json={"enabled": True, "mode": "replace"}).status_code == 200
    ctx.rebuild_onyx_index = lambda tenant: 0
    for change in (
        {"enabled": False, "onyx_index": "rebuild"},
        {"enabled": True, "mode": "mirror", "onyx_index": "rebuild"},
        {"enabled": None, "onyx_index": "rebuild"},
    ):
        refused = admin.put("/export", json=change)
        assert refused.status_code == 409, (change, refused.text)
        assert refused.json()["error"] == "no_onyx_index"
        detail = refused.json()["detail"]
        assert "ENABLE_OPENSEARCH_INDEXING_FOR_ONYX" in detail and "ONYX_DISABLE_VESPA" in detail
    assert export_state(tenant_id, store=ctx.store) == (True, "replace")
    # with one of Onyx's indices configured the rebuild path is open again
    monkeypatch.setenv("ENABLE_OPENSEARCH_INDEXING_FOR_ONYX", "true")
    ctx.rebuild_delay_seconds = 0.0
    assert admin.put("/export", json={"enabled": False, "onyx_index": "rebuild"}).status_code == 200
