"""``onyx-r2r``: operate the bridge from a shell.

Commands: ``migrate``, ``status``, ``push FILE.jsonl…``, ``plan FILE.jsonl…``,
``replay``, ``worker``, ``search``, ``rotate-key``, ``reconcile``, ``backfill``.
Settings come from the environment (``R2R_BASE_URL``, ``R2R_API_KEY`` or ``R2R_API_KEY_FILE``,
``ONYX_R2R_DATABASE_URL``, ``ONYX_R2R_BROKER_URL``; see README).

JSONL lines are documents in the engine's record format (:mod:`onyx.r2r_sender.records`:
``id``, ``text`` or ``sections``, ``title``/``semantic_identifier``, ``source``, ``metadata``,
``doc_updated_at``, ``acl``, ``document_sets``, ``flags``), or operations: ``{"op": "delete", "id": …}`` and
``{"op": "access", "id": …, "acl": […], "document_sets": […]}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from redis import Redis

from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.errors import BridgeError
from onyx.r2r_sender.ledger import Ledger, get_engine
from onyx.r2r_sender.liveness import ConsumerProbe, probe_consumer
from onyx.r2r_sender.metrics import Counters
from onyx.r2r_sender.payload import ACL_PREFIX, SET_PREFIX, InvalidDocumentError, prepare
from onyx.r2r_sender.records import source_document_from_record
from onyx.r2r_sender.sender import DEFAULT_TENANT, BatchReport, MirrorSender


class CliError(BridgeError):
    """A user-facing error: printed without a traceback, exit code 2."""


# ----------------------------------------------------------------- input
@dataclass(frozen=True)
class Op:
    """One JSONL line: ``upsert`` (a document), ``delete`` or ``access``."""

    kind: str
    document_id: str
    body: dict[str, Any]
    where: str


def read_ops(paths: Sequence[str]) -> Iterator[Op]:
    """Yield the operations of *paths* in order; raise CliError on unreadable lines."""
    for path in paths:
        try:
            handle = open(path, encoding="utf-8", errors="surrogateescape")
        except OSError as exc:
            raise CliError(f"cannot read {path}: {exc.strerror}") from exc
        with handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    body = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CliError(f"{where}: not JSON ({exc.msg})") from exc
                if not isinstance(body, dict):
                    raise CliError(f"{where}: expected a JSON object")
                kind = body.get("op", "upsert")
                if kind not in ("upsert", "delete", "access"):
                    raise CliError(f"{where}: unknown op {kind!r}")
                yield Op(kind, str(body.get("id", "")), body, where)


def final_ops(paths: Sequence[str]) -> list[Op]:
    """The last operation per document id, in first-seen order (access merges into upserts)."""
    latest: dict[str, Op] = {}
    for op in read_ops(paths):
        previous = latest.get(op.document_id)
        if op.kind == "access" and previous is not None and previous.kind == "upsert":
            body = dict(previous.body)
            body["acl"] = op.body.get("acl", body.get("acl"))
            if "document_sets" in op.body:
                body["document_sets"] = op.body["document_sets"]
            op = Op("upsert", op.document_id, body, op.where)
        latest[op.document_id] = op
    return list(latest.values())


# ---------------------------------------------------------------- output
class Progress:
    """A progress bar on a terminal, periodic lines otherwise (CI logs)."""

    def __init__(self, total: int, label: str, stream: TextIO = sys.stderr) -> None:
        self.total = max(total, 1)
        self.label = label
        self.stream = stream
        self.tty = stream.isatty()
        self._last = 0.0

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        if not self.tty and now - self._last < 2.0 and done < self.total:
            return
        self._last = now
        width = 30
        filled = int(width * min(done, self.total) / self.total)
        bar = "#" * filled + "." * (width - filled)
        line = f"{self.label} [{bar}] {done}/{self.total} {extra}"
        if self.tty:
            self.stream.write("\r" + line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


# -------------------------------------------------------------- commands
@dataclass
class PushTotals:
    changed: set[str] = field(default_factory=set)
    unchanged: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)
    unknown: int = 0

    def add(self, report: BatchReport) -> None:
        self.changed.update(report.changed)
        self.unchanged += len(report.unchanged)
        self.unknown += len(report.unknown)
        self.rejected.extend((r.document_id, r.reason) for r in report.rejected)


def cmd_migrate(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.ledger import migrate

    engine = get_engine(settings.database_url)
    migrate.upgrade(engine)
    print(f"ledger schema at revision {migrate.current_revision(engine)}")
    return 0


def cmd_status(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.breaker import CircuitBreaker

    ledger = Ledger.from_settings(settings)
    rows = ledger.counts(args.tenant)
    redis = Redis.from_url(settings.broker_url)
    counters = Counters(redis)
    breaker = CircuitBreaker(
        redis,
        settings.r2r_base_url,
        threshold=settings.breaker_threshold,
        cooldown_seconds=settings.breaker_cooldown_seconds,
        max_cooldown_seconds=settings.breaker_max_cooldown_seconds,
    ).state()
    for row in rows:
        row["counters"] = counters.get(row["tenant_id"])
    dead_letters = ledger.dead_letters(args.tenant, limit=args.dead_letters)
    consumer = _probe(settings, redis, args.consumer_timeout)
    if args.json:
        body = {
            "tenants": rows,
            "breaker": breaker.__dict__,
            "dead_letters": [dataclasses.asdict(dead) for dead in dead_letters],
            "consumer": consumer.as_dict() if consumer is not None else None,
        }
        print(json.dumps(body, indent=2, default=str))
        return 0
    print(f"R2R {settings.r2r_base_url}: circuit breaker {breaker.state}")
    if consumer is not None:
        print(
            f"workers on queue {consumer.queue}: "
            + ("alive, " if consumer.alive else "NOT ")
            + consumer.detail
        )
    if not rows:
        print("no documents recorded yet")
    for row in rows:
        age = row["oldest_pending_seconds"]
        print(
            f"tenant {row['tenant_id']}: synced={row['synced']} pending={row['pending']} "
            f"(retrying {row['retrying']}) deleted={row['deleted']} dead={row['dead']} "
            f"oldest pending={'-' if age is None else f'{age:.1f}s'} "
            f"r2r writes so far={row['counters'].get('r2r_writes', 0)}"
        )
    for dead in dead_letters:
        print(
            f"  dead letter {dead.tenant_id}/{dead.document_id}: [{dead.error_class}] {dead.error}"
        )
    return 0


def _probe(settings: BridgeSettings, redis: Redis, timeout: float) -> ConsumerProbe | None:
    """A ping round trip through the mirror's queue (None when *timeout* is 0)."""
    if timeout <= 0:
        return None
    from onyx.r2r_sender.celery_app import build_app

    return probe_consumer(build_app(settings), redis, settings, timeout=timeout)


