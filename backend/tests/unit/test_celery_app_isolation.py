"""Every app that publishes to the mirror's queue uses the same key prefix and exchanges
(issue 17): the worker's, the hosts' (``host_app``) and the admin API's."""

from __future__ import annotations

from onyx.r2r_sender.celery_app import (
    BROKER_KEY_PREFIX,
    CONTROL_EXCHANGE,
    EVENT_EXCHANGE,
    build_app,
    queue_key,
)
from onyx.r2r_sender.config import BridgeSettings
from onyx.r2r_sender.plumbing import host_app

SETTINGS = BridgeSettings(broker_url="redis://127.0.0.1:9/3", queue="q_isolation_test")


def _isolated(app) -> None:
    assert app.conf.broker_transport_options["global_keyprefix"] == BROKER_KEY_PREFIX
    assert app.conf.control_exchange == CONTROL_EXCHANGE != "celery"
    assert app.conf.event_exchange == EVENT_EXCHANGE


def test_the_worker_app_keeps_to_itself() -> None:
    _isolated(build_app(SETTINGS))
    assert queue_key("r2r_mirror") == "onyx_r2r:celery:r2r_mirror"


def test_the_hosts_app_publishes_where_the_worker_consumes() -> None:
    app = host_app(SETTINGS)
    _isolated(app)
    options = app.conf.broker_transport_options
    assert options["socket_connect_timeout"] > 0 and options["socket_timeout"] > 0
