"""Prometheus alert rules and scrape configurations, checked and unit-tested with promtool.

``promtool test rules`` runs deploy/prometheus/alerts_test.yml: synthetic series for each
alert, with the cases where it must fire and where it must stay silent. Mutation tests
change one threshold or matcher at a time and require those unit tests to fail, so they
cannot pass by accident. promtool comes from the Debian package ``prometheus``; without it
these tests skip, unless NQP_REQUIRE_SERVICES=1, where they fail.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from nqp.config import StreamSettings

ROOT = Path(__file__).resolve().parents[2]
PROM = ROOT / "deploy" / "prometheus"
RULES = PROM / "alerts.yml"
RULE_TESTS = PROM / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "nqp.json"
ADAPTER = ROOT / "deploy" / "k8s" / "addons" / "prometheus-adapter-values.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (Debian package 'prometheus')"
        if os.environ.get("NQP_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message} and NQP_REQUIRE_SERVICES=1", pytrace=False)
        pytest.skip(f"{message}; set NQP_REQUIRE_SERVICES=1 to make this a failure")
    return path


def run(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def alert_rules() -> list[dict[str, Any]]:
    doc = yaml.safe_load(RULES.read_text())
    return [r for g in doc["groups"] for r in g["rules"] if "alert" in r]


def test_check_rules(promtool):
    proc = run(promtool, "check", "rules", RULES.name, cwd=PROM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in proc.stdout


def test_rule_unit_tests_pass(promtool):
    proc = run(promtool, "test", "rules", RULE_TESTS.name, cwd=PROM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_alert_is_tested_firing_and_silent():
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    cases = [c for t in tests for c in t["alert_rule_test"]]
    for rule in alert_rules():
        name = rule["alert"]
        mine = [c for c in cases if c["alertname"] == name]
        assert any(c["exp_alerts"] for c in mine), f"{name} is never shown firing"
        assert any(not c["exp_alerts"] for c in mine), f"{name} is never shown silent"


MUTATIONS = [
    ("latency threshold", ") > 0.1\n", ") > 0.2\n"),
    ("error-rate threshold", ") > 0.01\n", ") > 0.1\n"),
    ("probe routes excluded", 'route!~"/healthz|/readyz|/metrics"', 'route!~"/healthz"'),
    ("first-scrape storage errors", "          or\n", "          and\n"),
    ("lag threshold", ") > 10000\n", ") > 20000\n"),
    ("hit-rate threshold", "< 0.4\n", "< 0.3\n"),
    ("worker-down comparison", 'up{job="nqp-worker"} == 0', 'up{job="nqp-worker"} == 1'),
    ("dead-letter topic", 'topic="realtime-data-dlq"}[15m]', 'topic=~"realtime-data-.*"}[15m]'),
    ("stall needs frozen offsets", ") == 0\n", ") >= 0\n"),
    ("restart count", "[30m])) >= 2", "[30m])) >= 3"),
]


@pytest.mark.parametrize(("what", "old", "new"), MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_unit_tests_catch_a_broken_rule(promtool, tmp_path, what, old, new):
    text = RULES.read_text()
    assert old in text, f"mutation '{what}' no longer applies: {old!r} not in alerts.yml"
    (tmp_path / "alerts.yml").write_text(text.replace(old, new))
    shutil.copy(RULE_TESTS, tmp_path / RULE_TESTS.name)
    proc = run(promtool, "test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert proc.returncode != 0, f"alerts_test.yml does not notice: {what}"


def test_compose_prometheus_config(promtool):
    proc = run(promtool, "check", "config", "prometheus.yml", cwd=PROM)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 rule files found" in proc.stdout


def _k8s_config_without_kubernetes_sd() -> dict[str, Any]:
    config = yaml.safe_load((PROM / "prometheus-k8s.yml").read_text())
    for job in config["scrape_configs"]:
        if "kubernetes_sd_configs" in job:
            del job["kubernetes_sd_configs"]
            job["static_configs"] = [{"targets": ["10.0.0.1:8000"]}]
    return config


def test_k8s_prometheus_config_apart_from_discovery(promtool, tmp_path):
    """Everything but kubernetes_sd_configs (relabelling, regexes, rule files) is checked."""
    (tmp_path / "prometheus-k8s.yml").write_text(
        yaml.safe_dump(_k8s_config_without_kubernetes_sd())
    )
    shutil.copy(RULES, tmp_path / "alerts.yml")
    proc = run(promtool, "check", "config", "prometheus-k8s.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_k8s_prometheus_config_as_written(promtool):
    proc = run(promtool, "check", "config", "prometheus-k8s.yml", cwd=PROM)
    if proc.returncode != 0 and "kubernetes_sd_configs not found" in proc.stdout + proc.stderr:
        pytest.skip("this promtool build has no Kubernetes service discovery (Debian's)")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_k8s_relabelling_yields_the_alert_job_names():
    config = yaml.safe_load((PROM / "prometheus-k8s.yml").read_text())
    job = next(j for j in config["scrape_configs"] if "kubernetes_sd_configs" in j)
    rule = next(r for r in job["relabel_configs"] if r.get("target_label") == "job")
    produced = {
        re.sub(r"\$1", m.group(1), rule["replacement"])
        for component in ("gateway", "worker", "migrate")
        if (m := re.fullmatch(rule["regex"], component))
    }
    assert produced == {"nqp-gateway", "nqp-worker"}
    labels = {r.get("target_label") for r in job["relabel_configs"]}
    assert {"namespace", "pod"} <= labels  # prometheus-adapter maps these to resources


def test_scrape_jobs_cover_the_alerts():
    jobs_in_rules = set(re.findall(r'job="([^"]+)"', RULES.read_text()))
    compose = yaml.safe_load((PROM / "prometheus.yml").read_text())
    compose_jobs = {j["job_name"] for j in compose["scrape_configs"]}
    assert jobs_in_rules <= compose_jobs
    assert {"nqp-gateway", "nqp-worker", "kafka-exporter"} <= compose_jobs


def test_scrape_ports_match_the_services():
    prom = yaml.safe_load((PROM / "prometheus.yml").read_text())
    ports = {
        j["job_name"]: j["dns_sd_configs"][0]["port"]
        for j in prom["scrape_configs"]
        if "dns_sd_configs" in j
    }
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    gateway_cmd = compose["services"]["gateway"]["command"]
    assert ports["nqp-gateway"] == int(gateway_cmd[gateway_cmd.index("--port") + 1])
    worker = next(
        d
        for d in yaml.safe_load_all(
            (ROOT / "deploy" / "k8s" / "worker-deployment.yaml").read_text()
        )
        if d
    )
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert ports["nqp-worker"] == int(annotations["prometheus.io/port"])
    assert compose["services"]["worker"]["environment"]["HEALTHCHECK_URL"].endswith(
        f":{ports['nqp-worker']}/healthz"
    )
    worker_cmd = compose["services"]["worker"]["command"]
    assert ports["nqp-worker"] == int(worker_cmd[worker_cmd.index("--metrics-port") + 1])
    exporter = next(j for j in prom["scrape_configs"] if j["job_name"] == "kafka-exporter")
    listen = next(
        a for a in compose["services"]["kafka-exporter"]["command"] if "listen-address" in a
    )
    assert exporter["static_configs"][0]["targets"][0].endswith(listen.split(":")[-1])


def test_kafka_names_match_the_stream_settings():
    defaults = StreamSettings()
    text = RULES.read_text()
    assert set(re.findall(r'consumergroup="([^"]+)"', text)) == {defaults.group_id}
    topics = set(re.findall(r'topic="([^"]+)"', text))
    assert topics == {defaults.input_topic, defaults.dead_letter_topic}


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_every_alert_has_a_runbook_section():
    headings = [
        _slug(m.group(1))
        for m in re.finditer(r"^#{2,4} (.+)$", OPERATIONS.read_text(), re.MULTILINE)
    ]
    for rule in alert_rules():
        runbook = rule["annotations"]["runbook"]
        path, _, anchor = runbook.partition("#")
        assert path == "docs/operations.md"
        assert anchor == rule["alert"].lower()
        assert anchor in headings, f"docs/operations.md has no section for {rule['alert']}"
        assert rule["labels"]["severity"] in {"warning", "critical"}


def other_promql() -> list[tuple[str, str]]:
    """PromQL outside alerts.yml: the dashboard's panels and prometheus-adapter's query."""
    import json

    out = []
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"].replace("$__rate_interval", "5m")
            out.append((f"panel {panel['id']} {target['refId']}", expr))
    adapter = yaml.safe_load(ADAPTER.read_text())
    for rule in adapter["rules"]["custom"]:
        query = (
            rule["metricsQuery"]
            .replace("<<.Series>>", "nqp_http_request_seconds_bucket")
            .replace("<<.LabelMatchers>>", 'namespace="nqp",pod="nqp-gateway-0"')
            .replace("<<.GroupBy>>", "namespace, pod")
        )
        out.append((f"adapter {rule['name']['as']}", query))
    return out


def test_dashboard_and_adapter_queries_parse(promtool, tmp_path):
    exprs = other_promql()
    assert len(exprs) > 10
    rules = {
        "groups": [
            {
                "name": "syntax",
                "rules": [
                    {"record": f"nqp:syntax_check_{i}", "expr": e} for i, (_, e) in enumerate(exprs)
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    proc = run(promtool, "check", "rules", "queries.yml", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # and a broken one is refused, so the check above means something
    rules["groups"][0]["rules"].append({"record": "nqp:broken", "expr": "sum(rate(x[5m])"})
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    assert run(promtool, "check", "rules", "queries.yml", cwd=tmp_path).returncode != 0