def _send(sender: MirrorSender, ops: Sequence[Op], batch_size: int, totals: PushTotals) -> None:
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        if batch:
            totals.add(sender.send_batch(batch))
            batch.clear()

    for op in ops:
        if op.kind == "upsert":
            batch.append(op.body)
            if len(batch) >= batch_size:
                flush()
            continue
        flush()
        if op.kind == "delete":
            totals.add(sender.delete_documents([op.document_id]))
        else:
            totals.add(
                sender.update_access(
                    {op.document_id: op.body.get("acl")},
                    sets_by_document={op.document_id: op.body.get("document_sets")},
                )
            )
    flush()


def cmd_push(args: argparse.Namespace, settings: BridgeSettings) -> int:
    sender = MirrorSender(tenant_id=args.tenant, settings=settings)
    counters = Counters(Redis.from_url(settings.broker_url))
    writes_before = counters.get(args.tenant).get("r2r_writes", 0)
    ops = final_ops(args.files) if args.final_state else list(read_ops(args.files))
    totals = PushTotals()
    started = time.monotonic()
    _send(sender, ops, args.batch_size, totals)
    print(
        f"recorded {len(ops)} operations in {time.monotonic() - started:.2f}s: "
        f"{len(totals.changed)} changed, {totals.unchanged} unchanged, "
        f"{len(totals.rejected)} rejected, {totals.unknown} unknown"
    )
    for doc_id, reason in totals.rejected[:20]:
        print(f"  rejected {doc_id!r}: {reason}")
    if args.no_wait or not totals.changed:
        if not totals.changed:
            print("nothing changed: 0 R2R writes needed")
        return 0
    changed = sorted(totals.changed)
    progress = Progress(len(changed), "applying")
    deadline = time.monotonic() + args.timeout
    while True:
        pending = sender.ledger.pending_count(args.tenant, changed)
        progress.update(len(changed) - pending)
        if pending == 0:
            break
        if time.monotonic() > deadline:
            progress.close()
            print(f"timed out after {args.timeout:.0f}s with {pending} documents still pending")
            return 2
        time.sleep(0.5)
    progress.close()
    writes = counters.get(args.tenant).get("r2r_writes", 0) - writes_before
    print(
        f"applied {len(changed)} documents in {time.monotonic() - started:.1f}s; R2R writes: {writes}"
    )
    dead = [
        d
        for d in sender.ledger.dead_letters(args.tenant, limit=1000)
        if d.document_id in totals.changed
    ]
    for item in dead[:20]:
        print(f"  dead letter {item.document_id!r}: [{item.error_class}] {item.error}")
    return 0


