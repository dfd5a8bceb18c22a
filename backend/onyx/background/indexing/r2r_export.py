"""The docfetching sender: every connector batch is recorded for the R2R mirror (``ONYX_EXPORT_R2R``).

``run_docfetching.py`` (patched, primary search settings only) builds one
exporter per docfetching task and calls :meth:`DocfetchingExporter.export_batch`
right before Onyx stores each cleaned batch::

    r2r_exporter = r2r_export.exporter_for_attempt(tenant_id, is_primary=is_primary)
    ...
    if r2r_exporter is not None:
        r2r_exporter.export_batch(doc_batch_cleaned)

Recording is enqueue-only (one short ledger transaction and a doorbell ring,
no R2R call) and never raises: a failure is logged and counted, and the
docprocessing side (``R2RIndex``), backfill and reconciliation repair it.  The
exporter owns the **content** of connector documents; access belongs to
``R2RIndex`` (see :mod:`onyx.r2r_integration.policy`), so the ACL is sent as
"keep" - except a document new to the ledger that carries ``external_access``.

Imports nothing from Onyx (testable in CI); lives here because that is where
an Onyx admin's tree expects docfetching code.  Onyx's docfetching module imports it at
start-up, so the engine and its packages load only when an exporter is built (the
bridge is on for the tenant); with the bridge off nothing is imported or looked up.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from onyx.r2r_integration.flags import tenant_credentials, tenant_flags
from onyx.r2r_integration.logs import throttled

if TYPE_CHECKING:
    from onyx.r2r_integration.sender import R2RDocumentSender
    from onyx.r2r_sender import BridgeSettings

logger = logging.getLogger(__name__)


@dataclass
class ExportStats:
    """What one docfetching task recorded (also counted in the engine's Redis counters)."""

    batches: int = 0
    documents: int = 0
    changed: int = 0
    unchanged: int = 0
    rejected: int = 0
    failed_batches: int = 0
    failed_documents: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)


def build_sender(tenant_id: str, settings: BridgeSettings) -> R2RDocumentSender:
    """HOOK: the tenant's sender, from its stored R2R credential (issue 5) when one
    exists, else ``R2R_BASE_URL``/``R2R_API_KEY`` (``R2R_EMAIL``/``R2R_PASSWORD``).

    Sending itself only needs the ledger database and the broker; the credential
    names the R2R server this tenant's documents go to.
    """
    from onyx.r2r_integration.host import host_sender

    return host_sender(
        tenant_id,
        settings,
        default_acl=None,
        credentials=tenant_credentials(tenant_id, settings),
    )


class DocfetchingExporter:
    """Records connector batches of one tenant into the mirror; never raises."""

    def __init__(self, sender: R2RDocumentSender, tenant_id: str) -> None:
        self.sender = sender
        self.tenant_id = tenant_id
        self.stats = ExportStats()

    def __repr__(self) -> str:
        return f"DocfetchingExporter(tenant_id={self.tenant_id!r})"

    def _sources(self, documents: list[Any]) -> list[Any]:
        from onyx.r2r_integration.onyx_shapes import (
            external_access_acl,
            field_of,
            source_document_from_onyx,
        )
        from onyx.r2r_integration.policy import docfetching_acl

        ids = [str(field_of(d, "id")) for d in documents if field_of(d, "id")]
        known = self.sender.known_live(ids)
        out: list[Any] = []
        for doc in documents:
            try:
                source = source_document_from_onyx(doc, default_acl=None)
                acl = docfetching_acl(
                    external_access_acl(field_of(doc, "external_access")),
                    known_to_ledger=source.document_id in known,
                )
                out.append(dataclasses.replace(source, acl=acl, sets=None))
            except Exception:  # noqa: BLE001 - the sender rejects it with a reason
                out.append(doc)
        return out

    def export_batch(self, documents: Iterable[Any]) -> None:
        """Record *documents* (Onyx ``Document``s) for the mirror.  Never raises."""
        started = time.monotonic()
        docs = list(documents)
        self.stats.batches += 1
        self.stats.documents += len(docs)
        if not docs:
            return
        try:
            report = self.sender.send_batch(self._sources(docs))
            self.stats.changed += len(report.changed)
            self.stats.unchanged += len(report.unchanged)
            self.stats.rejected += len(report.rejected)
        except Exception as exc:  # noqa: BLE001 - never fail the index attempt
            self.stats.failed_batches += 1
            self.stats.failed_documents += len(docs)
            self.stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
            logger.warning(
                "r2r mirror: could not record a batch of %d documents for tenant %s "
                "(docprocessing, backfill and reconciliation repair it): %s",
                len(docs),
                self.tenant_id,
                exc,
            )
            self._count("docfetching_failed", len(docs))
        finally:
            self.stats.seconds += time.monotonic() - started

    def _count(self, name: str, amount: int) -> None:
        try:
            from onyx.r2r_sender import Counters, host_redis

            Counters(host_redis(self.sender.settings.broker_url)).add(self.tenant_id, name, amount)
        except Exception:
            logger.debug("could not count %s", name, exc_info=True)


def exporter_for_attempt(
    tenant_id: str, *, is_primary: bool, settings: BridgeSettings | None = None
) -> DocfetchingExporter | None:
    """The exporter of one docfetching task, or ``None`` (the bridge is off for the
    tenant - see :func:`~onyx.r2r_integration.flags.tenant_flags` - or the search settings
    are not PRESENT).

    Built once per task; never raises (a broken configuration or installation disables
    the export for this task and is logged, once per interval).
    """
    if not is_primary:
        return None
    try:
        if not tenant_flags(tenant_id, settings).export:  # no I/O while the bridge is off
            return None
        if settings is None:
            from onyx.r2r_sender import BridgeSettings

            settings = BridgeSettings.from_env()
        return DocfetchingExporter(build_sender(tenant_id, settings), tenant_id)
    except Exception as exc:  # noqa: BLE001 - never fail the docfetching task
        throttled.log(
            logger,
            logging.ERROR,
            "docfetching:exporter",
            "r2r mirror: export disabled for this attempt of tenant %s (%s: %s)",
            tenant_id,
            type(exc).__name__,
            exc,
            exc_info=True,
        )
        return None
