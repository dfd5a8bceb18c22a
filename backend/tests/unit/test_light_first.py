"""Light documents first (issue 15): which documents are heavy, and the bounded wait."""

from __future__ import annotations

import threading
import time
import uuid

from onyx.r2r_sender.applier import ApplyTask
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.light_first import LightFirst, is_heavy, predicted_chunks

SETTINGS = BridgeSettings(heavy_chunks=10, heavy_principals=5, chunk_size=100, chunk_overlap=20)


def task(
    *,
    chunks: list[str] | None = None,
    text: str | None = None,
    labels: int = 1,
    deleted: bool = False,
    applied: str | None = None,
) -> ApplyTask:
    return ApplyTask(
        tenant_id="t",
        document_id="d",
        seq=1,
        desired_version=None if deleted else "v2",
        desired_deleted=deleted,
        desired_labels=[f"user:{i}" for i in range(labels)],
        applied_version=applied,
        applied_deleted=False,
        applied_r2r_id=uuid.uuid4() if applied else None,
        applied_collections=[],
        pending_r2r_ids=[],
        text=text,
        chunks=chunks,
        r2r_metadata={},
    )


def test_chunks_are_counted_when_the_bridge_chunked_and_estimated_from_text_otherwise() -> None:
    assert predicted_chunks(task(chunks=["a"] * 7), SETTINGS) == 7
    assert predicted_chunks(task(text="x" * 800), SETTINGS) == 10  # stride 80
    assert predicted_chunks(task(text="x" * 801), SETTINGS) == 11
    # a membership-only change and a delete send no chunks
    assert predicted_chunks(task(chunks=["a"] * 50, applied="v2"), SETTINGS) == 0
    assert predicted_chunks(task(chunks=["a"] * 50, deleted=True), SETTINGS) == 0


def test_heavy_means_more_chunks_or_more_principals_than_the_settings_allow() -> None:
    assert not is_heavy(task(chunks=["a"] * 10, labels=5), SETTINGS)
    assert is_heavy(task(chunks=["a"] * 11), SETTINGS)
    assert is_heavy(task(text="x" * 801), SETTINGS)
    assert is_heavy(task(chunks=["a"], labels=6), SETTINGS)
    assert is_heavy(task(chunks=["a"], labels=6, applied="v2"), SETTINGS)  # grants only
    assert not is_heavy(task(chunks=["a"] * 50, labels=50, deleted=True), SETTINGS)


def test_a_heavy_document_does_not_wait_when_nothing_light_is_in_flight() -> None:
    assert LightFirst().wait_turn(30.0) < 1.0


def test_a_heavy_document_waits_until_the_light_ones_are_done() -> None:
    gate = LightFirst()
    entered = threading.Event()
    release = threading.Event()
    finished: list[float] = []

    def light() -> None:
        gate.light_started()
        try:
            entered.set()
            release.wait(30)
            finished.append(time.monotonic())
        finally:
            gate.light_done()

    worker = threading.Thread(target=light)
    worker.start()
    assert entered.wait(10)
    assert gate.light_in_flight == 1
    waited: list[float] = []
    heavy = threading.Thread(target=lambda: waited.append(gate.wait_turn(30.0)))
    heavy.start()
    heavy.join(0.3)
    assert heavy.is_alive()  # still waiting: the light apply runs
    release.set()
    heavy.join(10)
    worker.join(10)
    assert not heavy.is_alive() and waited and waited[0] < 30.0
    assert gate.light_in_flight == 0
    assert finished


def test_the_wait_is_bounded_even_if_light_documents_keep_coming() -> None:
    gate = LightFirst()
    stop = threading.Event()

    def light() -> None:
        gate.light_started()
        try:
            stop.wait(30)
        finally:
            gate.light_done()

    worker = threading.Thread(target=light)
    worker.start()
    try:
        while not gate.light_in_flight:
            time.sleep(0.01)
        waited = gate.wait_turn(0.3)
        assert 0.3 <= waited < 10.0
        assert gate.light_in_flight == 1  # it went ahead beside the light apply
        assert gate.wait_turn(0.0) < 1.0  # a zero bound never waits
    finally:
        stop.set()
        worker.join(10)
