"""The R2R bridge engine: everything a host (Onyx, Nextcloud, …) may call, in ``__all__``.

Hosts import these names from ``onyx.r2r_sender`` and nothing else of the engine.  Names
load lazily (PEP 562), so ``import onyx.r2r_sender`` does no work and pulls in no
database, broker or Celery library; the synchronous path (``SyncApplier``) needs only
httpx.  The README's "Engine API" section documents each group.

* **Who owns what in R2R**: :class:`HostNamespace`, :class:`TenantScope`, :data:`ONYX`,
  :data:`NEXTCLOUD`, :func:`host_namespace` (ids, collection names and scope keys);
  the legacy Onyx id functions :func:`r2r_document_id`, :func:`r2r_version_id`.
* **The input**: :class:`SourceDocument`, :func:`source_document_from_record` (the
  engine's record format), :class:`InvalidDocumentError`, the chunk-metadata
  :mod:`schema`.
* **Asynchronous path** (durable ledger, Celery workers): :class:`MirrorSender`,
  :class:`BatchReport`, :class:`SenderError`, the host-facing ledger protocol
  :class:`DesiredStateLedger` (:class:`RecordResult`, :class:`DesiredState`) with its
  PostgreSQL :class:`Ledger` and its in-memory twin :class:`InMemoryLedger`, and the
  bounded host plumbing (:func:`host_sender`, :func:`host_reader`, :class:`Reader`,
  :func:`host_redis`, :func:`host_engine`).
* **Synchronous path** (no ledger, no Celery, no Redis): :class:`SyncApplier`,
  :class:`SyncOutcome`, :class:`LabelChange`, :class:`AppliedDocument`.
* **Reading** (one read model for every host): :class:`SearchScope` →
  :class:`ResolvedScope` (R2R filter and the same rules evaluated locally),
  :class:`Retriever` (search, chunks of documents), :class:`MirroredChunk`,
  :func:`newest_versions`, and the label → collection :class:`CollectionResolver`.
* **R2R and its errors**: :class:`R2RClient` (REST over httpx with retries),
  :func:`make_client`, the login-token stores :class:`TokenStore` /
  :class:`FileTokenStore`, the engine's error tree rooted at :class:`BridgeError`
  (R2R's errors under :class:`R2RError`), :class:`DeadLetterClass`, :func:`classify`,
  :func:`classify_failure`, typed results.
* **Per-tenant credentials**: :class:`CredentialStore`, :func:`credentials_for`,
  :func:`export_state`.
* **Settings**: :class:`BridgeSettings`, :class:`R2RCredentials`, :class:`Secret`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # hosts and ids
    "HostNamespace": "hosts",
    "TenantScope": "hosts",
    "ONYX": "hosts",
    "NEXTCLOUD": "hosts",
    "KNOWN_HOSTS": "hosts",
    "host_namespace": "hosts",
    "BRIDGE_NAMESPACE": "ids",
    "r2r_document_id": "ids",
    "r2r_version_id": "ids",
    "tenant_namespace": "ids",
    # input
    "SourceDocument": "payload",
    "InvalidDocumentError": "payload",
    "ACL_PREFIX": "payload",
    "SET_PREFIX": "payload",
    "FLAG_PREFIX": "payload",
    "source_document_from_record": "records",
    "field_of": "records",
    "enum_value": "records",
    "section_text": "records",
    "schema": "",
    # asynchronous path
    "MirrorSender": "sender",
    "BatchReport": "sender",
    "Rejection": "sender",
    "SenderError": "sender",
    "DEFAULT_TENANT": "sender",
    "DesiredStateLedger": "desired_state",
    "DesiredState": "desired_state",
    "RecordResult": "desired_state",
    "Ledger": "ledger",
    "InMemoryLedger": "memory_ledger",
    "host_sender": "plumbing",
    "host_reader": "plumbing",
    "host_redis": "plumbing",
    "host_engine": "plumbing",
    "host_ledger": "plumbing",
    "host_doorbell": "plumbing",
    "Reader": "plumbing",
    "Counters": "metrics",
    # synchronous path
    "SyncApplier": "sync",
    "SyncOutcome": "sync",
    "LabelChange": "sync",
    "AppliedDocument": "sync",
    # reading: the one read model
    "CollectionResolver": "collections",
    "SearchScope": "read_model",
    "ResolvedScope": "read_model",
    "MirroredChunk": "read_model",
    "Retriever": "read_model",
    "newest_versions": "read_model",
    "raw_version": "read_model",
    "scope_key_filter": "read_model",
    "is_safe_metadata_key": "read_model",
    "HIDDEN_FLAG": "read_model",
    "HIDDEN_LABEL": "read_model",
    # R2R and errors
    "R2RClient": "client",
    "SearchMode": "client",
    "make_client": "connect",
    "TokenStore": "token_store",
    "FileTokenStore": "token_store",
    "CircuitBreaker": "breaker",
    "BridgeError": "errors",
    "DeadLetterClass": "errors",
    "R2RError": "errors",
    "R2RAlreadyExistsError": "errors",
    "R2RAuthError": "errors",
    "R2RBusyError": "errors",
    "R2RConfigError": "errors",
    "R2RFatalError": "errors",
    "R2RNotFoundError": "errors",
    "R2RRetryableError": "errors",
    "classify": "errors",
    "classify_failure": "applier",
    "IngestResult": "r2r_types",
    "R2RChunk": "r2r_types",
    "R2RCollection": "r2r_types",
    "R2RDocument": "r2r_types",
    "SearchHit": "r2r_types",
    # per-tenant R2R credentials and export switches (stored, encrypted)
    "CredentialStore": "credentials",
    "credentials_for": "credentials",
    "export_state": "credentials",
    # settings
    "BridgeSettings": "config",
    "SettingsError": "errors",
    "R2RCredentials": "config",
    "Secret": "config",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Load a public name on first use (PEP 562); unknown names raise ``AttributeError``."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    if module_name == "":
        value: Any = importlib.import_module(f"{__name__}.{name}")
    else:
        value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
