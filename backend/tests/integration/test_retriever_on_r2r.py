"""The engine's read model against the real R2R: scopes of two hosts never see each other.

Two documents with the same document id are written straight into R2R (``prepare`` +
``R2RClient.ingest_document``, the way the applier creates a version) under an Onyx
scope and a Nextcloud scope whose tenant ids are equal.  Each scope's searches and
document reads through the :class:`Retriever` see only its own document; the Nextcloud
adapter's provider and source scopes (source types, document ids) are evaluated by R2R
itself.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from engine_checks import make_r2r, purge_tenant

from onyx.r2r_sender import schema
from onyx.r2r_sender.client import R2RClient
from onyx.r2r_sender.collections import CollectionResolver
from onyx.r2r_sender.hosts import NEXTCLOUD, ONYX, TenantScope
from onyx.r2r_sender.payload import SourceDocument, prepare
from onyx.r2r_sender.read_model import MirroredChunk, Retriever, SearchScope

pytestmark = pytest.mark.integration

DOC_ID = "files__default: 42"  # the same host document id in both scopes
WORD = "okapi"


@pytest.fixture
def client(settings, ledger, tenant_id) -> Iterator[R2RClient]:
    keys = [ONYX.scope(tenant_id).key, NEXTCLOUD.scope(tenant_id).key]
    with make_r2r(settings) as r2r:
        try:
            yield r2r
        finally:
            for key in keys:
                purge_tenant(r2r, ledger, key)


def write(
    client: R2RClient, resolver: CollectionResolver, settings, scope: TenantScope, doc
) -> uuid.UUID:
    """Create one version of *doc* in R2R the way the applier does (pre-chunked, seq 1)."""
    prepared = prepare(doc, settings, scope.key)
    collections = resolver.resolve(scope.key, prepared.labels, create=True)
    r2r_id = scope.version_id(prepared.document_id, prepared.version)
    result = client.ingest_document(
        document_id=r2r_id,
        chunks=[prepared.text or ""],
        metadata={**prepared.r2r_metadata, schema.VERSION: prepared.version, schema.SEQ: 1},
        collection_ids=[collections[label] for label in prepared.labels],
    )
    assert result.completed
    return r2r_id


def test_equal_tenant_and_document_ids_of_two_hosts_stay_apart(
    settings, ledger, client, tenant_id
) -> None:
    onyx, nextcloud = ONYX.scope(tenant_id), NEXTCLOUD.scope(tenant_id)
    resolver = CollectionResolver(client, ledger)
    ids = {
        onyx: write(
            client,
            resolver,
            settings,
            onyx,
            SourceDocument(
                DOC_ID, text=f"{WORD} habitat survey, onyx copy", acl=["PUBLIC"], source_type="web"
            ),
        ),
        nextcloud: write(
            client,
            resolver,
            settings,
            nextcloud,
            SourceDocument(
                DOC_ID,
                text=f"{WORD} habitat survey, nextcloud copy",
                acl=["PUBLIC", "alice"],
                source_type="files__default",
            ),
        ),
    }
    assert ids[onyx] != ids[nextcloud]
    # a reader of its own (a fresh cache), as another process would be
    retriever = Retriever(client, CollectionResolver(client, ledger))

    def search(scope: TenantScope, **rules) -> list[MirroredChunk]:
        rules.setdefault("principals", ("PUBLIC",))
        found = SearchScope(scope_key=scope.key, **rules)
        return retriever.search(found, f"{WORD} habitat", mode="fulltext", limit=20)

    for scope, other in ((onyx, nextcloud), (nextcloud, onyx)):
        for principals in (("PUBLIC",), None):  # an ACL and none: the scope key alone holds
            hits = search(scope, principals=principals)
            assert [h.r2r_document_id for h in hits] == [ids[scope]], (scope, principals)
            (hit,) = hits
            assert hit.document_id == DOC_ID and hit.scope_key == scope.key
            assert f"{scope.host.name} copy" in hit.text and hit.score is not None
            assert hit.seq == 1 and hit.version is not None and not hit.hidden
        own, foreign = retriever.document_chunks(
            SearchScope(scope_key=scope.key, principals=None), [ids[scope], ids[other]]
        )
        assert [c.r2r_document_id for c in own] == [ids[scope]] and foreign == []

    # the Nextcloud adapter's scopes, evaluated by R2R: a user principal, providers, sources
    assert [h.document_id for h in search(nextcloud, principals=("alice",))] == [DOC_ID]
    assert search(onyx, principals=("alice",)) == []  # nobody granted alice in Onyx's scope
    assert len(search(nextcloud, source_types=("files__default", "mail__mail"))) == 1
    assert search(nextcloud, source_types=("mail__mail",)) == []
    assert len(search(nextcloud, document_ids=(DOC_ID, "files__default: 7"))) == 1
    assert search(nextcloud, document_ids=("files__default: 7",)) == []
