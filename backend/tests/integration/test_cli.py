"""``onyx-r2r`` as operators run it: a child process with the environment, a real worker.

Every command runs as ``python -m onyx.r2r_sender.cli`` with ``settings_env(settings)``
(the test's database, broker, private queue and R2R login).  Assertions read back the
ledger, the Redis counters and R2R; every output is also checked for the API key and
the password.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fault_checks import (
    WorkerTree,
    check_mirror,
    counters,
    expected_from_onyx,
    forget_backlog,
    ledger_rows,
    make_changes,
    make_corpus,
    run_cli,
    verify_client,
)
from stack_helpers import settings_env, write_jsonl

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_sender.ledger import Ledger, LockSession
from onyx.r2r_sender.payload import prepare

pytestmark = pytest.mark.integration

_ROW_KEYS = (
    "desired_seq",
    "desired_version",
    "desired_labels",
    "desired_deleted",
    "status",
    "applied_seq",
    "applied_version",
    "applied_r2r_id",
    "applied_labels",
    "applied_collections",
    "pending_r2r_ids",
    "attempts",
)


class Cli:
    """Runs the CLI and keeps every output, to check none of them leaks a secret."""

    def __init__(self, settings, cwd: Path, outputs: list[str]) -> None:
        self.settings = settings
        self.env = settings_env(settings)
        self.cwd = cwd
        self.outputs = outputs

    def __call__(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
        result = run_cli(args, {**self.env, **(env or {})}, cwd=self.cwd, timeout=timeout)
        self.outputs.append(result.stdout + result.stderr)
        return result


@pytest.fixture
def outputs(settings):
    """Every CLI output of the test; none may contain the API key or the password."""
    collected: list[str] = []
    yield collected
    secrets = [settings.r2r_api_key.get(), settings.r2r_password.get()]
    assert all(secrets), "the test settings carry no secrets to look for"
    for text in collected:
        for secret in secrets:
            assert secret not in text, "a CLI output contains a secret"


@pytest.fixture
def cli(settings, tmp_path, outputs) -> Cli:
    return Cli(settings, tmp_path, outputs)


@pytest.fixture
def tree(workers, settings, tenant_id):
    procs = WorkerTree()
    yield procs
    workers.stop_all()
    procs.reap()
    forget_backlog(settings, tenant_id)


def _start_worker(workers, tree: WorkerTree, **kwargs):
    worker = workers.start(**kwargs)
    tree.remember(worker)
    return worker


def _snapshot(ledger: Ledger, tenant_id: str) -> dict[str, tuple]:
    return {
        doc: tuple(
            sorted(map(str, row[k])) if isinstance(row[k], list) else row[k] for k in _ROW_KEYS
        )
        for doc, row in ledger_rows(ledger, tenant_id).items()
    }


def _ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (
        f"exit {result.returncode}\nstdout:\n{result.stdout[-3000:]}\n"
        f"stderr:\n{result.stderr[-3000:]}"
    )
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result


# ------------------------------------------------------------------------ migrate


def test_migrate_is_idempotent(cli, settings):
    first = _ok(cli("migrate"))
    second = _ok(cli("migrate"))
    match = re.fullmatch(r"ledger schema at revision (\S+)\n", first.stdout)
    assert match, first.stdout
    assert second.stdout == first.stdout
    from onyx.r2r_sender.ledger import migrate

    assert migrate.current_revision(Ledger.from_settings(settings).engine) == match.group(1)


# ------------------------------------------------------------------- bad input


@pytest.mark.parametrize("command", ["push", "plan"])
@pytest.mark.parametrize(
    ("lines", "bad_line", "message"),
    [
        (['{"id": "ok-1", "sections": [{"text": "fine"}]}', "{not json"], 2, "not JSON"),
        (
            ['{"id": "ok-1", "sections": [{"text": "fine"}]}', "", "[1, 2]"],
            3,
            "expected a JSON object",
        ),
        (['{"op": "frobnicate", "id": "x"}'], 1, "unknown op 'frobnicate'"),
    ],
)
def test_bad_jsonl_exits_2_naming_file_and_line(
    cli, settings, tenant_id, tmp_path, command, lines, bad_line, message
):
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = cli(command, str(path), "--tenant", tenant_id)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert f"onyx-r2r: {path}:{bad_line}: {message}" in result.stderr
    assert "Traceback" not in result.stderr
    # nothing of the file was recorded, not even its valid first line
    assert ledger_rows(Ledger.from_settings(settings), tenant_id) == {}


def test_missing_file_exits_2(cli, tmp_path, tenant_id):
    missing = tmp_path / "nope.jsonl"
    result = cli("push", str(missing), "--tenant", tenant_id)
    assert result.returncode == 2
    assert f"onyx-r2r: cannot read {missing}" in result.stderr
    assert "Traceback" not in result.stderr


# ----------------------------------------------------------- push / plan / status


def _expected_plan(corpus: list[dict], changes: list[dict]) -> dict[str, set[str]]:
    by_id = {d["id"]: d for d in corpus}
    plan: dict[str, set[str]] = {
        k: set() for k in ("create", "replace", "delete", "grant", "revoke")
    }
    for op in changes:
        kind = op.get("op", "upsert")
        if kind == "delete":
            plan["delete"].add(op["id"])
        elif kind == "access":
            old = {"acl:" + a for a in by_id[op["id"]]["acl"]}
            new = {"acl:" + a for a in op["acl"]}
            if new - old:
                plan["grant"].add(f"{op['id']}: {', '.join(sorted(new - old))}")
            if old - new:
                plan["revoke"].add(f"{op['id']}: {', '.join(sorted(old - new))}")
        elif op["id"] in by_id:
            plan["replace"].add(op["id"])
        else:
            plan["create"].add(op["id"])
    return plan


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_push_plan_status_flow(cli, settings, workers, tree, tenant_id, tmp_path):
    ledger = Ledger.from_settings(settings)
    corpus = make_corpus(40, seed=4, prefix=f"cli-{uuid.uuid4().hex[:8]}")
    changes = make_changes(corpus, seed=7)
    initial = write_jsonl(tmp_path / "initial.jsonl", corpus)
    changes_file = write_jsonl(tmp_path / "changes.jsonl", changes)
    _start_worker(workers, tree, concurrency=4)

    # ---- push: progress, "applied N documents", exit 0, and R2R really holds them
    pushed = _ok(cli("push", str(initial), "--tenant", tenant_id, "--batch-size", "15"))
    assert "recorded 40 operations" in pushed.stdout
    assert "40 changed, 0 unchanged, 0 rejected" in pushed.stdout
    assert re.search(r"^applied 40 documents in [\d.]+s; R2R writes: \d+$", pushed.stdout, re.M)
    assert re.search(r"^applying \[#{30}\] 40/40", pushed.stderr, re.M), pushed.stderr
    writes = int(re.search(r"R2R writes: (\d+)", pushed.stdout).group(1))
    assert writes >= 40  # at least one create per document
    expected = expected_from_onyx(corpus, settings, tenant_id)
    with verify_client(settings) as client:
        check_mirror(settings, tenant_id, expected, client)
    before = _snapshot(ledger, tenant_id)
    writes_before = counters(settings, tenant_id).get("r2r_writes", 0)

    # ---- push again: nothing changed, no R2R write, ledger untouched
    again = _ok(cli("push", str(initial), "--tenant", tenant_id))
    assert "0 changed, 40 unchanged, 0 rejected" in again.stdout
    assert "nothing changed: 0 R2R writes needed" in again.stdout
    assert "applying" not in again.stderr
    time.sleep(2.0)  # a stray apply would have happened by now
    assert _snapshot(ledger, tenant_id) == before
    assert counters(settings, tenant_id).get("r2r_writes", 0) == writes_before

    # ---- plan: creates/replaces/deletes/grants/revokes, applies nothing
    want = _expected_plan(corpus, changes)
    assert all(want[k] for k in want), want  # the change set exercises every kind
    planned = _ok(cli("plan", str(changes_file), "--tenant", tenant_id, "--show", "100"))
    summary = planned.stdout.splitlines()[0]
    assert summary.startswith("plan (dry run, nothing applied): ")
    for kind, entries in want.items():
        assert f"{len(entries)} {kind}" in summary, (kind, summary)
        for entry in entries:
            assert f"  {kind:8} {entry}" in planned.stdout, (kind, entry)
    as_json = json.loads(
        _ok(cli("plan", str(changes_file), "--tenant", tenant_id, "--json")).stdout
    )
    for kind, entries in want.items():
        assert set(as_json[kind]) == entries, kind
    assert as_json["rejected"] == []
    time.sleep(1.0)
    assert _snapshot(ledger, tenant_id) == before, "plan changed the ledger"
    assert counters(settings, tenant_id).get("r2r_writes", 0) == writes_before

    # ---- status: counts per state, human and JSON
    status = _ok(cli("status", "--tenant", tenant_id))
    assert re.search(
        rf"^tenant {tenant_id}: synced=40 pending=0 \(retrying 0\) deleted=0 dead=0 ",
        status.stdout,
        re.M,
    ), status.stdout
    assert "circuit breaker" in status.stdout
    data = json.loads(_ok(cli("status", "--tenant", tenant_id, "--json")).stdout)
    (row,) = [t for t in data["tenants"] if t["tenant_id"] == tenant_id]
    assert (row["synced"], row["pending"], row["dead"], row["deleted"]) == (40, 0, 0, 0)
    assert row["counters"]["applied"] >= 40
    assert data["breaker"]["state"] in ("closed", "open", "half_open")

    # ---- the plan was right: push the changes and compare
    applied = _ok(cli("push", str(changes_file), "--tenant", tenant_id))
    assert "0 rejected" in applied.stdout
    rows = ledger_rows(ledger, tenant_id)
    assert {d for d, r in rows.items() if r["desired_deleted"]} == want["delete"]
    assert want["create"] <= set(rows)
    data = json.loads(_ok(cli("status", "--tenant", tenant_id, "--json")).stdout)
    (row,) = [t for t in data["tenants"] if t["tenant_id"] == tenant_id]
    live = 40 - len(want["delete"]) + len(want["create"])
    assert (row["synced"], row["deleted"], row["pending"], row["dead"]) == (
        live,
        len(want["delete"]),
        0,
        0,
    )
    with verify_client(settings) as client:
        for doc_id in want["delete"]:
            old = rows[doc_id]
            assert old["applied_r2r_id"] is None or not client.list_documents(
                [old["applied_r2r_id"]]
            )
            assert not client.list_documents(
                [_r2r_id(settings, tenant_id, d) for d in corpus if d["id"] == doc_id]
            )


def _r2r_id(settings, tenant_id: str, doc: dict):
    from onyx.r2r_sender.ids import r2r_version_id

    version = prepare(source_document_from_onyx(doc), settings, tenant_id).version
    return r2r_version_id(tenant_id, doc["id"], version)


# -------------------------------------------------------------------------- replay


def _dead_letter(settings, tenant_id: str, doc: dict) -> None:
    """Dead-letter *doc* through a real claim and Ledger.finalize_failure."""
    ledger = Ledger.from_settings(settings)
    prepared = prepare(source_document_from_onyx(doc), settings, tenant_id)
    for _ in range(5):
        ledger.record_documents(tenant_id, [prepared])  # no doorbell: nobody is told
        with LockSession(ledger.engine) as locks:
            claims = ledger.claim(locks, tenant_id, 10)
            for claim in claims:
                status = ledger.finalize_failure(
                    locks,
                    claim,
                    error_class="r2r_rejected",
                    message="R2R create_document failed (HTTP 422): rejected by test",
                    retryable=False,
                )
                assert status == "dead"
        if claims:
            return
        time.sleep(1.0)  # another test's sweep claimed it first; try again
    raise AssertionError("could not claim the document to dead-letter it")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_replay_requeues_a_dead_letter(cli, settings, workers, tree, tenant_id, make_sender):
    ledger = Ledger.from_settings(settings)
    doc = make_corpus(1, seed=9, prefix=f"replay-{uuid.uuid4().hex[:8]}")[0]
    _dead_letter(settings, tenant_id, doc)
    # and one the host sent invalid: replaying it cannot help, so it stays dead
    invalid = make_sender(tenant_id).send_batch([{"id": "no-content", "sections": []}])
    assert [r.document_id for r in invalid.rejected] == ["no-content"]

    status = _ok(cli("status", "--tenant", tenant_id))
    assert re.search(rf"tenant {tenant_id}: synced=0 pending=0 .* dead=2 ", status.stdout)
    assert (
        f"dead letter {tenant_id}/{doc['id']}: [r2r_rejected] "
        "R2R create_document failed (HTTP 422): rejected by test" in status.stdout
    )
    assert (
        f"dead letter {tenant_id}/no-content: [invalid_document] "
        "document 'no-content': document has no text, chunks or title" in status.stdout
    )

    _start_worker(workers, tree, concurrency=2)
    time.sleep(2.0)  # sweeps run every second: dead letters must stay dead
    assert ledger.get_state(tenant_id, doc["id"])["status"] == "dead"

    replayed = _ok(cli("replay", "--tenant", tenant_id))
    assert replayed.stdout.strip() == "re-queued 1 dead letters"
    deadline = time.monotonic() + 600
    while ledger.get_state(tenant_id, doc["id"])["status"] != "synced":
        assert time.monotonic() < deadline, ledger.get_state(tenant_id, doc["id"])
        assert ledger.get_state(tenant_id, doc["id"])["status"] != "dead"
        time.sleep(0.5)
    assert ledger.get_state(tenant_id, "no-content")["status"] == "dead"
    expected = expected_from_onyx([doc], settings, tenant_id)
    with verify_client(settings) as client:
        report = check_mirror(settings, tenant_id, expected, client, ignore=["no-content"])
    assert report.chunk_counts[doc["id"]] > 0
    again = _ok(cli("replay", "--tenant", tenant_id))
    assert again.stdout.strip() == "re-queued 0 dead letters"


# ------------------------------------------------------------------------- secrets


def test_secrets_never_appear_even_on_errors(cli, settings, tenant_id, tmp_path):
    """Health/search/status with good and with wrong credentials print no secret."""
    _ok(cli("health"))
    _ok(cli("status", "--tenant", tenant_id))
    # give the tenant real collections, so a search has to ask R2R
    from onyx.r2r_sender.collections import TENANT_LABEL, CollectionResolver

    with verify_client(settings) as client:
        resolver = CollectionResolver(client, Ledger.from_settings(settings))
        resolver.resolve(tenant_id, [TENANT_LABEL, "acl:PUBLIC"], create=True)
    ok = _ok(cli("search", "anything", "--tenant", tenant_id, "--acl", "PUBLIC"))
    assert "0 hits" in ok.stdout
    wrong = {"R2R_PASSWORD": "wrong-" + settings.r2r_password.get()}
    bad_health = cli("health", env=wrong)
    assert bad_health.returncode == 1
    assert "unhealthy" in bad_health.stdout
    bad_search = cli("search", "anything", "--tenant", tenant_id, "--acl", "PUBLIC", env=wrong)
    assert bad_search.returncode != 0
    for result in (bad_health, bad_search):
        text = result.stdout + result.stderr
        assert wrong["R2R_PASSWORD"] not in text
    wrong_key = {"R2R_EMAIL": "", "R2R_PASSWORD": "", "R2R_API_KEY": "sk-wrong-" + uuid.uuid4().hex}
    bad_key = cli("search", "anything", "--tenant", tenant_id, "--acl", "PUBLIC", env=wrong_key)
    assert bad_key.returncode != 0
    assert "rejected the API key" in bad_key.stdout + bad_key.stderr
    assert wrong_key["R2R_API_KEY"] not in bad_key.stdout + bad_key.stderr
