#!/usr/bin/env python3
"""Generate the bundled sample corpus of Onyx-shaped documents (deterministic).

    python3 scripts/sample_corpus.py [--docs 200] [--out samples/]

Writes ``initial.jsonl`` (the documents, with ACLs and document sets) and
``changes.jsonl`` (a second pass: content edits, ACL changes, deletes and a few
new documents).  The same seed always gives byte-identical files; the bench
and tests import :func:`make_corpus` for corpora of other sizes.
"""

from __future__ import annotations

import argparse
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

TOPICS = {
    "engineering": [
        "deployment",
        "kubernetes",
        "latency",
        "postgres",
        "index",
        "release",
        "oncall",
        "incident",
        "rollback",
        "cache",
    ],
    "sales": [
        "pipeline",
        "quota",
        "renewal",
        "discount",
        "prospect",
        "contract",
        "forecast",
        "territory",
        "pricing",
        "churn",
    ],
    "hr": [
        "onboarding",
        "benefits",
        "vacation",
        "payroll",
        "interview",
        "promotion",
        "handbook",
        "policy",
        "training",
        "review",
    ],
    "support": [
        "ticket",
        "escalation",
        "refund",
        "outage",
        "customer",
        "sla",
        "macro",
        "triage",
        "feedback",
        "bug",
    ],
}
FILLER = [
    "the",
    "team",
    "agreed",
    "that",
    "our",
    "next",
    "step",
    "is",
    "to",
    "review",
    "notes",
    "before",
    "friday",
    "with",
    "everyone",
    "involved",
    "and",
    "record",
    "decisions",
    "clearly",
]
USERS = ["alice@example.com", "bob@example.com", "carol@example.com", "dave@example.com"]
SOURCES = {
    "engineering": "confluence",
    "sales": "salesforce",
    "hr": "google_drive",
    "support": "zendesk",
}


def _paragraph(rng: random.Random, topic: str, words: int) -> str:
    vocab = TOPICS[topic]
    out = [rng.choice(vocab) if rng.random() < 0.35 else rng.choice(FILLER) for _ in range(words)]
    return " ".join(out).capitalize() + "."


def _acl(rng: random.Random, topic: str) -> list[str]:
    roll = rng.random()
    if roll < 0.35:
        return ["PUBLIC"]
    if roll < 0.75:
        return [f"group:{topic}"]
    if roll < 0.9:
        return [f"user_email:{rng.choice(USERS)}", f"group:{topic}"]
    return [f"user_email:{rng.choice(USERS)}"]


def make_document(rng: random.Random, index: int, *, prefix: str = "sample") -> dict:
    topic = rng.choice(sorted(TOPICS))
    doc_id = f"https://{SOURCES[topic]}.example.com/{prefix}/{index:05d}"
    sections = [
        {"text": _paragraph(rng, topic, rng.randint(40, 160)), "link": f"{doc_id}#s{s}"}
        for s in range(rng.randint(1, 4))
    ]
    updated = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 7000))
    return {
        "id": doc_id,
        "semantic_identifier": f"{topic.title()} note {index}: {rng.choice(TOPICS[topic])}",
        "source": SOURCES[topic],
        "sections": sections,
        "metadata": {"topic": topic, "tags": sorted(rng.sample(TOPICS[topic], 2))},
        "doc_updated_at": updated.isoformat(),
        "acl": _acl(rng, topic),
        "document_sets": [topic] if rng.random() < 0.5 else [],
    }


def make_corpus(count: int, *, seed: int = 20261120, prefix: str = "sample") -> list[dict]:
    """*count* Onyx-shaped documents (dicts), deterministic for a given seed."""
    rng = random.Random(seed)
    return [make_document(rng, i, prefix=prefix) for i in range(count)]


def make_changes(corpus: list[dict], *, seed: int = 7) -> list[dict]:
    """A second pass over *corpus*: edits, ACL changes, deletes and new documents."""
    rng = random.Random(seed)
    ids = list(range(len(corpus)))
    rng.shuffle(ids)
    n = max(1, len(corpus) // 10)
    edits, acl_changes, deletes = ids[:n], ids[n : n + n], ids[2 * n : 2 * n + n // 2]
    ops: list[dict] = []
    for i in edits:
        doc = json.loads(json.dumps(corpus[i]))
        doc["sections"][0]["text"] += " Updated: the owner revised this note."
        doc["doc_updated_at"] = "2026-11-20T12:00:00+00:00"
        ops.append(doc)
    for i in acl_changes:
        doc = corpus[i]
        new_acl = (
            ["PUBLIC"] if "PUBLIC" not in doc["acl"] else [f"user_email:{USERS[i % len(USERS)]}"]
        )
        ops.append({"op": "access", "id": doc["id"], "acl": new_acl})
    for i in deletes:
        ops.append({"op": "delete", "id": corpus[i]["id"]})
    new_rng = random.Random(seed + 1)
    for j in range(max(1, n // 2)):
        ops.append(make_document(new_rng, len(corpus) + j))
    return ops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "samples"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = make_corpus(args.docs)
    changes = make_changes(corpus)
    for name, rows in (("initial.jsonl", corpus), ("changes.jsonl", changes)):
        with open(out / name, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"wrote {len(corpus)} documents and {len(changes)} changes to {out}")


if __name__ == "__main__":
    main()
