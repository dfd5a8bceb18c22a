"""The mirror's worker on the same Redis database as Onyx's Celery (issue 17).

Onyx's broker uses ``sep=":"`` in its transport options; kombu's default separator is
another.  With both apps on one Redis database and the default control exchange, Onyx's
worker hello (mingle) and broadcasts reached the mirror's worker, whose control reply
failed (``ValueError: not enough values to unpack``), after which its consumer took no
task while it still reported ready.  Real Redis, a real Onyx-like Celery worker process
with mingle on, a real mirror worker process and R2R.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from engine_checks import onyx_doc, wait_settled
from fault_checks import run_cli
from redis import Redis
from stack_helpers import settings_env, wait_until

from onyx.r2r_integration.sender import R2RDocumentSender
from onyx.r2r_sender.celery_app import build_app
from onyx.r2r_sender.liveness import probe_consumer

pytestmark = pytest.mark.integration

TESTS_DIR = Path(__file__).resolve().parents[1]
# a Redis database of this test's own: broadcasts on the default control exchange of the
# shared database would reach other sessions' workers
PRIVATE_REDIS_DB = int(os.environ.get("ONYX_R2R_TEST_SHARED_BROKER_DB", "13"))


def _on_db(url: str, db: int) -> str:
    base, _, _ = url.rpartition("/")
    return f"{base}/{db}"


@pytest.fixture
def shared(settings):
    """The test's settings with the broker on the private Redis database."""
    return settings.with_overrides(broker_url=_on_db(settings.broker_url, PRIVATE_REDIS_DB))


def test_an_onyx_worker_on_the_same_redis_db_does_not_stall_the_mirror(
    shared, purge, workers, ledger, tenant_id, tmp_path
) -> None:
    purge.append(tenant_id)
    workers.settings = shared
    mirror = workers.start(concurrency=2, beat=True)
    # an Onyx worker starting on the same database sends its hello to every worker there
    request_onyx_worker = _OnyxLike(shared.broker_url, tmp_path)
    try:
        # and Onyx's broadcasts (inspect, ping) reach it too
        _onyx_app(shared.broker_url).control.ping(timeout=2.0)
        sender = R2RDocumentSender(tenant_id=tenant_id, settings=shared)
        sender.send_batch(
            [onyx_doc(f"shared-{i}", f"shared broker note {i}", acl=["PUBLIC"]) for i in range(2)]
        )
        rows = wait_settled(ledger, tenant_id, 60, expect=["shared-0", "shared-1"])
        assert {r["status"] for r in rows.values()} == {"synced"}, rows
        assert "not enough values to unpack" not in mirror.log(), mirror.log()[-3000:]
        # the liveness check goes through the queue the stall blocked
        probe = probe_consumer(build_app(shared), Redis.from_url(shared.broker_url), shared)
        assert probe.alive, probe.detail
    finally:
        request_onyx_worker.stop()
        workers.stop_all()
        redis = Redis.from_url(shared.broker_url)
        for key in redis.scan_iter(match=f"*{shared.queue}*"):  # queue, bindings, doorbells
            redis.delete(key)


def test_status_and_health_tell_a_stalled_consumer(settings, workers, tmp_path) -> None:
    """A worker process that is alive but takes no task (SIGSTOP stands in for the stalled
    consumer) is reported by ``onyx-r2r status`` and fails ``health --consumer-timeout``."""
    env = settings_env(settings)
    worker = workers.start(concurrency=1, beat=False)
    status = run_cli(["status", "--json", "--consumer-timeout", "20"], env, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    consumer = json.loads(status.stdout)["consumer"]
    assert consumer["alive"] is True and consumer["round_trip_seconds"] < 20, consumer
    healthy = run_cli(["health", "--skip-r2r", "--consumer-timeout", "20"], env, cwd=tmp_path)
    assert healthy.returncode == 0 and "healthy" in healthy.stdout, healthy.stdout
    worker.proc.send_signal(signal.SIGSTOP)
    try:
        text = run_cli(["status", "--consumer-timeout", "3"], env, cwd=tmp_path)
        assert text.returncode == 0, text.stderr
        assert f"workers on queue {settings.queue}: NOT " in text.stdout, text.stdout
        assert "no worker ran a ping" in text.stdout and "stalled" in text.stdout
        sick = run_cli(["health", "--skip-r2r", "--consumer-timeout", "3"], env, cwd=tmp_path)
        assert sick.returncode == 1 and "consumer: no worker ran a ping" in sick.stdout, sick.stdout
    finally:
        worker.proc.send_signal(signal.SIGCONT)
    for output in (status, healthy, text, sick):
        assert settings.r2r_password.get() not in output.stdout + output.stderr


def _onyx_app(broker_url: str):
    """A client app with Onyx's transport options (what Onyx's API server sends with)."""
    from celery import Celery

    app = Celery("onyx_like_client", broker=broker_url, set_as_current=False)
    app.conf.broker_transport_options = {
        "priority_steps": list(range(4)),
        "sep": ":",
        "queue_order_strategy": "priority",
    }
    return app


class _OnyxLike:
    """A real Celery worker process configured like Onyx's, mingle and remote control on."""

    def __init__(self, broker_url: str, tmp_path: Path) -> None:
        self.broker_url = broker_url
        self.queue = f"onyx_like_{uuid.uuid4().hex[:8]}"
        log = tmp_path / "onyx_like.log"
        env = {
            **os.environ,
            "ONYX_LIKE_BROKER_URL": broker_url,
            "ONYX_LIKE_QUEUE": self.queue,
            "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]),
            "PYTHONUNBUFFERED": "1",
        }
        cmd = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "onyx_like_celery",
            "worker",
            "--pool",
            "solo",
            "-Q",
            self.queue,
            "--loglevel",
            "INFO",
            "--hostname",
            f"{self.queue}@%h",
        ]
        with open(log, "w") as handle:
            self.proc = subprocess.Popen(
                cmd, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
            )
        try:
            wait_until(
                lambda: " ready." in log.read_text() or self.proc.poll() is not None,
                60,
                what="onyx-like worker ready",
            )
            assert self.proc.poll() is None, log.read_text()[-3000:]
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        Redis.from_url(self.broker_url).delete(self.queue)
