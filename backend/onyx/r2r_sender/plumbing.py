"""Bounded plumbing for host processes that record into the mirror or read from it.

Hosts call the engine from places that must never stall (Onyx: ``index()`` runs while
Onyx holds row locks, ``delete()``/``update()`` run in light tasks with short budgets,
the docfetching loop fetches connectors).  Everything built here has
explicit, short timeouts (worker pools are threads: Celery's time limits do
nothing), and is built once per process and shared:

* a ledger engine with ``connect_timeout``, ``pool_timeout`` and a
  ``statement_timeout`` (an unreachable database fails in seconds, not minutes);
* a Redis client with socket timeouts and a Celery app whose publishing gives
  up quickly (a lost doorbell ring is repaired by the engine's sweep);
* for retrieval, one pooled R2R client per server and credential.

Nothing is built at import time.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass
from typing import Any

from celery import Celery
from redis import Redis
from sqlalchemy import Engine, create_engine

from onyx.r2r_sender.celery_app import build_app
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.config import BridgeSettings, R2RCredentials
from onyx.r2r_sender.desired_state import DesiredStateLedger
from onyx.r2r_sender.doorbell import Doorbell
from onyx.r2r_sender.hosts import TenantScope
from onyx.r2r_sender.ledger import Ledger
from onyx.r2r_sender.read_model import Retriever
from onyx.r2r_sender.sender import Converter, MirrorSender, record_converter

HOST_CONNECT_TIMEOUT = 3  # seconds, database and Redis connects
HOST_STATEMENT_TIMEOUT_MS = 10_000
HOST_SOCKET_TIMEOUT = 3.0

_lock = threading.Lock()
_engines: dict[str, Engine] = {}
_redis: dict[str, Redis] = {}
_apps: dict[tuple[str, str], Celery] = {}
_readers: dict[tuple[R2RCredentials, str], Reader] = {}


def host_engine(database_url: str) -> Engine:
    """A small, time-bounded engine on the ledger database (one per process and URL)."""
    with _lock:
        engine = _engines.get(database_url)
        if engine is None:
            connect_args: dict[str, Any] = {}
            if database_url.startswith("postgresql"):
                connect_args = {
                    "connect_timeout": HOST_CONNECT_TIMEOUT,
                    "options": f"-c statement_timeout={HOST_STATEMENT_TIMEOUT_MS}",
                }
            engine = create_engine(
                database_url,
                pool_size=5,
                max_overflow=5,
                pool_timeout=HOST_CONNECT_TIMEOUT,
                pool_pre_ping=True,
                pool_recycle=1800,
                connect_args=connect_args,
            )
            _engines[database_url] = engine
        return engine


def host_redis(url: str) -> Redis:
    with _lock:
        client = _redis.get(url)
        if client is None:
            client = Redis.from_url(
                url,
                socket_connect_timeout=HOST_CONNECT_TIMEOUT,
                socket_timeout=HOST_SOCKET_TIMEOUT,
            )
            _redis[url] = client
        return client


def host_app(settings: BridgeSettings) -> Celery:
    """The engine's Celery app, publishing with a short connect timeout and one retry."""
    key = (settings.broker_url, settings.queue)
    with _lock:
        app = _apps.get(key)
        if app is None:
            app = build_app(settings)
            app.conf.update(
                broker_connection_timeout=HOST_CONNECT_TIMEOUT,
                broker_connection_retry=False,
                # on top of build_app's options: the key prefix must stay (issue 17)
                broker_transport_options={
                    **app.conf.broker_transport_options,
                    "socket_connect_timeout": HOST_CONNECT_TIMEOUT,
                    "socket_timeout": HOST_SOCKET_TIMEOUT,
                },
                task_publish_retry_policy={
                    "max_retries": 1,
                    "interval_start": 0,
                    "interval_step": 0.2,
                    "interval_max": 0.5,
                },
            )
            _apps[key] = app
        return app


def host_ledger(settings: BridgeSettings) -> Ledger:
    return Ledger(host_engine(settings.database_url), settings)


def host_sender(
    tenant_id: str | TenantScope,
    settings: BridgeSettings,
    *,
    default_acl: list[str] | None = None,
    credentials: R2RCredentials | None = None,
    convert: Converter = record_converter,
) -> MirrorSender:
    """A :class:`MirrorSender` for one tenant on the bounded plumbing (cheap to build).

    *convert* reads the host's documents (see :class:`MirrorSender`).
    """
    return MirrorSender(
        credentials.base_url if credentials else None,
        credentials.api_key.get() if credentials and credentials.api_key else None,
        tenant_id=tenant_id,
        default_acl=default_acl,
        settings=settings,
        ledger=host_ledger(settings),
        doorbell=host_doorbell(settings),
        convert=convert,
    )


def host_doorbell(settings: BridgeSettings) -> Doorbell:
    """The workers' doorbell on the bounded Redis client and Celery app (one per process)."""
    return Doorbell(host_app(settings), host_redis(settings.broker_url), settings)


@dataclass(frozen=True)
class Reader:
    """What retrieval needs: an R2R client, the label→collection resolver and the ledger's
    lookups of applied versions (hosts call these methods, never the ledger itself)."""

    client: R2RClient
    resolver: CollectionResolver
    ledger: DesiredStateLedger

    @property
    def retriever(self) -> Retriever:
        """The engine's read model on this client and resolver (cheap: built per call)."""
        return Retriever(self.client, self.resolver)

    def applied_r2r_ids(self, tenant_id: str, document_ids: list[str]) -> dict[str, uuid.UUID]:
        """The R2R id of the applied version of each mirrored document among *document_ids*."""
        return self.ledger.applied_r2r_ids(tenant_id, document_ids)

    def sample_applied(self, tenant_id: str, n: int) -> dict[str, uuid.UUID]:
        """Up to *n* random mirrored documents (document id → applied R2R id)."""
        return self.ledger.sample_applied(tenant_id, n)


def host_reader(settings: BridgeSettings, credentials: R2RCredentials | None = None) -> Reader:
    """One pooled R2R client (login → JWT when an email/password is set) per server/credential."""
    from onyx.r2r_sender.connect import make_client

    creds = credentials or settings.credentials
    key = (creds, settings.database_url)
    with _lock:
        reader = _readers.get(key)
    if reader is not None:
        return reader
    client = make_client(creds, settings)
    ledger = host_ledger(settings)
    reader = Reader(client=client, resolver=CollectionResolver(client, ledger), ledger=ledger)
    with _lock:
        existing = _readers.setdefault(key, reader)
    if existing is not reader:
        client.close()
    return existing
