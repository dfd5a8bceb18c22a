"""The local stack runs R2R with ``deployment/r2r/patches`` applied, and creates stay correct.

The deployment's R2R image (``deployment/r2r/Dockerfile``) applies the same patch files,
so tests run the server deployments run.  Checked against the running R2R itself: the
files its process loaded, and what its API and log show for a create by a superuser
(no usage count, hence no quota message) and by a non-superuser (the count and the quota
exactly as in stock R2R 3.6.6).
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from r2r_users import User, bearer
from stack_helpers import STACK_DIR

pytestmark = pytest.mark.integration

log = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[3]
PATCHES = sorted((REPO_ROOT / "deployment" / "r2r" / "patches").glob("*.patch"))
# store_embeddings' message when the usage count exceeds the owner's quota (R2R 3.6.6)
QUOTA_LINE = "User {id} has exceeded the maximum number of allowed chunks"


# ------------------------------------------------------------------ the running process
def running_r2r() -> tuple[int, Path]:
    """(pid, site-packages) of the stack's running R2R server."""
    pid = int((STACK_DIR / "r2r.pid").read_text().strip())
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"r2r.serve" in argv, f"pid {pid} is not R2R: {argv}"
    venv = Path(argv[0].decode()).parent.parent
    (site,) = sorted(venv.glob("lib/python3*/site-packages"))
    return pid, site


def process_start_time(pid: int) -> float:
    """Wall-clock start time of *pid* (from /proc: clock ticks since boot)."""
    ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
    boot = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
    return boot + ticks / os.sysconf("SC_CLK_TCK")


def dry_run(patch: Path, site: Path, *, reverse: bool) -> subprocess.CompletedProcess[str]:
    args = ["patch", "--dry-run", "-p2", "-d", str(site), "--force", "--fuzz=0", "-i", str(patch)]
    return subprocess.run(
        [*args, *(["--reverse"] if reverse else [])], capture_output=True, text=True
    )


def patched_files(patch: Path) -> list[str]:
    return re.findall(r"^\+\+\+ [^/]+/[^/]+/(\S+)", patch.read_text(), re.M)


def test_the_running_r2r_loaded_every_patch(stack: dict[str, str]) -> None:
    assert PATCHES, "deployment/r2r/patches holds no patch"
    pid, site = running_r2r()
    started = process_start_time(pid)
    for patch in PATCHES:
        # exactly the patched text is installed: reversing applies without fuzz, and
        # applying again does not
        reverse = dry_run(patch, site, reverse=True)
        assert reverse.returncode == 0, f"{patch.name} is not applied in {site}:\n{reverse.stdout}"
        forward = dry_run(patch, site, reverse=False)
        assert forward.returncode != 0, f"{patch.name} would apply again: {site} is stock"
        for name in patched_files(patch):
            modified = (site / name).stat().st_mtime
            assert modified <= started + 1, (
                f"{name} changed after R2R (pid {pid}) started: it runs the old code"
            )


# ------------------------------------------------------------------ behaviour through the API
def create(base: str, user: User, chunks: list[str]) -> httpx.Response:
    """A pre-chunked create, as the bridge sends it (synchronous: simple orchestration)."""
    return httpx.post(
        f"{base}/v3/documents",
        data={
            "id": str(uuid.uuid4()),
            "chunks": json.dumps(chunks),
            "metadata": '{"title": "patched server check"}',
            "run_with_orchestration": "false",
        },
        headers=user.headers,
        timeout=120,
    )


def chunk_texts(base: str, user: User, document_id: str) -> list[str]:
    response = httpx.get(
        f"{base}/v3/documents/{document_id}/chunks", headers=user.headers, timeout=60
    )
    assert response.status_code == 200, response.text
    return sorted(c["text"] for c in response.json()["results"])


