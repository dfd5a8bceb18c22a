"""A ``BackfillSource`` factory for the worker-task test: documents from a JSONL file.

The worker process finds it through ``ONYX_R2R_BACKFILL_SOURCE=backfill_fixture_source:build_source``
(with this directory on ``PYTHONPATH``); the file is named by ``ONYX_R2R_TEST_BACKFILL_JSONL``.
"""

from __future__ import annotations

import os

from onyx.r2r_sender.backfill import StaticBackfillSource


def build_source(tenant_id: str) -> StaticBackfillSource:
    return StaticBackfillSource.from_jsonl(os.environ["ONYX_R2R_TEST_BACKFILL_JSONL"])


def tenants() -> list[str]:
    return [t for t in os.environ.get("ONYX_R2R_TEST_BACKFILL_TENANTS", "").split(",") if t]
