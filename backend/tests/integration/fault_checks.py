"""Shared checks of the fault-injection and CLI tests: read back R2R and the ledger.

Nothing here fakes anything: every check reads the real ledger (PostgreSQL), the real
Redis counters and the real R2R server, and reports *all* problems it finds at once
(the first 25 of them), so a failing scenario says what went wrong where.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from onyx.r2r_integration.onyx_shapes import source_document_from_onyx
from onyx.r2r_sender.chunking import split_text
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import TENANT_LABEL
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.hosts import onyx_collection_name as collection_name
from onyx.r2r_sender.ids import r2r_version_id
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import PreparedDocument, prepare
from onyx.r2r_sender.reconcile import iter_tenant_documents
from onyx.r2r_sender.records import section_text

REPO_ROOT = Path(__file__).resolve().parents[3]
SCRIPTS_DIR = REPO_ROOT / "scripts"
if str(SCRIPTS_DIR) not in sys.path:
    sys.path.insert(0, str(SCRIPTS_DIR))

from sample_corpus import make_changes, make_corpus  # noqa: E402, F401 - re-exported

_WORD = re.compile(r"[a-z0-9]+")
_SHOW = 25


def words(text: str) -> set[str]:
    """The set of lower-case words of *text* (chunk overlap and layout do not matter)."""
    return set(_WORD.findall(text.lower()))


def verify_client(settings: BridgeSettings) -> R2RClient:
    """A client for read-back checks with the worker's credentials (login → fast JWT)."""
    from onyx.r2r_sender.connect import make_client

    return make_client(settings.credentials, settings)


# ------------------------------------------------------------------ ledger


def ledger_rows(ledger: Ledger, tenant_id: str) -> dict[str, dict[str, Any]]:
    """Every ledger row of *tenant_id*, by document id."""
    return {row["document_id"]: row for row in ledger.iter_states(tenant_id)}


def counters(settings: BridgeSettings, tenant_id: str) -> dict[str, int]:
    """The tenant's Redis counters (``applied``, ``r2r_writes``, ``failed``)."""
    return Counters(Redis.from_url(settings.broker_url)).get(tenant_id)


def _progress_marker(ledger: Ledger, tenant_id: str) -> tuple[dict[str, int], tuple]:
    rows = ledger.counts(tenant_id)
    last = {
        k: int(v)
        for k, v in (rows[0] if rows else {}).items()
        if k not in ("tenant_id", "oldest_pending_seconds")
    }
    tally = Counters(Redis.from_url(ledger.settings.broker_url)).get(tenant_id)
    marker = (
        last.get("synced"),
        last.get("pending"),
        last.get("retrying"),
        tally.get("applied", 0) + tally.get("failed", 0),
    )
    return last, marker


def wait_for_state(
    ledger: Ledger,
    tenant_id: str,
    done: Callable[[dict[str, int]], bool],
    *,
    timeout: float = 900,
    stall: float = 150,
    alive: Callable[[], bool] | None = None,
    what: str = "",
    allow_dead: bool = False,
) -> dict[str, int]:
    """Wait until ``done(counts)``; fail when nothing moves for *stall* seconds.

    "Moves" = the tenant's synced/pending/retrying counts or its applied+failed counters
    change.  The stack is shared with other test sessions, so throughput varies a lot;
    a stall (nothing applied, nothing even tried) is what a lost drain looks like.
    """
    started = time.monotonic()
    changed_at = started
    marker: tuple | None = None
    while True:
        last, now_marker = _progress_marker(ledger, tenant_id)
        now = time.monotonic()
        if now_marker != marker:
            marker, changed_at = now_marker, now
        if done(last):
            return last
        if last.get("dead") and not allow_dead:
            dead = ledger.dead_letters(tenant_id, limit=5)
            raise AssertionError(
                f"dead letters while waiting{what}: "
                + "; ".join(f"{d.document_id}: [{d.error_class}] {d.error}" for d in dead)
            )
        if alive is not None and not alive():
            raise AssertionError(f"the worker died while waiting{what}: {last}")
        if now - changed_at > stall:
            raise AssertionError(f"no progress for {stall:.0f}s while waiting{what}: {last}")
        if now - started > timeout:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting{what}: {last}")
        time.sleep(0.25)


def wait_synced(
    ledger: Ledger,
    tenant_id: str,
    count: int,
    *,
    timeout: float = 900,
    stall: float = 150,
    alive: Callable[[], bool] | None = None,
    what: str = "",
) -> dict[str, int]:
    """Wait until *count* rows of *tenant_id* are synced and none is pending or dead."""
    return wait_for_state(
        ledger,
        tenant_id,
        lambda c: c.get("synced") == count and not c.get("pending") and not c.get("dead"),
        timeout=timeout,
        stall=stall,
        alive=alive,
        what=what,
    )


