"""deployment/: compose overlay, images, R2R config, Helm (no Docker engine, no cluster).

``scripts/deployment_check`` validates everything with real tools (Docker Compose,
Helm, hadolint, shellcheck, Kubernetes schemas) and leaves its rendered output in
``.stack/deploy-check``; the tests below run it once and then assert on what it rendered
and on the source files: settings documented, queue names, identical embedding sections,
no literal secrets, one pinned version everywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = REPO_ROOT / "deployment"
OUT = Path(os.environ.get("DEPLOY_CHECK_OUT", REPO_ROOT / ".stack" / "deploy-check"))
OVERLAY = DEPLOYMENT / "docker_compose" / "docker-compose.r2r.yml"
ENV_TEMPLATE = DEPLOYMENT / "docker_compose" / "env.r2r.template"
R2R_TOML = DEPLOYMENT / "r2r" / "r2r.toml"
CHART = DEPLOYMENT / "helm" / "charts" / "onyx-r2r"
ONYX_VALUES = DEPLOYMENT / "helm" / "onyx-values.r2r.yaml"

ONYX_VERSION = "nightly-latest-20260822"
QUEUE = "r2r_mirror"
# Settings the Onyx integration (issue 4: patched factory / docfetching) reads.
INTEGRATION_SETTINGS = ("ONYX_EXPORT_R2R", "R2R_EXPORT_MODE", "ONYX_INDEX_BACKEND")
# Variables the overlay interpolates that belong to Onyx's own .env (documented by Onyx).
ONYX_OWN_VARIABLES = {"REDIS_HOST", "REDIS_PASSWORD"}


# ------------------------------------------------------------------ the check itself
@cache
def deployment_check() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO_ROOT / "scripts" / "deployment_check")],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO_ROOT,
    )


@pytest.fixture(scope="module")
def summary() -> dict[str, Any]:
    proc = deployment_check()
    path = OUT / "summary.json"
    assert path.exists(), (
        f"scripts/deployment_check wrote no summary:\n{proc.stdout}\n{proc.stderr}"
    )
    return json.loads(path.read_text())


def rendered(name: str) -> Any:
    path = OUT / name
    if not path.exists():
        pytest.skip(f"{name} was not rendered (see .stack/deploy-check/summary.json)")
    return json.loads(path.read_text())


def test_deployment_check_passes(summary: dict[str, Any]) -> None:
    proc = deployment_check()
    assert proc.returncode == 0, f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    statuses = {name: check["status"] for name, check in summary["checks"].items()}
    assert set(statuses) == {
        "compose",
        "r2r-config",
        "r2r-patches",
        "helm",
        "nextcloud",
        "dockerfiles",
        "shell",
        "grafana",
    }
    assert "failed" not in statuses.values(), summary


# ------------------------------------------------------------------ settings documented
_ENV_READ = re.compile(
    r"""(?:environ\.get|environ\[|getenv|_env_[a-z]+)\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)
_ENV_CONSTANT = re.compile(
    r"""^\s*[A-Z_]*_ENV\s*(?::\s*str\s*)?=\s*["']([A-Z][A-Z0-9_]+)["']""", re.M
)
# any literal that is exactly a bridge setting name (helpers like _float("ONYX_R2R_..."))
_BRIDGE_LITERAL = re.compile(r"""["']((?:ONYX_R2R|R2R)_[A-Z0-9_]+)["']""")