def cmd_plan(args: argparse.Namespace, settings: BridgeSettings) -> int:
    ledger = Ledger.from_settings(settings)
    ops = final_ops(args.files)
    current = ledger.desired_of(args.tenant, [op.document_id for op in ops])
    plan: dict[str, list[str]] = {
        k: [] for k in ("create", "replace", "delete", "grant", "revoke", "unchanged", "rejected")
    }
    for op in ops:
        state = current.get(op.document_id)
        live = state is not None and not state.deleted and state.version is not None
        if op.kind == "delete":
            plan["delete" if live else "unchanged"].append(op.document_id)
            continue
        if op.kind == "access":
            if not live or state is None:
                plan["unchanged"].append(op.document_id)
                continue
            new = {ACL_PREFIX + a for a in op.body.get("acl") or []} | {
                label for label in state.labels if not label.startswith(ACL_PREFIX)
            }
            if "document_sets" in op.body:
                new = {label for label in new if not label.startswith(SET_PREFIX)} | {
                    SET_PREFIX + s for s in op.body.get("document_sets") or []
                }
            labels_now = set(state.labels)
        else:
            try:
                doc = prepare(source_document_from_record(op.body), settings, args.tenant)
            except InvalidDocumentError as exc:
                plan["rejected"].append(f"{exc.document_id}: {exc.reason}")
                continue
            if not live or state is None:
                plan["create"].append(op.document_id)
                continue
            if state.version != doc.version:
                plan["replace"].append(op.document_id)
            new, labels_now = set(doc.labels), set(state.labels)
        grants, revokes = new - labels_now, labels_now - new
        if grants:
            plan["grant"].append(f"{op.document_id}: {', '.join(sorted(grants))}")
        if revokes:
            plan["revoke"].append(f"{op.document_id}: {', '.join(sorted(revokes))}")
        if (
            op.kind == "upsert"
            and op.document_id not in plan["replace"]
            and not grants
            and not revokes
        ):
            plan["unchanged"].append(op.document_id)
        elif op.kind == "access" and not grants and not revokes:
            plan["unchanged"].append(op.document_id)
    if args.json:
        print(json.dumps(plan, indent=2))
        return 0
    print("plan (dry run, nothing applied): " + ", ".join(f"{len(v)} {k}" for k, v in plan.items()))
    for kind in ("create", "replace", "delete", "grant", "revoke", "rejected"):
        for entry in plan[kind][: args.show]:
            print(f"  {kind:8} {entry}")
        if len(plan[kind]) > args.show:
            print(f"  {kind:8} … and {len(plan[kind]) - args.show} more")
    return 0