# --------------------------------------------------------------------- R2R


def r2r_document_chunks(client: R2RClient, document_id: uuid.UUID) -> tuple[list[dict], int]:
    """A document's chunks and R2R's own ``total_entries`` for them (one page of 1000)."""
    response = client._transport.request(  # raw: the client does not expose total_entries
        "GET",
        f"/v3/documents/{document_id}/chunks",
        operation="list_document_chunks",
        document_id=document_id,
        params=[("offset", "0"), ("limit", "1000"), ("include_vectors", "false")],
    )
    body = client._transport.body(response, "list_document_chunks")
    return list(body["results"]), int(body.get("total_entries") or 0)


# ---------------------------------------------------------------- expected


@dataclass(frozen=True)
class Expected:
    """What R2R must hold for one source document."""

    prepared: PreparedDocument
    text: str  # the source text (sections joined), for the word comparison
    must_contain: frozenset[str] = frozenset()
    must_not_contain: frozenset[str] = frozenset()


def expected_from_onyx(
    docs: Sequence[Mapping[str, Any]], settings: BridgeSettings, tenant_id: str
) -> dict[str, Expected]:
    """Expected state of Onyx-shaped dicts (the last copy of an id wins)."""
    out: dict[str, Expected] = {}
    for doc in docs:
        prepared = prepare(source_document_from_onyx(doc), settings, tenant_id)
        out[prepared.document_id] = Expected(prepared, section_text(doc.get("sections")))
    return out