def settings_read_by_code() -> dict[str, str]:
    """Every environment variable the shipped Python code reads -> where."""
    found: dict[str, str] = {}
    for path in sorted((REPO_ROOT / "backend" / "onyx").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        names = _ENV_READ.findall(text) + _ENV_CONSTANT.findall(text)
        for name in names + _BRIDGE_LITERAL.findall(text):
            found.setdefault(name, str(path.relative_to(REPO_ROOT)))
    return found


def documented_settings() -> set[str]:
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", ENV_TEMPLATE.read_text(), re.M))


def test_env_template_documents_every_setting_the_code_reads() -> None:
    read = settings_read_by_code()
    assert {"R2R_BASE_URL", "R2R_EMAIL", "ONYX_R2R_DATABASE_URL"} <= set(read), read
    missing = {name: where for name, where in read.items() if name not in documented_settings()}
    assert not missing, f"add these to {ENV_TEMPLATE.relative_to(REPO_ROOT)}: {missing}"
    for name in INTEGRATION_SETTINGS:
        assert name in documented_settings()


def test_every_overlay_variable_is_documented() -> None:
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", OVERLAY.read_text()))
    undocumented = used - documented_settings() - ONYX_OWN_VARIABLES
    assert not undocumented, f"document in env.r2r.template: {sorted(undocumented)}"


# ------------------------------------------------------------------ compose
def test_compose_worker_consumes_r2r_mirror_with_a_health_check(summary: dict[str, Any]) -> None:
    services = rendered("compose.json")["services"]
    worker = services["r2r_mirror_worker"]
    assert worker["command"][:2] == ["onyx-r2r", "worker"]
    assert "--beat" not in worker["command"]
    assert worker["environment"]["ONYX_R2R_QUEUE"] == QUEUE
    assert "inspect ping" in " ".join(worker["healthcheck"]["test"])
    assert worker["depends_on"]["r2r_mirror_migrate"]["condition"] == (
        "service_completed_successfully"
    )
    # Onyx's environment (it runs Onyx's backfill source), like Onyx's background service
    if summary["onyx_files_available"]:
        onyx_env = services["background"]["environment"]
        for key in ("POSTGRES_HOST", "OPENSEARCH_HOST", "REDIS_HOST"):
            assert worker["environment"][key] == onyx_env[key], key
    assert worker["environment"]["ONYX_R2R_BACKFILL_SOURCE"].endswith(":build_source")
    assert services["r2r_mirror_migrate"]["command"] == ["onyx-r2r", "migrate"]
    # exactly one beat, in its own service
    beats = [name for name, svc in services.items() if "beat" in (svc.get("command") or [])]
    assert beats == ["r2r_mirror_beat"]
    assert services["r2r_mirror_beat"]["deploy"]["replicas"] == 1


def test_compose_sets_the_r2r_settings_on_onyx_services(summary: dict[str, Any]) -> None:
    services = rendered("compose.json")["services"]
    for name in ("api_server", "background"):
        env = services[name]["environment"]
        for key in (*INTEGRATION_SETTINGS, "R2R_BASE_URL", "R2R_EMAIL", "R2R_PASSWORD"):
            assert key in env, (name, key)
        assert env["ONYX_R2R_QUEUE"] == QUEUE
        assert env["ONYX_R2R_BROKER_URL"].endswith("/13"), "Onyx uses Redis db 0, 14, 15"
        assert env["R2R_EXPORT_MODE"] == "mirror"
        assert services[name]["image"].startswith("localhost/onyx-r2r/onyx-backend:")
        assert services[name]["build"]["target"] == "onyx-backend-r2r"
    assert services["web_server"]["image"].startswith("localhost/onyx-r2r/onyx-web-server:")
    # SciPhi's R2R with deployment/r2r/patches, built from this repository
    assert services["r2r"]["image"] == f"localhost/onyx-r2r/r2r:3.6.6-r2r{bridge_version()}"
    assert services["r2r"]["build"]["dockerfile"] == "deployment/r2r/Dockerfile"
    assert services["r2r"]["build"]["context"] == str(REPO_ROOT)
    assert services["r2r_postgres"]["image"] == "pgvector/pgvector:0.8.0-pg16"
    r2r_env = services["r2r"]["environment"]
    assert r2r_env["R2R_ADMIN_EMAIL"] == services["api_server"]["environment"]["R2R_EMAIL"]
    assert len(r2r_env["R2R_SECRET_KEY"]) >= 32


def test_the_callers_environment_changes_nothing_compose_renders(tmp_path: Path) -> None:
    """Compose lets the shell's variables win over the env file; a developer's shell after
    ``eval "$(scripts/stack env)"`` (its broker URL on Redis db 15) or with a secret of its
    own must not change what the check renders or let the fail-closed checks pass."""
    polluted = {
        **os.environ,
        "DEPLOY_CHECK_OUT": str(tmp_path),
        "ONYX_R2R_BROKER_URL": "redis://127.0.0.1:6379/15",
        "R2R_SECRET_KEY": "a-secret-from-the-callers-shell-0123456789",
    }
    proc = subprocess.run(
        [str(REPO_ROOT / "scripts" / "deployment_check")],
        capture_output=True,
        text=True,
        timeout=1200,
        cwd=REPO_ROOT,
        env=polluted,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["checks"]["compose"]["status"] == "passed", (summary, proc.stderr[-2000:])
    assert summary["checks"]["nextcloud"]["status"] == "passed", summary
    services = json.loads((tmp_path / "compose.json").read_text())["services"]
    assert services["api_server"]["environment"]["ONYX_R2R_BROKER_URL"].endswith("/13")
    assert "callers-shell" not in (tmp_path / "compose.json").read_text()


def test_compose_overlay_also_fits_onyx_production_file(summary: dict[str, Any]) -> None:
    if not summary["onyx_files_available"]:
        pytest.skip("Onyx's compose files unavailable (ONYX_SOURCE_DIR / ONYX_GIT_DIR)")
    services = rendered("compose-prod.json")["services"]
    assert services["r2r_mirror_worker"]["environment"]["ONYX_R2R_QUEUE"] == QUEUE


# ------------------------------------------------------------------ R2R config
def test_r2r_toml_is_production_ready() -> None:
    config = tomllib.loads(R2R_TOML.read_text())
    assert config["embedding"] == config["completion_embedding"]
    assert config["auth"]["require_authentication"] is True
    assert config["auth"]["default_admin_password"] == "@R2R_ADMIN_PASSWORD@"
    assert config["auth"]["default_admin_email"] == "@R2R_ADMIN_EMAIL@"
    assert config["ingestion"]["skip_document_summary"] is True
    assert config["ingestion"]["automatic_extraction"] is False
    assert config["orchestration"]["provider"] == "simple"
    assert "project_name" not in config["app"], "would override R2R_PROJECT_NAME"
    assert "secret_key" not in config.get("crypto", {}), "R2R_SECRET_KEY comes from the env"
    assert config["app"]["default_max_collections_per_user"] >= 1_000_000
    assert config["app"]["default_max_documents_per_user"] >= 10_000_000


def test_rendered_r2r_toml_keeps_the_settings(summary: dict[str, Any]) -> None:
    path = OUT / "r2r.rendered.toml"
    if not path.exists():
        pytest.skip("render_config.py did not run")
    config = tomllib.loads(path.read_text())
    assert "@" not in config["auth"]["default_admin_password"]
    source = tomllib.loads(R2R_TOML.read_text())
    for section in ("embedding", "completion_embedding", "ingestion", "orchestration", "app"):
        assert config[section] == source[section]


# ------------------------------------------------------------------ Helm
def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container_env(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_helm_worker_beat_and_secrets(summary: dict[str, Any]) -> None:
    docs = rendered("helm-ct.json")
    deployments = by_kind(docs, "Deployment")
    worker = deployments["onyx-r2r-mirror-worker"]["spec"]["template"]["spec"]
    (container,) = worker["containers"]
    assert container["command"][:2] == ["onyx-r2r", "worker"]
    assert "--beat" not in container["command"]
    assert "inspect ping" in " ".join(container["livenessProbe"]["exec"]["command"])
    assert worker["initContainers"][0]["command"][-1].count("onyx-r2r migrate") == 1
    config = by_kind(docs, "ConfigMap")["onyx-r2r-mirror-env"]["data"]
    assert config["ONYX_R2R_QUEUE"] == QUEUE
    assert config["R2R_BASE_URL"] == "http://onyx-r2r-server:7272"
    beat = deployments["onyx-r2r-mirror-beat"]
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"]["type"] == "Recreate"
    assert "beat" in beat["spec"]["template"]["spec"]["containers"][0]["command"]
    # every key of our Secret a pod references exists in it
    secret = by_kind(docs, "Secret")["onyx-r2r"]["stringData"]
    for deployment in deployments.values():
        spec = deployment["spec"]["template"]["spec"]
        for c in spec["containers"] + spec.get("initContainers", []):
            for value in container_env(c).values():
                ref = value.get("secretKeyRef") if isinstance(value, dict) else None
                if ref and ref["name"] == "onyx-r2r":
                    assert ref["key"] in secret, ref
    # the worker runs Onyx's backfill source: Onyx's environment, like Onyx's workers
    (worker_container,) = worker["containers"]
    sources = [e["configMapRef"]["name"] for e in worker_container["envFrom"]]
    assert sources == ["env-configmap", "onyx-r2r-mirror-env"]
    assert "POSTGRES_PASSWORD" in container_env(worker_container)
    assert config["ONYX_R2R_BACKFILL_SOURCE"].startswith("onyx.background.celery.tasks.r2r_mirror")
    assert secret["broker_url"].endswith(":6379/13")
    assert secret["ledger_database_url"].startswith("postgresql+psycopg2://")


def test_helm_metrics_are_off_by_default(summary: dict[str, Any]) -> None:
    docs = rendered("helm-ct.json")
    worker = by_kind(docs, "Deployment")["onyx-r2r-mirror-worker"]["spec"]["template"]
    (container,) = worker["spec"]["containers"]
    assert "ONYX_R2R_METRICS_PORT" not in container_env(container)
    assert "ports" not in container
    assert not any(k.startswith("prometheus.io/") for k in worker["metadata"]["annotations"])
    assert "onyx-r2r-mirror-metrics" not in by_kind(docs, "Service")
    assert not by_kind(docs, "ServiceMonitor")


def test_helm_metrics_port_annotations_and_service_monitor(summary: dict[str, Any]) -> None:
    docs = rendered("helm-metrics.json")
    worker = by_kind(docs, "Deployment")["onyx-r2r-mirror-worker"]["spec"]["template"]
    (container,) = worker["spec"]["containers"]
    env = container_env(container)
    assert env["ONYX_R2R_METRICS_PORT"] == "9464"
    assert env["ONYX_R2R_METRICS_ADDRESS"] == "0.0.0.0"  # reachable from Prometheus
    assert container["ports"] == [{"name": "metrics", "containerPort": 9464, "protocol": "TCP"}]
    annotations = worker["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9464"
    assert annotations["prometheus.io/path"] == "/metrics"
    service = by_kind(docs, "Service")["onyx-r2r-mirror-metrics"]
    assert service["spec"]["clusterIP"] == "None"  # one target per worker pod
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    # the Service selects exactly the worker pods (not R2R's, not the beat's)
    assert service["spec"]["selector"].items() <= worker["metadata"]["labels"].items()
    beat_labels = by_kind(docs, "Deployment")["onyx-r2r-mirror-beat"]["spec"]["template"][
        "metadata"
    ]["labels"]
    assert not service["spec"]["selector"].items() <= beat_labels.items()
    (monitor,) = by_kind(docs, "ServiceMonitor").values()
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert monitor["spec"]["endpoints"] == [
        {"port": "metrics", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}
    ]
    # the chart's values document the block, off by default
    values = (CHART / "values.yaml").read_text()
    assert re.search(r"^metrics:\n(?:  #.*\n)*  enabled: false$", values, re.M), "metrics on?"
    assert re.search(r"^  serviceMonitor:\n(?:    #.*\n)*    enabled: false$", values, re.M)


GRAFANA = DEPLOYMENT / "grafana" / "onyx-r2r-dashboard.json"


def test_grafana_dashboard_queries_only_metrics_the_engine_defines() -> None:
    """Every metric a dashboard query names exists: the engine's counters and histograms
    (as exposed, with ``_total``/``_bucket``/``_count``/``_sum``) and its state gauges."""
    import sys

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "lib"))
    from check_dashboard import metric_names, panels_of, problems
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from onyx.r2r_sender.prometheus_metrics import (
        BreakerCollector,
        EngineMetrics,
        LedgerCollector,
    )

    class Breaker:
        def state(self) -> Any:
            return type("S", (), {"state": "open", "consecutive_failures": 1})()

    registry = CollectorRegistry()
    metrics = EngineMetrics(registry)
    metrics.request_duration.labels("POST", "/v3/documents", "2xx").observe(0.1)
    for counter in (metrics.applied_documents, metrics.writes):
        counter.labels("t", "create").inc()
    for counter in (metrics.errors, metrics.dead_letters):
        counter.labels("t", "internal").inc()
    metrics.breaker_openings.labels("http://r2r").inc()
    metrics.doorbell_rings.labels("sent").inc()
    metrics.claim_duration.observe(0.01)
    metrics.drain_duration.observe(1)
    row = {"tenant_id": "t", "pending": 1, "oldest_pending_seconds": 3.0}
    registry.register(LedgerCollector(lambda: [row], lambda: [("t", "internal", 1)]))
    registry.register(BreakerCollector(lambda: [("http://r2r", Breaker())]))
    exposed = {
        sample.name
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for sample in family.samples
    }
    dashboard = json.loads(GRAFANA.read_text())
    assert problems(dashboard) == []
    used = set().union(
        *(metric_names(t["expr"]) for p in panels_of(dashboard) for t in p.get("targets", []))
    )
    assert used, "the dashboard queries nothing"
    assert used <= exposed, sorted(used - exposed)
    titles = " ".join(p["title"].lower() for p in panels_of(dashboard))
    for topic in ("backlog", "lag", "throughput", "errors", "breaker"):
        assert topic in titles


def test_dashboard_checker_names_what_is_wrong() -> None:
    import sys

    sys.path.insert(0, str(REPO_ROOT / "scripts" / "lib"))
    from check_dashboard import problems

    broken = {
        "uid": "x",
        "title": "x",
        "schemaVersion": 39,
        "templating": {"list": [{"name": "datasource"}]},
        "panels": [
            {
                "id": 1,
                "type": "timeseries",
                "title": "Backlog",
                "datasource": {"uid": "p"},
                "targets": [{"expr": "sum(up"}],
            },
            {"id": 1, "type": "timeseries", "title": "Lag", "targets": []},
        ],
    }
    found = " | ".join(problems(broken))
    for expected in (
        "repeated",
        "no panel about throughput",
        "no panel about breaker",
        "no $tenant variable",
        "'Backlog' does not use ${datasource}",
        "names no onyx_r2r_ metric",
        "unbalanced",
        "'Lag' has no query",
    ):
        assert expected in found, (expected, found)


def test_helm_runs_the_patched_r2r_image(summary: dict[str, Any]) -> None:
    docs = rendered("helm-ct.json")
    spec = by_kind(docs, "Deployment")["onyx-r2r-server"]["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    assert container["image"] == f"registry.example.com/onyx-r2r/r2r:3.6.6-r2r{bridge_version()}"
    assert "r2r.image.repository is required" in (CHART / "templates" / "_helpers.tpl").read_text()


def test_helm_r2r_config_is_deployment_r2r_toml_byte_for_byte(summary: dict[str, Any]) -> None:
    docs = rendered("helm-ct.json")
    data = by_kind(docs, "ConfigMap")["onyx-r2r-r2r-config"]["data"]
    assert data["r2r.toml"] == R2R_TOML.read_text()
    assert data["render_config.py"] == (DEPLOYMENT / "r2r" / "render_config.py").read_text()


def test_helm_keda_scales_the_worker_on_its_queue(summary: dict[str, Any]) -> None:
    docs = rendered("helm-keda.json")
    assert not by_kind(docs, "HorizontalPodAutoscaler")
    (scaled,) = by_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] == "onyx-r2r-mirror-worker"
    deployment = by_kind(docs, "Deployment")["onyx-r2r-mirror-worker"]
    assert "replicas" not in deployment["spec"], "KEDA owns the replica count"
    triggers = {t["type"]: t for t in scaled["spec"]["triggers"]}
    assert triggers["redis"]["metadata"]["listName"] == QUEUE
    assert triggers["redis"]["metadata"]["databaseIndex"] == "13"
    assert "r2r_bridge.document_state" in triggers["postgresql"]["metadata"]["query"]
    auths = by_kind(docs, "TriggerAuthentication")
    for trigger in triggers.values():
        assert trigger["authenticationRef"]["name"] in auths
        assert all(isinstance(v, str) for v in trigger["metadata"].values())
    # existingSecret: the chart creates no Secret and every pod references the given one
    assert not by_kind(docs, "Secret")
    assert not by_kind(docs, "StatefulSet"), "external PostgreSQL"


def test_helm_hpa_mode(summary: dict[str, Any]) -> None:
    docs = rendered("helm-hpa.json")
    (hpa,) = by_kind(docs, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"]["name"] == "onyx-r2r-mirror-worker"
    assert not by_kind(docs, "ScaledObject")
    assert "onyx-r2r-mirror-beat" not in by_kind(docs, "Deployment")


def test_onyx_chart_with_the_overlay(summary: dict[str, Any]) -> None:
    if not summary["onyx_files_available"]:
        pytest.skip("Onyx's chart unavailable (ONYX_SOURCE_DIR / ONYX_GIT_DIR)")
    docs = rendered("onyx-helm.json")
    our_secret_keys = set(by_kind(rendered("helm-ct.json"), "Secret")["onyx-r2r"]["stringData"])
    backend_pods = 0
    for deployment in by_kind(docs, "Deployment").values():
        for c in deployment["spec"]["template"]["spec"]["containers"]:
            if "onyx-backend" not in c["image"]:
                continue
            backend_pods += 1
            assert c["image"] == (
                f"registry.example.com/onyx-r2r/onyx-backend:{ONYX_VERSION}-r2r{bridge_version()}"
            )
            env = container_env(c)
            for name in (
                "R2R_EMAIL",
                "R2R_PASSWORD",
                "ONYX_R2R_DATABASE_URL",
                "ONYX_R2R_BROKER_URL",
            ):
                ref = env[name]["secretKeyRef"]
                assert ref["name"] == "onyx-r2r" and ref["key"] in our_secret_keys
    assert backend_pods >= 5, "api server + celery workers"
    env_config = by_kind(docs, "ConfigMap")["env-configmap"]["data"]
    assert env_config["ONYX_EXPORT_R2R"] == "true"
    assert env_config["R2R_BASE_URL"] == "http://onyx-r2r-server:7272"
    assert env_config["ONYX_R2R_QUEUE"] == QUEUE


# ------------------------------------------------------------------ no literal secrets
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|API_KEY|ENCRYPTION_KEY|TOKEN$)")
KEY_LIKE = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}|-----BEGIN [A-Z ]*PRIVATE KEY|\b[0-9a-f]{40,}\b")


def deployment_text_files() -> list[Path]:
    files = [p for p in DEPLOYMENT.rglob("*") if p.is_file() and not p.is_symlink()]
    # the validators' lock is all sha256 digests
    return [p for p in files if p.name not in {"requirements.txt"}]


def test_no_secret_is_hard_coded() -> None:
    problems: list[str] = []
    for path in deployment_text_files():
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(REPO_ROOT)
        for match in KEY_LIKE.finditer(text):
            # the pinned Onyx commit is not a secret
            if match.group(0) != "a7d66a8b778c3f9026c4f89dae47d14a3f84816f":
                problems.append(f"{rel}: key-like literal {match.group(0)[:12]}...")
    # compose: secret-named settings only come from required variables, never defaults
    for line in OVERLAY.read_text().splitlines():
        match = re.match(r"\s*([A-Z][A-Z0-9_]*):\s*(.+)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            value = match.group(2)
            if not re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}", value.strip()):
                problems.append(f"{OVERLAY.name}: {match.group(1)} = {value}")
    # env template: secret settings are empty (the admin fills them in)
    for line in ENV_TEMPLATE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and SECRET_NAME.search(match.group(1)) and match.group(2):
            problems.append(f"{ENV_TEMPLATE.name}: {line}")
    # Helm: no default credential in values.yaml
    values_text = (CHART / "values.yaml").read_text()
    for key in (
        "r2r_password",
        "r2r_secret_key",
        "postgres_password",
        "redis_password",
        "embedding_api_key",
        "encryption_key",
    ):
        if not re.search(rf'^\s+{key}: ""$', values_text, re.M):
            problems.append(f"values.yaml: auth.values.{key} must default to empty")
    assert not problems, "\n".join(problems)


# ------------------------------------------------------------------ images
@pytest.mark.parametrize("name", ["Dockerfile.backend", "Dockerfile.ccbe"])
def test_build_context_sends_only_what_the_dockerfile_copies(name: str) -> None:
    dockerfile = (DEPLOYMENT / "images" / name).read_text()
    lines = (DEPLOYMENT / "images" / f"{name}.dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore[0] == "*", "everything is excluded first, then re-included"
    included = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    sources = []
    for line in dockerfile.splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            sources += [p.rstrip("/") for p in line.split()[1:-1] if not p.startswith("--")]
    assert sources, f"{name} copies files from the repository"
    for source in sources:
        assert any(source == inc or source.startswith(inc + "/") for inc in included), (
            f"{source} is copied but excluded from the build context"
        )
    assert not any(p.startswith((".stack", ".venv")) for p in included)


# ------------------------------------------------------------------ Nextcloud (CCBE ExApp)
CCBE_COMPOSE = DEPLOYMENT / "nextcloud" / "docker-compose.ccbe-r2r.yml"
CCBE_ENV_TEMPLATE = DEPLOYMENT / "nextcloud" / "env.ccbe-r2r.template"
CCBE_VERSIONS = {"5.4.0": "v5.4", "5.3.0": "v5.3"}


def test_ccbe_compose_runs_the_exapp_beside_r2r(summary: dict[str, Any]) -> None:
    services = rendered("ccbe-compose.json")["services"]
    assert set(services) == {"context_chat_backend", "r2r", "r2r_postgres"}
    ccbe = services["context_chat_backend"]
    env = ccbe["environment"]
    assert env["RAG_BACKEND"] == "r2r" and env["R2R_BASE_URL"] == "http://r2r:7272"
    assert env["APP_ID"] == "context_chat_backend" and env["APP_VERSION"] == "5.4.0"
    assert env["APP_HOST"] == "0.0.0.0" and env["APP_PORT"] == "23000"
    assert not {"CCB_DB_URL", "EXTERNAL_DB", "CC_EM_BASE_URL"} & set(env), "R2R needs neither"
    assert ccbe["build"]["dockerfile"] == "deployment/images/Dockerfile.ccbe"
    assert ccbe["build"]["target"] == "context-chat-backend-r2r"
    assert ccbe["depends_on"]["r2r"]["condition"] == "service_healthy"
    assert ccbe["healthcheck"]["test"][-1] == "http://localhost:23000/heartbeat"
    assert [p["host_ip"] for p in ccbe["ports"]] == ["127.0.0.1"], (
        "published to localhost by default"
    )
    # R2R is the Onyx overlay's own service (one definition, deployment/r2r/ mounted)
    r2r = services["r2r"]
    assert r2r["entrypoint"][1] == "/onyx-r2r/render_config.py"
    assert r2r["volumes"][0]["source"] == str(DEPLOYMENT / "r2r")
    assert r2r["environment"]["R2R_ADMIN_EMAIL"] == env["R2R_EMAIL"]
    assert r2r["environment"]["R2R_ADMIN_PASSWORD"] == env["R2R_PASSWORD"]


def test_ccbe_compose_and_template_hold_no_secret() -> None:
    problems = []
    for line in CCBE_COMPOSE.read_text().splitlines():
        match = re.match(r"\s*([A-Z][A-Z0-9_]*):\s*(.+)$", line)
        if match and SECRET_NAME.search(match.group(1)):
            if not re.fullmatch(r"\$\{[A-Z0-9_]+(:\?[^}]*|:-)?\}", match.group(2).strip()):
                problems.append(line.strip())
    for line in CCBE_ENV_TEMPLATE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match and SECRET_NAME.search(match.group(1)) and match.group(2):
            problems.append(line)
    assert not problems, problems
    template = CCBE_ENV_TEMPLATE.read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", CCBE_COMPOSE.read_text()))
    documented = set(re.findall(r"(?m)^#? ?([A-Z][A-Z0-9_]*)=", template))
    assert required <= documented, required - documented


def test_ccbe_image_recipe_builds_upstreams_image_with_the_patches() -> None:
    dockerfile = (DEPLOYMENT / "images" / "Dockerfile.ccbe").read_text()
    build = (DEPLOYMENT / "images" / "build-ccbe").read_text()
    assert (
        "ARG CCBE_IMAGE=ghcr.io/nextcloud-releases/context_chat_backend:${CCBE_VERSION}"
        in dockerfile
    )
    assert "patches/apply --host ccbe --only app" in dockerfile
    assert "ARG CCBE_VERSION=5.4.0" in dockerfile
    for version, patch_set in CCBE_VERSIONS.items():
        assert f"[{version}]=" in build, version
        assert (REPO_ROOT / "patches" / "ccbe" / patch_set).is_dir()
    assert f"RELEASE={bridge_version()}" in build
    assert f"-r2r{bridge_version()}}}" in CCBE_COMPOSE.read_text()


def test_ccbe_info_xml_declares_the_backend_deploy_options(summary: dict[str, Any]) -> None:
    assert summary["checks"]["nextcloud"]["status"] == "passed"
    for patch_set in CCBE_VERSIONS.values():
        log = (OUT / f"info-{patch_set}.log").read_text()
        assert "ok (" in log, log


def test_r2r_image_applies_every_patch_and_its_context_holds_only_them() -> None:
    dockerfile = (DEPLOYMENT / "r2r" / "Dockerfile").read_text()
    assert "COPY deployment/r2r/patches/ /tmp/r2r-patches/" in dockerfile
    assert "for p in /tmp/r2r-patches/*.patch" in dockerfile
    assert "patch -p2 -d /app" in dockerfile and "--fuzz=0" in dockerfile
    assert "COPY --from=patch /app/core /app/core" in dockerfile
    lines = (DEPLOYMENT / "r2r" / "Dockerfile.dockerignore").read_text().splitlines()
    ignore = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert ignore == ["*", "!deployment/r2r/patches/*.patch"]
    assert sorted((DEPLOYMENT / "r2r" / "patches").glob("*.patch")), "no patch to apply"


# ------------------------------------------------------------------ one pinned version
@cache
def bridge_version() -> str:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]


def test_one_pinned_version_everywhere() -> None:
    tag = f"{ONYX_VERSION}-r2r{bridge_version()}"
    overlay = OVERLAY.read_text()
    # ${ONYX_VERSION:-...}-r2r<version> for the backend, web and worker images
    assert len(re.findall(rf"\}}-r2r{re.escape(bridge_version())}\}}", overlay)) == 4
    assert all(v == bridge_version() for v in re.findall(r"-r2r(\d[\w.]*?)\}", overlay))
    assert set(re.findall(r"ONYX_VERSION:-([\w.-]+)\}", overlay)) == {ONYX_VERSION}
    dockerfile = (DEPLOYMENT / "images" / "Dockerfile.backend").read_text()
    assert f"ARG ONYX_VERSION={ONYX_VERSION}" in dockerfile
    build = (DEPLOYMENT / "images" / "build").read_text()
    assert f"DEFAULT_ONYX_VERSION={ONYX_VERSION}" in build
    assert f"# ONYX_VERSION={ONYX_VERSION}" in ENV_TEMPLATE.read_text()
    assert f'onyxVersion: "{ONYX_VERSION}"' in (CHART / "values.yaml").read_text()
    chart = (CHART / "Chart.yaml").read_text()
    assert f'appVersion: "{bridge_version()}"' in chart
    assert f"onyx-r2r/onyx-version: {ONYX_VERSION}" in chart
    onyx_values = ONYX_VALUES.read_text()
    assert f'version: "{ONYX_VERSION}"' in onyx_values
    assert onyx_values.count(f'tag: "{tag}"') == 6  # api, celery, 2 bots, mcp, web
    check = (REPO_ROOT / "scripts" / "deployment_check").read_text()
    assert f"ONYX_VERSION={ONYX_VERSION}" in check
    # R2R: the patched image's tag is <R2R version>-r2r<bridge version> everywhere
    r2r_tag = f"3.6.6-r2r{bridge_version()}"
    assert f"localhost/onyx-r2r/r2r:{r2r_tag}}}" in overlay
    assert f"# R2R_IMAGE=localhost/onyx-r2r/r2r:{r2r_tag}" in ENV_TEMPLATE.read_text()
    assert 'onyx-r2r/r2r-version: "3.6.6"' in chart  # the chart's default r2r.image.tag
    assert "ARG R2R_VERSION=3.6.6" in (DEPLOYMENT / "r2r" / "Dockerfile").read_text()
    assert "R2R_VERSION=3.6.6" in build and "R2R_VERSION=3.6.6" in check
    assert "r2r[core]==3.6.6" in (REPO_ROOT / "scripts" / "stack").read_text()


# ------------------------------------------------------------------ the patches contract
def test_patches_apply_supports_backend_only_runs() -> None:
    """Dockerfile.backend patches Onyx's published image, which has no web/ sources."""
    apply = REPO_ROOT / "patches" / "apply"
    if not apply.exists():
        pytest.skip("patches/apply is not written yet (issue 4)")
    proc = subprocess.run([str(apply), "--help"], capture_output=True, text=True, timeout=60)
    assert "--only" in proc.stdout + proc.stderr, (
        "Dockerfile.backend runs `patches/apply --only backend`"
    )


def test_info_xml_checker_names_what_is_wrong(tmp_path: Path) -> None:
    checker = REPO_ROOT / "scripts" / "lib" / "check_info_xml.py"
    info = tmp_path / "info.xml"
    info.write_text(
        "<info><id>context_chat_backend</id><version>5.4</version><external-app>"
        "<environment-variables><variable><name>RAG_BACKEND</name><display-name>x</display-name>"
        "</variable><variable><name>RAG_BACKEND</name><display-name>y</display-name>"
        "<description>z</description></variable></environment-variables></external-app></info>"
    )
    result = subprocess.run(
        ["python3", str(checker), str(info), "--require", "R2R_BASE_URL"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "<version> '5.4' is not semver" in result.stdout
    assert "RAG_BACKEND: <description> is missing or empty" in result.stdout
    assert "declared more than once: RAG_BACKEND" in result.stdout
    assert "deploy options missing: R2R_BASE_URL" in result.stdout
    info.write_text("<info><id>x</id>")
    assert (
        "not well-formed XML"
        in subprocess.run(
            ["python3", str(checker), str(info)], capture_output=True, text=True
        ).stdout
    )