def cmd_replay(args: argparse.Namespace, settings: BridgeSettings) -> int:
    sender = MirrorSender(tenant_id=args.tenant or DEFAULT_TENANT, settings=settings)
    requeued = sender.ledger.replay(args.tenant, args.ids or None)
    for tenant in sorted({tenant for tenant, _ in requeued}):
        sender.doorbell.ring(tenant)
    print(f"re-queued {len(requeued)} dead letters")
    return 0


def cmd_worker(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.tasks import worker_app

    app = worker_app(settings)

    argv = [
        "worker",
        "-Q",
        settings.queue,
        "--pool",
        "threads",
        "--concurrency",
        str(args.concurrency),
        "--loglevel",
        args.loglevel,
        "--without-gossip",
        "--without-mingle",
        "--hostname",
        args.hostname,
    ]
    if args.beat:
        argv.append("--beat")
        argv += ["--schedule", args.schedule_file]
    app.worker_main(argv)
    return 0


def cmd_health(args: argparse.Namespace, settings: BridgeSettings) -> int:
    """Liveness/readiness probe: the ledger database, the broker and R2R answer (exit 0/1)."""
    from sqlalchemy import text

    from onyx.r2r_sender.connect import make_client

    problems: list[str] = []
    try:
        with get_engine(settings.database_url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - a probe reports, it does not crash
        problems.append(f"ledger database: {type(exc).__name__}")
    try:
        Redis.from_url(settings.broker_url, socket_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001
        problems.append(f"broker: {type(exc).__name__}")
    if args.consumer_timeout > 0:
        redis = Redis.from_url(settings.broker_url, socket_timeout=3)
        consumer = _probe(settings, redis, args.consumer_timeout)
        if consumer is not None and not consumer.alive:
            problems.append(f"consumer: {consumer.detail}")
    if not args.skip_r2r:
        try:
            with make_client(settings.credentials, settings) as client:
                client.health(retry=False)
        except Exception as exc:  # noqa: BLE001
            problems.append(f"r2r: {exc}")
    if problems:
        print("unhealthy: " + "; ".join(problems))
        return 1
    print("healthy")
    return 0


def cmd_beat(args: argparse.Namespace, settings: BridgeSettings) -> int:
    """Run only the beat schedule (one per deployment; workers then run without --beat)."""
    from onyx.r2r_sender.tasks import worker_app

    worker_app(settings).start(
        ["beat", "--loglevel", args.loglevel, "--schedule", args.schedule_file]
    )
    return 0


def cmd_search(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.collections import CollectionResolver
    from onyx.r2r_sender.connect import make_client
    from onyx.r2r_sender.read_model import Retriever, SearchScope

    ledger = Ledger.from_settings(settings)
    scope = SearchScope(scope_key=args.tenant, principals=tuple(args.acl))
    with make_client(settings.credentials, settings) as client:
        retriever = Retriever(client, CollectionResolver(client, ledger))
        hits = retriever.search(scope, args.query, mode=args.mode, limit=args.limit)
    print(f"{len(hits)} hits for {args.query!r} as {', '.join(args.acl)}:")
    for hit in hits:
        snippet = " ".join(hit.text.split())[:100]
        print(f"  {hit.score or 0.0:.3f}  {hit.document_id}  {hit.title or ''!r}: {snippet}")
    return 0


def cmd_rotate_key(args: argparse.Namespace, settings: BridgeSettings) -> int:
    import os

    from onyx.r2r_sender.credentials import CredentialStore
    from onyx.r2r_sender.credentials_crypto import (
        ENCRYPTION_KEY_ENV,
        ONYX_ENCRYPTION_KEY_ENV,
        EncryptionKey,
        Keyring,
    )
    from onyx.r2r_sender.errors import CredentialError

    old_secret = os.environ.get(args.old_key_env, "")
    if args.old_key_file:
        with open(args.old_key_file, encoding="utf-8") as handle:
            old_secret = handle.read().strip()
    try:
        new = Keyring.from_env()
        if new.current is None:
            raise CliError(
                f"set the new key in {ENCRYPTION_KEY_ENV} (or "
                f"{ONYX_ENCRYPTION_KEY_ENV}) before rotating"
            )
        old = Keyring(
            EncryptionKey(old_secret, source=args.old_key_env) if old_secret.strip() else None
        )
        store = CredentialStore(get_engine(settings.database_url), keyring=new)
        report = store.rotate(old, new.current, tenant_ids=args.tenant or None)
    except CredentialError as exc:
        raise CliError(str(exc)) from None
    print(
        f"re-encrypted {report.rotated} stored credentials with the new key "
        f"({report.encrypted_plaintext} were unencrypted, {report.already_current} already "
        "used it)"
    )
    return 0


# [issue-4] reconciliation and backfill from a shell
def cmd_reconcile(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.connect import make_client
    from onyx.r2r_sender.reconcile import reconcile_tenant

    ledger = Ledger.from_settings(settings)
    with make_client(settings.credentials, settings) as client:
        result = reconcile_tenant(
            args.tenant,
            ledger=ledger,
            client=client,
            max_delete_share=args.max_delete_share,
            delete_floor=args.delete_floor,
            dry_run=args.dry_run,
            ring=MirrorSender(tenant_id=args.tenant, settings=settings).doorbell.ring,
        )
    summary = result.summary()
    if args.json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(
            f"reconcile {args.tenant}: {result.outcome} - {result.r2r_documents} R2R documents, "
            f"{len(result.orphans)} orphans ({result.deleted} deleted), "
            f"{len(result.missing)} missing, {len(result.drift)} drifted, "
            f"{len(result.failed_requeued)} dead letters re-queued"
            + (f"\n  {result.reason}" if result.reason else "")
        )
    return 0 if result.outcome in ("ok", "dry_run") else 1


def cmd_backfill(args: argparse.Namespace, settings: BridgeSettings) -> int:
    from onyx.r2r_sender.backfill import StaticBackfillSource, run_backfill_slice

    sender = MirrorSender(tenant_id=args.tenant, default_acl=None, settings=settings)
    source = StaticBackfillSource.from_jsonl(*args.files)
    progress = run_backfill_slice(
        args.tenant,
        source,
        sender=sender,
        batch_size=args.batch_size,
        max_seconds=args.max_seconds,
        throttle_seconds=args.throttle,
        restart=args.restart,
    )
    print(
        f"backfill {args.tenant}: {progress.state} after {progress.after!r} - scanned "
        f"{progress.scanned}, missing {progress.missing}, recorded {progress.recorded}, "
        f"rejected {progress.rejected}" + (f" ({progress.stopped})" if progress.stopped else "")
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="onyx-r2r", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("migrate", help="create or upgrade the ledger schema")

    p = sub.add_parser("status", help="counts per state per tenant, backlog, dead letters")
    p.add_argument("--tenant")
    p.add_argument("--json", action="store_true")
    p.add_argument("--dead-letters", type=int, default=10, help="how many to list")
    p.add_argument(
        "--consumer-timeout",
        type=float,
        default=10.0,
        help="seconds to wait for a worker to run a ping on the queue (0: skip the check)",
    )

    for name, helptext in (
        ("push", "record documents and wait until applied"),
        ("plan", "dry run"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("files", nargs="+", metavar="FILE.jsonl")
        p.add_argument("--tenant", default=DEFAULT_TENANT)
        p.add_argument("--json", action="store_true")
        if name == "push":
            p.add_argument("--batch-size", type=int, default=100)
            p.add_argument("--timeout", type=float, default=600.0)
            p.add_argument("--no-wait", action="store_true")
            p.add_argument(
                "--final-state",
                action="store_true",
                help="send only the last operation per document across all files",
            )
        else:
            p.add_argument("--show", type=int, default=10, help="entries listed per kind")

    p = sub.add_parser("replay", help="re-queue dead letters")
    p.add_argument("--tenant")
    p.add_argument("ids", nargs="*", metavar="DOCUMENT_ID")

    p = sub.add_parser("worker", help="run a Celery worker on the r2r_mirror queue")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--loglevel", default="INFO")
    p.add_argument(
        "--beat", action="store_true", help="also run the sweep schedule (one per deployment)"
    )
    p.add_argument("--schedule-file", default=str(Path.cwd() / "celerybeat-schedule"))
    p.add_argument("--hostname", default="r2r_mirror@%h")

    p = sub.add_parser(
        "rotate-key",
        help="re-encrypt stored R2R credentials with the key in ONYX_R2R_ENCRYPTION_KEY",
    )
    p.add_argument(
        "--old-key-env",
        default="ONYX_R2R_OLD_ENCRYPTION_KEY",
        help="variable holding the previous key (default: %(default)s)",
    )
    p.add_argument("--old-key-file", help="read the previous key from this file instead")
    p.add_argument("--tenant", action="append", help="only this tenant (repeatable)")

    p = sub.add_parser("reconcile", help="compare R2R with the ledger for a tenant and repair")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--dry-run", action="store_true", help="report only, change nothing")
    p.add_argument("--max-delete-share", type=float, default=0.2)
    p.add_argument("--delete-floor", type=int, default=10)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("backfill", help="record documents of JSONL files the ledger lacks")
    p.add_argument("files", nargs="+", metavar="FILE.jsonl")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--restart", action="store_true", help="start a new pass")
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--max-seconds", type=float, default=600.0)
    p.add_argument("--throttle", type=float, default=0.0)

    p = sub.add_parser("health", help="probe the ledger database, the broker and R2R (exit 0/1)")
    p.add_argument("--skip-r2r", action="store_true", help="liveness only: skip the R2R call")
    p.add_argument(
        "--consumer-timeout",
        type=float,
        default=0.0,
        help="also send a ping on the queue and fail unless a worker runs it within this many "
        "seconds (default 0: skip)",
    )

    p = sub.add_parser("beat", help="run the sweep schedule alone (exactly one per deployment)")
    p.add_argument("--loglevel", default="INFO")
    p.add_argument("--schedule-file", default=str(Path.cwd() / "celerybeat-schedule"))

    p = sub.add_parser("search", help="search as a set of ACL principals")
    p.add_argument("query")
    p.add_argument("--tenant", default=DEFAULT_TENANT)
    p.add_argument("--acl", action="append", required=True, help="e.g. PUBLIC or user_email:a@b.c")
    p.add_argument("--limit", type=int, default=5)
    p.add_argument("--mode", choices=("semantic", "hybrid", "fulltext"), default="semantic")
    return parser


COMMANDS = {
    "health": cmd_health,
    "beat": cmd_beat,
    "migrate": cmd_migrate,
    "status": cmd_status,
    "push": cmd_push,
    "plan": cmd_plan,
    "replay": cmd_replay,
    "worker": cmd_worker,
    "search": cmd_search,
    "rotate-key": cmd_rotate_key,
    "reconcile": cmd_reconcile,
    "backfill": cmd_backfill,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``onyx-r2r``; returns the process exit code."""
    args = build_parser().parse_args(argv)
    try:
        settings = BridgeSettings.from_env()
        return COMMANDS[args.command](args, settings)
    except CliError as exc:
        print(f"onyx-r2r: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
