#!/usr/bin/env python3
"""Make sure KEY_FILE holds a working superuser API key for the local R2R server.

Used by ``scripts/stack up`` (system python3, stdlib only).

  R2R_ADMIN_EMAIL=... R2R_ADMIN_PASSWORD=... r2r_api_key.py --base-url URL --key-file PATH

If KEY_FILE holds a key that still works (GET /v3/users/me with ``x-api-key`` -> 200 and
is_superuser), nothing happens and ``reused`` is printed. Otherwise the admin logs in
(POST /v3/users/login, form fields username/password), a key is created
(POST /v3/users/{id}/api-keys) and written to KEY_FILE (mode 600); ``created`` is printed.
Neither the key nor the password is ever printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request

KEY_NAME = "onyx-r2r-stack"
TIMEOUT = 30


class ApiError(Exception):
    pass


def _call(method: str, url: str, headers: dict[str, str], body: bytes | None = None):
    if not url.startswith(("http://", "https://")):
        raise ApiError(f"not an http(s) URL: {url}")
    req = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        try:
            payload = json.loads(exc.read() or b"null")
        except ValueError:
            payload = None
        return exc.code, payload


def _message(payload) -> str:
    if isinstance(payload, dict):
        return str(payload.get("message") or payload.get("detail") or "")[:200]
    return ""


def key_works(base: str, key: str) -> bool:
    status, payload = _call("GET", f"{base}/v3/users/me", {"x-api-key": key})
    return status == 200 and bool((payload or {}).get("results", {}).get("is_superuser"))


def create_key(base: str, email: str, password: str) -> str:
    form = urllib.parse.urlencode({"username": email, "password": password}).encode()
    status, payload = _call(
        "POST",
        f"{base}/v3/users/login",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form,
    )
    if status != 200:
        raise ApiError(f"login as {email} failed: HTTP {status} {_message(payload)}")
    token = payload["results"]["access_token"]["token"]
    bearer = {"Authorization": f"Bearer {token}"}

    status, payload = _call("GET", f"{base}/v3/users/me", bearer)
    if status != 200:
        raise ApiError(f"GET /v3/users/me failed: HTTP {status} {_message(payload)}")
    user = payload["results"]
    if not user.get("is_superuser"):
        raise ApiError(f"{email} is not a superuser")

    body = json.dumps(
        {
            "name": KEY_NAME,
            "description": "superuser key for the local stack (scripts/stack); tests read it",
        }
    ).encode()
    status, payload = _call(
        "POST",
        f"{base}/v3/users/{user['id']}/api-keys",
        {**bearer, "Content-Type": "application/json"},
        body,
    )
    if status != 200:
        raise ApiError(f"creating an API key failed: HTTP {status} {_message(payload)}")
    return payload["results"]["api_key"]


def write_private(path: str, text: str) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".r2r_api_key.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text + "\n")
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--key-file", required=True)
    args = ap.parse_args()
    base = args.base_url.rstrip("/")
    email = os.environ["R2R_ADMIN_EMAIL"]
    password = os.environ["R2R_ADMIN_PASSWORD"]

    try:
        if os.path.exists(args.key_file):
            with open(args.key_file) as fh:
                old = fh.read().strip()
            if old and key_works(base, old):
                print("reused")
                return 0
        key = create_key(base, email, password)
        if not key_works(base, key):
            raise ApiError("the new API key does not work")
        write_private(args.key_file, key)
    except (ApiError, OSError, KeyError, TypeError, ValueError) as exc:
        print(f"api key: {exc}", file=sys.stderr)
        return 1
    print("created")
    return 0


if __name__ == "__main__":
    sys.exit(main())
