"""FileTokenStore and LoginAuth with a store: one login serves every process of a host.

Pure: the auth flow is driven as httpx drives it, with R2R's answers written here; the
real server's logins and 401s are covered by ``tests/integration/test_ccbe_r2r.py``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
from pathlib import Path

import httpx
import pytest

from onyx.r2r_sender import FileTokenStore, TokenStore
from onyx.r2r_sender.client_auth import build_auth
from onyx.r2r_sender.token_store import token_key

BASE, EMAIL, PASSWORD = "http://127.0.0.1:7272", "svc@example.com", "pw-token-store-unit"


def login_answer(token: str) -> httpx.Response:
    return httpx.Response(200, json={"results": {"access_token": {"token": token}}})


def drive(auth: object, answers: list[httpx.Response]) -> list[httpx.Request]:
    """Run one request through *auth*'s flow, answering each yielded request in turn."""
    flow = auth.auth_flow(httpx.Request("GET", f"{BASE}/v3/health"))  # type: ignore[attr-defined]
    sent = [next(flow)]
    try:
        for answer in answers:
            sent.append(flow.send(answer))
    except StopIteration:
        pass
    return sent


def test_the_store_keeps_tokens_in_a_private_file(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "r2r" / "tokens.json")
    assert isinstance(store, TokenStore) and store.load("k") is None
    store.save("k", "jwt-1")
    store.save("other", "jwt-2")
    assert store.load("k") == "jwt-1" and store.load("other") == "jwt-2"
    assert store.path.stat().st_mode & 0o777 == 0o600
    store.save("k", None)
    assert store.load("k") is None and json.loads(store.path.read_text()) == {"other": "jwt-2"}
    store.path.write_text("not json")
    assert store.load("other") is None  # an unreadable store is empty
    copy = pickle.loads(pickle.dumps(store))
    assert copy.path == store.path and repr(copy) == repr(store)
    key = token_key(BASE, EMAIL)
    assert EMAIL not in key and key == token_key(BASE + "/", EMAIL) != token_key(BASE, "x")


def test_a_store_that_cannot_be_written_says_which_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    store = FileTokenStore(blocked / "collections.json")  # CCBE keeps collection ids here
    with caplog.at_level(logging.WARNING, logger="onyx.r2r_sender.token_store"):
        store.save("k", "value-that-must-not-be-logged")  # never raises: the value is lost
    assert store.load("k") is None
    [record] = caplog.records
    assert "cannot save collections.json in" in record.getMessage()
    assert "login token" not in record.getMessage()
    assert "value-that-must-not-be-logged" not in caplog.text


def test_a_stored_token_saves_the_login_and_a_401_renews_it(tmp_path: Path) -> None:
    store = FileTokenStore(tmp_path / "tokens.json")
    first = build_auth(BASE, None, EMAIL, PASSWORD, store)
    sent = drive(first, [login_answer("jwt-1"), httpx.Response(200)])
    assert [r.url.path for r in sent] == ["/v3/users/login", "/v3/health"]
    assert sent[1].headers["Authorization"] == "Bearer jwt-1" and first.logins == 1
    assert PASSWORD not in store.path.read_text()
    # another process: the stored token, no login
    second = build_auth(BASE, None, EMAIL, PASSWORD, store)
    sent = drive(second, [httpx.Response(200)])
    assert [r.url.path for r in sent] == ["/v3/health"] and second.logins == 0
    assert sent[0].headers["Authorization"] == "Bearer jwt-1"
    # the token expired: one login, the new token saved for everyone
    third = build_auth(BASE, None, EMAIL, PASSWORD, store)
    sent = drive(third, [httpx.Response(401), login_answer("jwt-2"), httpx.Response(200)])
    assert [r.url.path for r in sent] == ["/v3/health", "/v3/users/login", "/v3/health"]
    assert third.logins == 1 and store.load(token_key(BASE, EMAIL)) == "jwt-2"
    # a process holding the expired token finds the renewed one in the store: no login
    sent = drive(second, [httpx.Response(401), httpx.Response(200)])
    assert [r.url.path for r in sent] == ["/v3/health", "/v3/health"] and second.logins == 0
    assert sent[-1].headers["Authorization"] == "Bearer jwt-2"


def _hold_lock(path: str, started: object, release: object) -> None:
    with FileTokenStore(path).locked():
        started.set()  # type: ignore[attr-defined]
        release.wait(10)  # type: ignore[attr-defined]


def test_the_lock_is_held_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "tokens.json")
    ctx = multiprocessing.get_context("spawn")
    started, release = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold_lock, args=(path, started, release))
    holder.start()
    try:
        assert started.wait(30)
        import fcntl
        import os

        handle = os.open(FileTokenStore(path).lock_path, os.O_RDWR)
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked_elsewhere = False
            except BlockingIOError:
                locked_elsewhere = True
        finally:
            os.close(handle)
        assert locked_elsewhere
    finally:
        release.set()
        holder.join(30)
    with FileTokenStore(path).locked():  # free again
        pass
