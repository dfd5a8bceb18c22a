"""Who writes what about a document into R2R: the division of labour.

Two Onyx paths can write to the mirror's ledger:

* the **docfetching sender** (``ONYX_EXPORT_R2R=true``, ``run_docfetching.py``) sees
  every connector document as the connector returns it, before Onyx stores the
  batch;
* ``R2RIndex`` in Onyx's index fan-out sees enriched chunks (Onyx's final ACL,
  document sets) for the documents whose content changed, and every
  delete/update (permission sync, document sets, hidden, deletion, pruning).

If both wrote the content of one document, its text would flip between two
renderings (sections vs. rebuilt chunks) and be re-embedded each time; if both
wrote its ACL, the docfetching view (only the connector's external access)
would revoke Onyx's internal grants.  So:

* ``R2RIndex`` **owns access and document sets** of every document;
* the docfetching sender **owns content** of connector documents and sends the
  ACL as ``None`` ("keep what the ledger has") - except for a document the
  ledger does not know yet that carries ``external_access`` (permission-synced
  connectors), whose first ACL comes from the connector so it is searchable
  by its external principals right away;
* ``R2RIndex`` owns the **content** of documents that never pass through
  docfetching (ingestion API, user files), and of every document when the
  docfetching export is off while ``R2RIndex`` is active (``ONYX_INDEX_BACKEND=r2r``
  or replace mode without ``ONYX_EXPORT_R2R``);
* when ``R2RIndex`` updates the access of a document the ledger does not know
  (the docfetching send failed), it records the content too, from the chunks
  it holds: nobody else will (Onyx's content-hash gate skips unchanged documents).

Pure functions; unit-tested in ``backend/tests/unit/test_r2r_policy.py``.
"""

from __future__ import annotations

from collections.abc import Collection

USER_FILE_SOURCE = "user_file"  # DocumentSource.USER_FILE.value


def index_owns_content(
    *, source: str | None, from_ingestion_api: bool, docfetching_export: bool
) -> bool:
    """True when ``R2RIndex.index()`` must record the document's content.

    *source* is the ``DocumentSource`` value; *docfetching_export* is whether the
    docfetching sender is on (``ONYX_EXPORT_R2R``).
    """
    if not docfetching_export:
        return True
    if from_ingestion_api:
        return True
    return source == USER_FILE_SOURCE


def docfetching_acl(
    external_acl: Collection[str] | None, *, known_to_ledger: bool
) -> list[str] | None:
    """The ACL the docfetching sender records for one document (``None`` = keep).

    Only a document new to the ledger takes the connector's ``external_access``
    as its first ACL; afterwards ``R2RIndex`` (Onyx's full ACL) owns it, so a
    later fetch never revokes Onyx's internal grants.
    """
    if external_acl is None or known_to_ledger:
        return None
    return sorted(external_acl)