class R2RLog:
    """What R2R writes to its logs from now on (the stack's logs/ directory)."""

    def __init__(self) -> None:
        self.files = [STACK_DIR / "logs" / "r2r.log", STACK_DIR / "logs" / "app.log"]
        self.offsets = {f: f.stat().st_size if f.exists() else 0 for f in self.files}

    def text(self) -> str:
        parts = []
        for f, offset in self.offsets.items():
            if f.exists():
                with f.open("rb") as handle:
                    handle.seek(offset)
                    parts.append(handle.read().decode("utf-8", "replace"))
        return "\n".join(parts)

    def wait_for(self, needle: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text():
            assert time.monotonic() < deadline, f"R2R never logged {needle!r}"
            time.sleep(0.2)


def test_superuser_create_skips_the_count_and_stores_every_chunk(
    stack: dict[str, str], make_user
) -> None:
    base = stack["R2R_BASE_URL"]
    r2r_log = R2RLog()
    # a quota stock R2R would count against (it logs, then stores anyway)
    superuser = make_user(superuser=True, max_chunks=0)
    chunks = [f"superuser chunk {i} {uuid.uuid4().hex}" for i in range(3)]
    response = create(base, superuser, chunks)
    assert response.status_code == 202, response.text
    assert chunk_texts(base, superuser, response.json()["results"]["document_id"]) == sorted(chunks)

    # the control: a non-superuser over its quota is counted and reported, in the same log,
    # after the superuser's create (so the log has caught up past it)
    user = make_user(superuser=False, max_chunks=2)
    response = create(base, user, [f"user chunk {i}" for i in range(3)])
    assert response.status_code == 202, response.text
    r2r_log.wait_for(QUOTA_LINE.format(id=user.id))
    assert QUOTA_LINE.format(id=superuser.id) not in r2r_log.text(), (
        "R2R counted the superuser's chunks: the stack runs a stock ingestion service"
    )


def test_non_superuser_chunk_quota_is_still_enforced(stack: dict[str, str], make_user) -> None:
    base = stack["R2R_BASE_URL"]
    user = make_user(superuser=False, max_chunks=2)
    first = create(base, user, ["one", "two"])
    assert first.status_code == 202, first.text
    assert chunk_texts(base, user, first.json()["results"]["document_id"]) == ["one", "two"]
    refused = create(base, user, ["three"])
    assert refused.status_code == 403, refused.text
    assert "maximum number of chunks" in refused.text


def _collections_of(base: str, user: User) -> set[str]:
    me = httpx.get(f"{base}/v3/users/me", headers=user.headers, timeout=60)
    assert me.status_code == 200, me.text
    return set(me.json()["results"].get("collection_ids") or [])


def _new_collection(base: str, user: User) -> str:
    created = httpx.post(
        f"{base}/v3/collections",
        json={"name": f"patch-check-{uuid.uuid4().hex[:10]}", "description": "patch check"},
        headers=user.headers,
        timeout=60,
    )
    assert created.status_code == 200, created.text
    return created.json()["results"]["id"]


def test_a_superuser_does_not_join_the_collections_it_creates(
    stack: dict[str, str], make_user, admin: dict[str, str]
) -> None:
    """Patch 0002: a superuser's membership list no longer grows with every collection it
    creates (it was read back and parsed on each of its requests), yet it still owns,
    finds and fills the collection; a non-superuser still joins its own collections."""
    base = stack["R2R_BASE_URL"]
    superuser = make_user(superuser=True, max_chunks=1_000_000)
    plain = make_user(superuser=False, max_chunks=1_000_000)
    made: list[str] = []
    try:
        collection = _new_collection(base, superuser)
        made.append(collection)
        assert collection not in _collections_of(base, superuser)
        found = httpx.get(
            f"{base}/v3/collections/{collection}", headers=superuser.headers, timeout=60
        )
        assert found.status_code == 200 and found.json()["results"]["owner_id"] == superuser.id
        document = httpx.post(
            f"{base}/v3/documents",
            data={
                "id": str(uuid.uuid4()),
                "chunks": json.dumps(["a chunk in the superuser's collection"]),
                "collection_ids": json.dumps([collection]),
                "run_with_orchestration": "false",
            },
            headers=superuser.headers,
            timeout=120,
        )
        assert document.status_code == 202, document.text
        own = _new_collection(base, plain)
        made.append(own)
        assert own in _collections_of(base, plain)  # unchanged for non-superusers
    finally:
        for collection_id in made:
            httpx.delete(f"{base}/v3/collections/{collection_id}", headers=admin, timeout=60)


def test_the_stacks_service_account_holds_no_memberships(stack: dict[str, str]) -> None:
    """scripts/stack up drops what stock R2R gave the service account before the patch."""
    base = stack["R2R_BASE_URL"]
    headers = bearer(base, stack["R2R_ADMIN_EMAIL"], stack["R2R_ADMIN_PASSWORD"])
    me = httpx.get(f"{base}/v3/users/me", headers=headers, timeout=60)
    assert me.status_code == 200, me.text
    assert me.json()["results"]["is_superuser"] is True
    assert not me.json()["results"].get("collection_ids")


def _collection(base: str, headers: dict[str, str], collection_id: str) -> dict:
    found = httpx.get(f"{base}/v3/collections/{collection_id}", headers=headers, timeout=60)
    assert found.status_code == 200, found.text
    return found.json()["results"]


def test_a_create_assigns_many_collections_as_stock_r2r_did(
    stack: dict[str, str], admin: dict[str, str]
) -> None:
    """A pre-chunked create with many collections (what the bridge sends for a document
    with many principals): the document and each chunk in every collection once, each
    collection's document_count one higher, a collection that did not exist created on the
    way, and a filtered search finds it through any of them: the end state any R2R patch
    of this path must keep."""
    base = stack["R2R_BASE_URL"]
    made = [_new_collection(base, User("", "", "", admin)) for _ in range(40)]
    missing = str(uuid.uuid4())  # not a collection yet: the create makes it, as stock does
    before = {c: _collection(base, admin, c)["document_count"] for c in made}
    documents: list[str] = []
    try:
        first = str(uuid.uuid4())
        documents.append(first)
        created = httpx.post(
            f"{base}/v3/documents",
            data={
                "id": first,
                "chunks": json.dumps(["one chunk of the many-collection check", "and two"]),
                # no repeats: stock R2R stops assigning at the first collection the document
                # is already in ("Document is already assigned"), so the bridge's request
                # builder (collection_id_list) deduplicates before sending
                "collection_ids": json.dumps([*made, missing]),
                "run_with_orchestration": "false",
            },
            headers=admin,
            timeout=300,
        )
        assert created.status_code == 202, created.text
        document = httpx.get(f"{base}/v3/documents/{first}", headers=admin, timeout=60)
        assert set(document.json()["results"]["collection_ids"]) == {*made, missing}
        assert len(document.json()["results"]["collection_ids"]) == len(made) + 1
        chunks = httpx.get(f"{base}/v3/documents/{first}/chunks", headers=admin, timeout=60)
        assert [set(c["collection_ids"]) for c in chunks.json()["results"]] == [
            {*made, missing}
        ] * 2
        for collection_id in made:
            assert _collection(base, admin, collection_id)["document_count"] == (
                before[collection_id] + 1
            )
        assert _collection(base, admin, missing)["document_count"] == 1
        # a filtered search finds it through any one of its collections
        hits = httpx.post(
            f"{base}/v3/retrieval/search",
            json={
                "query": "many-collection check",
                "search_settings": {
                    "use_semantic_search": False,
                    "use_fulltext_search": True,
                    "filters": {"collection_ids": {"$overlap": [made[17]]}},
                    "limit": 10,
                },
            },
            headers=admin,
            timeout=60,
        )
        assert hits.status_code == 200, hits.text
        found = {c["document_id"] for c in hits.json()["results"]["chunk_search_results"]}
        assert first in found
    finally:
        for document_id in documents:
            httpx.delete(f"{base}/v3/documents/{document_id}", headers=admin, timeout=60)
        for collection_id in [*made, missing]:
            httpx.delete(f"{base}/v3/collections/{collection_id}", headers=admin, timeout=60)


def test_concurrent_creates_sharing_collections_assign_every_one(
    stack: dict[str, str], admin: dict[str, str]
) -> None:
    """Concurrent pre-chunked creates whose collection lists overlap, each in its own order
    (what a worker's threads send for one tenant's documents): every document ends up in
    every collection it listed, with each of its chunks, and every collection counts
    exactly the documents in it. An R2R patch that locks the shared collection rows in
    different orders deadlocks here and leaves documents half-assigned."""
    base = stack["R2R_BASE_URL"]
    shared = [_new_collection(base, User("", "", "", admin)) for _ in range(30)]
    rng = random.Random(20261203)
    wanted: dict[str, list[str]] = {}
    new: list[str] = []  # one collection per document that the create makes
    for _ in range(32):
        new.append(str(uuid.uuid4()))
        chosen = [*rng.sample(shared, 20), new[-1]]
        rng.shuffle(chosen)
        wanted[str(uuid.uuid4())] = chosen
    before = {c: _collection(base, admin, c)["document_count"] for c in shared}

    def create(document_id: str) -> httpx.Response:
        return httpx.post(
            f"{base}/v3/documents",
            data={
                "id": document_id,
                "chunks": json.dumps([f"concurrent check {document_id}", "second chunk"]),
                "collection_ids": json.dumps(wanted[document_id]),
                "run_with_orchestration": "false",
            },
            headers=admin,
            timeout=300,
        )

    try:
        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(create, wanted))
        assert [r.status_code for r in responses] == [202] * len(wanted), [
            r.text for r in responses if r.status_code != 202
        ]
        for document_id, collections in wanted.items():
            document = httpx.get(f"{base}/v3/documents/{document_id}", headers=admin, timeout=60)
            assert set(document.json()["results"]["collection_ids"]) == set(collections), (
                document_id
            )
            chunks = httpx.get(
                f"{base}/v3/documents/{document_id}/chunks", headers=admin, timeout=60
            ).json()["results"]
            assert [set(c["collection_ids"]) for c in chunks] == [set(collections)] * 2
        for collection_id in shared:
            holding = sum(collection_id in c for c in wanted.values())
            assert _collection(base, admin, collection_id)["document_count"] == (
                before[collection_id] + holding
            ), collection_id
    finally:
        for document_id in wanted:
            httpx.delete(f"{base}/v3/documents/{document_id}", headers=admin, timeout=60)
        for collection_id in [*shared, *new]:
            httpx.delete(f"{base}/v3/collections/{collection_id}", headers=admin, timeout=60)
