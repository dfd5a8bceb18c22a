"""One batch full of bad input, through a real worker process into a real R2R.

Good documents must arrive with the right (normalised) text; bad ones must be
reported in ``rejected`` *and* dead-lettered as ``invalid_document`` with a
reason naming them; the worker must survive without a traceback; nothing else
in the batch may be lost.
"""

from __future__ import annotations

import random

import pytest
from engine_checks import (
    by_source,
    label_collections,
    onyx_doc,
    states,
    tenant_documents,
    wait_synced,
)

from onyx.r2r_sender.hosts import onyx_collection_name as collection_name
from onyx.r2r_sender.ids import r2r_version_id

pytestmark = pytest.mark.integration


# ------------------------------------------------------------------ fixtures


BIG_TIMEOUT = 1200.0  # 3000 collections are created one by one; R2R may be shared
FIVE_MB = 5 * 1024 * 1024


def _huge_text() -> str:
    rng = random.Random(7)
    words = ["granite", "harbor", "meadow", "copper", "lantern", "violet", "summit", "ember"]
    lines, size, i = [], 0, 0
    while size < FIVE_MB:
        line = f"line {i}: " + " ".join(rng.choice(words) for _ in range(12)) + ".\n"
        lines.append(line)
        size += len(line)
        i += 1
    return "".join(lines)