@dataclass
class MirrorReport:
    """What :func:`check_mirror` looked at (for the test's own extra assertions)."""

    r2r_ids: dict[str, uuid.UUID] = field(default_factory=dict)
    chunk_counts: dict[str, int] = field(default_factory=dict)
    collections: dict[str, set[uuid.UUID]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def check_mirror(
    settings: BridgeSettings,
    tenant_id: str,
    expected: Mapping[str, Expected],
    client: R2RClient,
    *,
    stale_versions: Mapping[str, Iterable[str]] | None = None,
    ledger: Ledger | None = None,
    ignore: Iterable[str] = (),
) -> MirrorReport:
    """Assert that R2R and the ledger hold exactly *expected* for *tenant_id*.

    Ledger: one row per document, all ``synced``, applied == desired (version, seq,
    labels), applied id == ``r2r_version_id(tenant, doc, version)``, no pending R2R
    ids, no dead letters.  R2R (every document whose metadata names the tenant):
    exactly one document per source document, it is the applied id, ``success``, its
    ``bridge_version`` is the ledger's version, its collections are exactly the ACL/set
    collections, or the tenant's holding collection when it has no label (on the
    document and on every chunk), its chunk count equals R2R's ``total_entries`` and,
    with bridge-side chunking, exactly the number of chunks the bridge splits the text
    into (a duplicated create would double it), and the chunks' words are exactly the
    source text's words.  Ids of *stale_versions* (older versions of a
    document) must not exist in R2R at all.  Ledger rows of *ignore* (e.g. a dead letter
    the test made on purpose) are left out.
    """
    ledger = ledger or Ledger.from_settings(settings)
    report = MirrorReport()
    problems = report.problems

    # ---- ledger
    ignored = set(ignore)
    rows = {d: r for d, r in ledger_rows(ledger, tenant_id).items() if d not in ignored}
    if set(rows) != set(expected):
        missing = sorted(set(expected) - set(rows))[:5]
        extra = sorted(set(rows) - set(expected))[:5]
        problems.append(f"ledger rows differ: missing {missing}, unexpected {extra}")
    dead = ledger.dead_letters(tenant_id, limit=10 + len(ignored))
    for item in (d for d in dead if d.document_id not in ignored):
        problems.append(f"dead letter {item.document_id}: [{item.error_class}] {item.error}")
    all_labels = sorted({label for e in expected.values() for label in e.prepared.labels})
    needs_holding = any(not e.prepared.labels for e in expected.values())
    wanted_labels = [TENANT_LABEL, *all_labels] if needs_holding else all_labels
    label_ids = ledger.collection_ids(tenant_id, wanted_labels)
    for label in wanted_labels:
        if label not in label_ids:
            problems.append(f"label {label!r} has no collection in the ledger")
            continue
        named = client.get_collection_by_name(collection_name(tenant_id, label))
        if named is None or named.id != label_ids[label]:
            problems.append(
                f"collection of {label!r}: ledger says {label_ids[label]}, "
                f"R2R by name says {named.id if named else None}"
            )

    wanted_collections: dict[str, set[uuid.UUID]] = {}
    for doc_id, exp in expected.items():
        version = exp.prepared.version
        target = r2r_version_id(tenant_id, doc_id, version)
        report.r2r_ids[doc_id] = target
        wanted = {
            label_ids[label]
            for label in (exp.prepared.labels or [TENANT_LABEL])
            if label in label_ids
        }
        wanted_collections[doc_id] = wanted
        row = rows.get(doc_id)
        if row is None:
            continue
        checks = {
            "status": (row["status"], "synced"),
            "desired_version": (row["desired_version"], version),
            "applied_version": (row["applied_version"], version),
            "applied_r2r_id": (row["applied_r2r_id"], target),
            "applied_seq": (row["applied_seq"], row["desired_seq"]),
            "desired_labels": (list(row["desired_labels"] or []), exp.prepared.labels),
            "applied_labels": (list(row["applied_labels"] or []), exp.prepared.labels),
            "applied_collections": (set(row["applied_collections"] or []), wanted),
            "pending_r2r_ids": (list(row["pending_r2r_ids"] or []), []),
            "desired_deleted": (row["desired_deleted"], False),
            "applied_deleted": (row["applied_deleted"], False),
        }
        for name, (got, want) in checks.items():
            if got != want:
                problems.append(f"ledger {doc_id}: {name} = {got!r}, expected {want!r}")

    # ---- R2R: every document of the tenant, in whatever collections
    listed = [d.id for d in iter_tenant_documents(client, tenant_id)]
    expected_ids = {report.r2r_ids[d]: d for d in expected}
    orphans = sorted(set(listed) - set(expected_ids))
    if orphans:
        problems.append(
            f"{len(orphans)} R2R documents of the tenant are no "
            f"applied version (orphans): {orphans[:5]}"
        )
    missing = sorted(d for i, d in expected_ids.items() if i not in set(listed))
    if missing:
        problems.append(f"{len(missing)} documents missing from R2R: {missing[:5]}")

    documents = {d.id: d for d in client.list_documents(sorted(set(listed) | set(expected_ids)))}
    per_source = Counter(str(d.metadata.get("source_document_id")) for d in documents.values())
    for doc_id in expected:
        if per_source.get(doc_id, 0) != 1:
            problems.append(f"{doc_id}: {per_source.get(doc_id, 0)} R2R documents, expected 1")

    stale_ids = sorted(
        {
            r2r_version_id(tenant_id, doc_id, version)
            for doc_id, versions in (stale_versions or {}).items()
            for version in versions
            if version != expected[doc_id].prepared.version
        }
    )
    if stale_ids:
        still_there = client.list_documents(stale_ids)
        if still_there:
            problems.append(
                f"{len(still_there)} old versions still exist in R2R: "
                f"{[str(d.id) for d in still_there[:5]]}"
            )

    def check_one(doc_id: str) -> list[str]:
        exp = expected[doc_id]
        target = report.r2r_ids[doc_id]
        found: list[str] = []
        document = documents.get(target)
        if document is None:
            return [f"{doc_id}: R2R document {target} does not exist"]
        if document.ingestion_status != "success":
            found.append(f"{doc_id}: ingestion_status {document.ingestion_status}")
        md = document.metadata
        if md.get("bridge_version") != exp.prepared.version:
            found.append(
                f"{doc_id}: bridge_version {md.get('bridge_version')!r} != ledger "
                f"{exp.prepared.version!r}"
            )
        if md.get("source_document_id") != doc_id or md.get("tenant_id") != tenant_id:
            found.append(f"{doc_id}: wrong source_document_id/tenant_id in {md}")
        wanted = wanted_collections[doc_id]
        if set(document.collection_ids) != wanted:
            found.append(
                f"{doc_id}: collections {sorted(map(str, document.collection_ids))} != "
                f"expected {sorted(map(str, wanted))}"
            )
        chunks, total = r2r_document_chunks(client, target)
        report.chunk_counts[doc_id] = len(chunks)
        report.collections[doc_id] = set(document.collection_ids)
        if not chunks or len(chunks) != total:
            found.append(f"{doc_id}: {len(chunks)} chunks listed, R2R reports {total}")
        if settings.chunking == "bridge" and exp.prepared.text is not None:
            split = split_text(
                exp.prepared.text,
                chunk_size=settings.chunk_size,
                chunk_overlap=settings.chunk_overlap,
            )
            if len(chunks) != len(split):
                found.append(
                    f"{doc_id}: {len(chunks)} chunks in R2R, the text splits into {len(split)}"
                )
        got_words: set[str] = set()
        for chunk in chunks:
            got_words |= words(chunk.get("text") or "")
            if str(chunk.get("document_id")) != str(target):
                found.append(f"{doc_id}: chunk {chunk.get('id')} of {chunk.get('document_id')}")
            chunk_md = chunk.get("metadata") or {}
            if chunk_md.get("bridge_version") != exp.prepared.version:
                found.append(
                    f"{doc_id}: a chunk has bridge_version {chunk_md.get('bridge_version')!r}"
                )
            chunk_cols = {uuid.UUID(str(c)) for c in chunk.get("collection_ids") or []}
            if chunk_cols != wanted:
                found.append(
                    f"{doc_id}: chunk {chunk.get('id')} collections "
                    f"{sorted(map(str, chunk_cols))} != {sorted(map(str, wanted))}"
                )
        want_words = words(exp.text)
        if got_words != want_words:
            found.append(
                f"{doc_id}: chunk words differ from the source: missing "
                f"{sorted(want_words - got_words)[:8]}, extra {sorted(got_words - want_words)[:8]}"
            )
        if not exp.must_contain <= got_words:
            found.append(f"{doc_id}: text lacks {sorted(exp.must_contain - got_words)}")
        if exp.must_not_contain & got_words:
            found.append(f"{doc_id}: text has {sorted(exp.must_not_contain & got_words)}")
        return found

    with ThreadPoolExecutor(max_workers=8) as pool:
        for found in pool.map(check_one, sorted(expected)):
            problems.extend(found)

    if problems:
        shown = "\n  ".join(problems[:_SHOW])
        more = f"\n  … and {len(problems) - _SHOW} more" if len(problems) > _SHOW else ""
        raise AssertionError(f"{len(problems)} problems in tenant {tenant_id}:\n  {shown}{more}")
    return report


# ------------------------------------------------------------------- misc


def run_cli(
    args: Sequence[str], env: Mapping[str, str], *, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """Run ``onyx-r2r ARGS`` as a child process with *env* on top of the current one."""
    return subprocess.run(
        [sys.executable, "-m", "onyx.r2r_sender.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **env},
        cwd=cwd,
        check=False,
    )


def drain_counts(log: str, tenant_id: str) -> list[int]:
    """The ``applied=N`` of every ``drain <tenant>: …`` line in a worker log."""
    pattern = re.compile(rf"drain {re.escape(tenant_id)}: applied=(\d+)")
    return [int(n) for n in pattern.findall(log)]


def send_in_batches(sender: Any, docs: Sequence[Mapping[str, Any]], size: int = 100) -> list[str]:
    """send_batch *docs* in batches; assert nothing is rejected; return the changed ids."""
    changed: list[str] = []
    for start in range(0, len(docs), size):
        report = sender.send_batch(list(docs[start : start + size]))
        assert not report.rejected, report.rejected
        changed.extend(report.changed)
    return changed


# --------------------------------------------------------- worker processes


def child_pids(pid: int) -> list[int]:
    """Direct children of *pid* (Linux /proc), e.g. the beat process of ``worker --beat``."""
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return children


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class WorkerTree:
    """Remembers the child processes of the workers a test starts, to kill them too.

    ``onyx-r2r worker --beat`` forks an embedded beat process.  SIGKILL to the worker
    alone leaves that child running with init as its parent, still sending sweeps every
    second: a real crash (container/machine death) takes the whole process tree down,
    so :meth:`kill9` does the same, and :meth:`reap` ends leftovers after the test.
    """

    def __init__(self) -> None:
        self._children: dict[int, str] = {}

    def remember(self, worker: Any) -> None:
        for pid in child_pids(worker.proc.pid):
            self._children.setdefault(pid, _cmdline(pid))

    def kill9(self, worker: Any) -> None:
        """SIGKILL the worker and its children (as a dying container would)."""
        self.remember(worker)
        children = child_pids(worker.proc.pid)
        worker.kill9()
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def reap(self) -> None:
        """SIGKILL remembered children that are still alive (same command line only)."""
        for pid, cmdline in self._children.items():
            if cmdline and _cmdline(pid) == cmdline:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass


def forget_backlog(settings: BridgeSettings, tenant_id: str) -> int:
    """Test teardown: drop the tenant's unsynced ledger rows.

    The test database is shared and every worker's sweep drains every tenant with due
    rows, so a failed scenario must not leave a backlog behind for other tests' workers.
    """
    from sqlalchemy import text

    from onyx.r2r_sender.ledger.models import SCHEMA

    ledger = Ledger.from_settings(settings)
    with ledger.engine.begin() as conn:
        return conn.execute(
            text(
                f"DELETE FROM {SCHEMA}.document_state WHERE tenant_id = :t AND status <> 'synced'"
            ),
            {"t": tenant_id},
        ).rowcount
