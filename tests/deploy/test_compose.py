"""deploy/docker-compose.yml: the distributed stack on one Docker host.

The file is parsed and its wiring checked (images pinned, start order, health checks,
host names and ports that the services use to find each other, mounted files). When the
``docker compose`` plugin is installed, ``docker compose config`` validates it as well.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.yml"
REQUIRED = {
    "gateway",
    "worker",
    "migrate",
    "kafka",
    "kafka-exporter",
    "redis",
    "postgres",
    "prometheus",
    "grafana",
}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _nqp(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if "build" in s}


def test_all_services_present(compose):
    assert set(compose["services"]) >= REQUIRED
    assert set(_nqp(compose)) == {"gateway", "worker", "migrate"}


def test_third_party_images_are_pinned(compose):
    for name, svc in compose["services"].items():
        if "build" in svc:
            continue
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo, f"{name}: pin a version ({image})"
        assert tag not in {"", "latest"}, f"{name}: pin a version ({image})"
        assert re.search(r"\d", tag), f"{name}: tag {tag} names no version"


def test_nqp_services_build_the_repository_image(compose):
    for name, svc in _nqp(compose).items():
        build = svc["build"]
        context = (DEPLOY / build["context"]).resolve()
        assert context == ROOT, name
        assert (context / build["dockerfile"]).is_file()


def test_start_order_waits_for_health_and_migrations(compose):
    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        if isinstance(deps, list):  # short form: start order only
            deps = {d: {"condition": "service_started"} for d in deps}
        for dep, cond in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{dep} has no healthcheck"
    for name in ("gateway", "worker"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["kafka"]["condition"] == "service_healthy"
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"


def test_services_find_each_other(compose):
    services = compose["services"]
    env = services["gateway"]["environment"]
    raw_url = env["NQP_SERVICE__DATABASE_URL"]
    assert raw_url.count("${POSTGRES_PASSWORD:?") == 1  # the same variable, never a literal
    db = urlsplit(re.sub(r"\$\{[^}]*\}", "stand-in", raw_url))
    assert db.scheme == "postgresql"
    assert db.hostname == "postgres"
    assert db.port == 5432
    pg = services["postgres"]["environment"]
    assert db.username == pg["POSTGRES_USER"]
    assert db.path.lstrip("/") == pg["POSTGRES_DB"]
    assert db.password == "stand-in"
    assert urlsplit(env["NQP_SERVICE__REDIS_URL"]).hostname == "redis"
    kafka = services["kafka"]["environment"]
    assert (
        f"PLAINTEXT://{env['NQP_STREAM__BOOTSTRAP_SERVERS']}" in kafka["KAFKA_ADVERTISED_LISTENERS"]
    )
    assert int(env["NQP_STREAM__PARTITIONS"]) == int(kafka["KAFKA_NUM_PARTITIONS"])
    exporter = services["kafka-exporter"]["command"]
    assert f"--kafka.server={env['NQP_STREAM__BOOTSTRAP_SERVERS']}" in exporter


def test_every_nqp_service_gets_the_same_configuration(compose):
    envs = [svc["environment"] for svc in _nqp(compose).values()]
    shared = {k for k in envs[0] if k.startswith("NQP_")}
    for env in envs[1:]:
        assert {k for k in env if k.startswith("NQP_")} == shared
        assert all(env[k] == envs[0][k] for k in shared)


def test_healthchecks_point_at_each_process(compose):
    services = compose["services"]
    assert services["gateway"]["environment"]["HEALTHCHECK_URL"].endswith(":8000/healthz")
    assert services["worker"]["environment"]["HEALTHCHECK_URL"].endswith("/healthz")
    for name in ("postgres", "redis", "kafka"):
        assert services[name]["healthcheck"]["test"], name


def _seconds(text: str) -> int:
    m = re.fullmatch(r"(\d+)s", text)
    assert m, text
    return int(m.group(1))


def test_stop_grace_covers_the_drain(compose):
    services = compose["services"]
    assert _seconds(services["gateway"]["stop_grace_period"]) > 30  # uvicorn's drain
    assert _seconds(services["worker"]["stop_grace_period"]) >= 30
    assert services["worker"]["deploy"]["replicas"] >= 2


def test_mounted_files_exist(compose):
    for name, svc in compose["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"


def test_prometheus_gets_its_rules(compose):
    mounts = {
        v.split(":")[1]: v.split(":")[0] for v in compose["services"]["prometheus"]["volumes"]
    }
    config = yaml.safe_load((DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    for rule_file in config["rule_files"]:
        assert f"/etc/prometheus/{rule_file}" in mounts, f"{rule_file} is not mounted"


def _compose_cli() -> list[str] | None:
    """``docker compose`` (v2) if installed. Compose v1 predates parts of the Compose
    specification this file uses (top-level ``name``), so it is not used."""
    docker = shutil.which("docker")
    if docker is None:
        return None
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, timeout=30
    )
    return [docker, "compose"] if probe.returncode == 0 else None


def test_docker_compose_config_validates():
    cli = _compose_cli()
    if cli is None:
        pytest.skip("the docker compose plugin (Compose v2) is not installed")
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": "test-only",
        "NQP_JWT_SECRET": "test-only",
        "GRAFANA_ADMIN_PASSWORD": "test-only",
    }
    proc = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    missing = {k: v for k, v in env.items() if k != "POSTGRES_PASSWORD"}
    proc = subprocess.run(
        [*cli, "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        env=missing,
    )
    assert proc.returncode != 0, "compose must refuse to start without POSTGRES_PASSWORD"