@pytest.mark.timeout(1800)
def test_one_bad_batch_loses_nothing_good(
    settings, purge, ledger, tenant_id, workers, make_sender, r2r
):
    purge.append(tenant_id)
    huge = _huge_text()
    assert len(huge.encode("utf-8")) >= FIVE_MB
    acl3000 = [f"user_email:user{i:04d}@bulk.example.com" for i in range(3000)]
    invalid_utf8 = b"caf\xe9 au lait \xff end"
    surrogates = invalid_utf8.decode("utf-8", "surrogateescape")
    replaced = "caf\ufffd au lait \ufffd end"

    missing_id = onyx_doc("placeholder", "a document without an id")
    del missing_id["id"]
    sections_str = onyx_doc("sections-str", "x")
    sections_str["sections"] = "just a string, not a list of sections"

    # good documents: id -> (Onyx-shaped dict, the text R2R must hold, the title it must hold)
    good = {
        "00-huge": (onyx_doc("00-huge", huge, acl=["PUBLIC"]), None, "Doc 00-huge"),
        "empty-with-title": (
            onyx_doc("empty-with-title", "", title="Only A Title Here", acl=["PUBLIC"]),
            "Only A Title Here",
            "Only A Title Here",
        ),
        "nul": (
            onyx_doc("nul", "nul\x00 in\x00 text", title="Ti\x00tle", acl=["PUBLIC"]),
            "nul in text",
            "Title",
        ),
        "dup": (onyx_doc("dup", "second copy of dup", acl=["PUBLIC"]), "second copy of dup", None),
        "utf8-bytes": (
            onyx_doc("utf8-bytes", invalid_utf8, title=b"T\xe9itle", acl=["PUBLIC"]),
            replaced,
            "T\ufffditle",
        ),
        "utf8-surrogates": (
            onyx_doc(
                "utf8-surrogates",
                surrogates,
                title=b"T\xe9itle".decode("utf-8", "surrogateescape"),
                metadata={"note": surrogates},
                acl=["PUBLIC"],
            ),
            replaced,
            "T\ufffditle",
        ),
        "plain-1": (onyx_doc("plain-1", "an ordinary document", acl=["PUBLIC"]), None, None),
        "plain-2": (
            onyx_doc("plain-2", "another ordinary one", acl=["group:eng"], metadata={"k": "v"}),
            None,
            None,
        ),
        "zz-acl3000": (onyx_doc("zz-acl3000", "bulk acl document", acl=acl3000), None, None),
    }
    # bad documents: (Onyx-shaped dict, the id the rejection names, a fragment of the reason)
    bad = [
        (onyx_doc("empty-no-title", "", semantic_identifier=""), "empty-no-title", "no text"),
        (onyx_doc("meta-dict", "x", metadata={"k_dict": {"a": 1}}), "meta-dict", "'k_dict'"),
        (onyx_doc("meta-numlist", "x", metadata={"k_nums": [1, 2]}), "meta-numlist", "'k_nums'"),
        (onyx_doc("meta-object", "x", metadata={"k_obj": object()}), "meta-object", "'k_obj'"),
        (onyx_doc(12345, "an integer id"), "12345", "document id must be a non-empty string"),
        (missing_id, None, "document id must be a non-empty string"),
        (sections_str, "sections-str", "sections must be a list"),
    ]
    batch = [onyx_doc("dup", "first copy of dup", acl=["PUBLIC"])]
    goods = [doc for doc, _, _ in good.values()]
    for i, doc in enumerate(goods):  # interleave good and bad
        batch.append(doc)
        if i < len(bad):
            batch.append(bad[i][0])

    worker = workers.start(concurrency=8)
    report = make_sender(tenant_id).send_batch(batch)

    # the sender's report: every good one accepted, every bad one rejected with a reason
    assert sorted(report.changed) == sorted(good)
    assert report.superseded == 1
    rejected = {r.document_id: r.reason for r in report.rejected}
    assert len(report.rejected) == len(bad)
    for _, doc_id, fragment in bad:
        if doc_id is None:  # no id at all: reported, named as best the sender can
            (doc_id,) = set(rejected) - {d for _, d, _ in bad if d is not None}
        assert doc_id in rejected, (doc_id, rejected)
        assert fragment in rejected[doc_id], (doc_id, rejected[doc_id])

    # every bad one is dead-lettered as invalid_document, the reason naming the problem
    dead = {d.document_id: d for d in ledger.dead_letters(tenant_id, limit=1000)}
    assert set(dead) == set(rejected)
    for doc_id, reason in rejected.items():
        assert dead[doc_id].error_class == "invalid_document"
        # the dead letter's reason names the document (issue 15): operators read it alone
        assert dead[doc_id].error == f"document {doc_id!r}: {reason}"
    for key, doc_id in (
        ("k_dict", "meta-dict"),
        ("k_nums", "meta-numlist"),
        ("k_obj", "meta-object"),
    ):
        # the reason names the key; the rejection and the dead letter name the document
        assert [d for d, r in rejected.items() if f"'{key}'" in r] == [doc_id]

    rows = wait_synced(ledger, tenant_id, sorted(good), BIG_TIMEOUT)
    assert worker.alive()
    log = worker.log()
    assert "Traceback" not in log, log[-3000:]
    # dead letters stayed dead and nothing else appeared in the ledger
    all_rows = states(ledger, tenant_id)
    assert set(all_rows) == set(good) | set(rejected)
    assert {d for d, r in all_rows.items() if r["status"] == "dead"} == set(rejected)

    grouped = by_source(tenant_documents(r2r, ledger, tenant_id))
    assert set(grouped) == set(good)
    for doc_id, (doc, want_text, want_title) in good.items():
        (held,) = grouped[doc_id]
        assert held.id == r2r_version_id(tenant_id, doc_id, rows[doc_id]["desired_version"])
        assert held.ingestion_status == "success"
        if doc_id in ("00-huge", "zz-acl3000"):
            continue
        chunks = r2r.list_document_chunks(held.id)
        assert len(chunks) == 1, doc_id
        expected = want_text if want_text is not None else doc["sections"][0]["text"]
        assert chunks[0].text == expected, doc_id
        assert "\x00" not in chunks[0].text
        if want_title is not None:
            assert held.metadata["title"] == want_title
            assert chunks[0].metadata["title"] == want_title
    assert grouped["utf8-surrogates"][0].metadata["source_metadata"]["note"] == replaced

    # the 5 MB document: all of it, in thousands of chunks
    (big,) = grouped["00-huge"]
    big_chunks = r2r.list_document_chunks(big.id)
    assert len(big_chunks) > 1000
    stored = sum(len(c.text) for c in big_chunks)
    assert stored >= len(huge)  # chunks overlap, so at least the whole text
    texts = {c.text for c in big_chunks}
    assert any(t.startswith("line 0: ") for t in texts)
    last_line = huge.rstrip("\n").rsplit("\n", 1)[-1]
    assert any(last_line in t for t in texts)

    # the 3000-principal document: in all 3000 ACL collections (and no other)
    (bulk,) = grouped["zz-acl3000"]
    want = label_collections(ledger, tenant_id, [f"acl:{p}" for p in acl3000])
    assert len(want) == 3000
    assert set(r2r.get_document(bulk.id).collection_ids) == want
    assert {c.id for c in r2r.list_document_collections(bulk.id)} == want
    assert set(rows["zz-acl3000"]["applied_collections"]) == want
    for principal in (acl3000[0], acl3000[1500], acl3000[-1]):
        found = r2r.get_collection_by_name(collection_name(tenant_id, f"acl:{principal}"))
        assert found is not None and found.id in want
    assert set(grouped["plain-2"][0].collection_ids) == label_collections(
        ledger, tenant_id, ["acl:group:eng"]
    )
