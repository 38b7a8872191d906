"""Every metric the alerts, the dashboard and the autoscaler query exists.

NQP's metric names and labels are read from the real registries (the gateway's
:class:`nqp.service.metrics.Metrics`, the worker's
:class:`nqp.stream.worker.WorkerMetrics`), expanded the way the Prometheus text format
exposes them (counter ``_total``, histogram ``_bucket``/``_sum``/``_count``). The only
other sources allowed are danielqsj/kafka-exporter's documented consumer-group and topic
metrics and Prometheus' own ``up``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from nqp.service.metrics import Metrics
from nqp.stream.worker import WorkerMetrics

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"

# Labels Prometheus attaches to every scraped series (compose and k8s scrape configs).
TARGET_LABELS = {"job", "instance", "namespace", "pod"}
# danielqsj/kafka-exporter (README, "Metrics"): name -> labels.
KAFKA_EXPORTER = {
    "kafka_brokers": set(),
    "kafka_topic_partitions": {"topic"},
    "kafka_topic_partition_current_offset": {"topic", "partition"},
    "kafka_topic_partition_oldest_offset": {"topic", "partition"},
    "kafka_consumergroup_current_offset": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_current_offset_sum": {"consumergroup", "topic"},
    "kafka_consumergroup_lag": {"consumergroup", "topic", "partition"},
    "kafka_consumergroup_lag_sum": {"consumergroup", "topic"},
    "kafka_consumergroup_members": {"consumergroup"},
}
PROMETHEUS = {"up": set()}
KEYWORDS = {
    "by", "without", "on", "ignoring", "group_left", "group_right", "bool",
    "and", "or", "unless", "offset", "inf", "nan",
}  # fmt: skip


def nqp_metrics() -> dict[str, set[str]]:
    """Sample names NQP exposes at /metrics, each with its label names."""
    out: dict[str, set[str]] = {}
    collectors = []
    for metrics in (Metrics(), WorkerMetrics()):
        mine = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
        registered = {f.name for f in metrics.registry.collect()}
        assert {c.describe()[0].name for c in mine} == registered
        collectors += mine
    for collector in collectors:
        family = collector.describe()[0]
        labels = set(collector._labelnames)
        if family.type == "counter":
            out[f"{family.name}_total"] = out[f"{family.name}_created"] = labels
        elif family.type == "histogram":
            out[f"{family.name}_bucket"] = labels | {"le"}
            for suffix in ("_sum", "_count", "_created"):
                out[family.name + suffix] = labels
        else:
            out[family.name] = labels
    return out


def known_metrics() -> dict[str, set[str]]:
    return {**nqp_metrics(), **KAFKA_EXPORTER, **PROMETHEUS}


def metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (no full parser needed for ours)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"' r"|'(?:[^'\\]|\\.)*'", '""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.$])[a-zA-Z_:][\w:]*", text):
        word = m.group(0)
        rest = text[m.end() :].lstrip()
        if word.lower() in KEYWORDS or rest.startswith("("):
            continue
        names.add(word)
    return names


def label_matchers(expr: str) -> list[tuple[str, set[str]]]:
    """``(metric, {label names})`` for every ``metric{...}`` selector."""
    out = []
    for m in re.finditer(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}", expr):
        labels = set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", m.group(2)))
        out.append((m.group(1), labels))
    return out


def test_extractor_on_known_expressions():
    expr = (
        "histogram_quantile(0.95, sum by (job, le) (rate(nqp_http_request_seconds_bucket"
        '{job="nqp-gateway", route="/api/v1/process/realtime"}[5m]))) > 0.1 and on (job) '
        'up offset 10m unless absent(foo_total{a="by (x)"})'
    )
    assert metric_names(expr) == {"nqp_http_request_seconds_bucket", "up", "foo_total"}
    assert label_matchers(expr) == [
        ("nqp_http_request_seconds_bucket", {"job", "route"}),
        ("foo_total", {"a"}),
    ]
    assert metric_names("sum(rate(x[$__rate_interval])) / 2e3") == {"x"}


def test_registry_reading_is_right():
    known = nqp_metrics()
    assert known["nqp_http_requests_total"] == {"route", "method", "status"}
    assert known["nqp_http_request_seconds_bucket"] == {"route", "le"}
    assert known["nqp_source_rolling_hit_rate"] == {"tenant", "source"}
    assert "nqp_http_requests" not in known  # counters are exposed with _total
    assert known["nqp_worker_lag"] == {"partition"}
    assert known["nqp_worker_points_total"] == set()


def _alert_exprs() -> list[tuple[str, str]]:
    doc = yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())
    return [(r.get("alert") or r["record"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


def _dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "nqp.json").read_text())
    return [
        (f"panel {p['id']} ({p['title']})", t["expr"])
        for p in dashboard["panels"]
        for t in p.get("targets", [])
    ]


def _adapter_exprs() -> list[tuple[str, str]]:
    values = yaml.safe_load(
        (DEPLOY / "k8s" / "addons" / "prometheus-adapter-values.yaml").read_text()
    )
    out = []
    for rule in values["rules"]["custom"]:
        out.append((f"adapter seriesQuery {rule['name']['as']}", rule["seriesQuery"]))
        series = re.match(r"[\w:]+", rule["seriesQuery"]).group(0)
        query = rule["metricsQuery"].replace("<<.Series>>", series)
        query = query.replace("<<.LabelMatchers>>", 'namespace="nqp"').replace(
            "<<.GroupBy>>", "pod"
        )
        out.append((f"adapter metricsQuery {rule['name']['as']}", query))
    return out


def _test_series() -> list[tuple[str, str]]:
    tests = yaml.safe_load((DEPLOY / "prometheus" / "alerts_test.yml").read_text())["tests"]
    return [
        (f"alerts_test input {s['series']}", s["series"]) for t in tests for s in t["input_series"]
    ]


ALL_EXPRS = _alert_exprs() + _dashboard_exprs() + _adapter_exprs() + _test_series()


@pytest.mark.parametrize(("where", "expr"), ALL_EXPRS, ids=[w for w, _ in ALL_EXPRS])
def test_queries_use_only_exported_metrics_and_labels(where, expr):
    known = known_metrics()
    names = metric_names(expr)
    assert names, f"{where}: no metric found in {expr!r}"
    unknown = names - set(known)
    assert not unknown, f"{where}: {sorted(unknown)} are exported by neither NQP nor kafka-exporter"
    for metric, labels in label_matchers(expr):
        extra = labels - known[metric] - TARGET_LABELS
        assert not extra, f"{where}: {metric} has no label(s) {sorted(extra)}"


def test_dashboard_covers_every_nqp_metric():
    used = set().union(*(metric_names(e) for _, e in _dashboard_exprs()))
    families = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in nqp_metrics()}
    covered = {re.sub(r"_(total|bucket|sum|count|created)$", "", n) for n in used}
    missing = sorted(families - covered)
    assert not missing, f"add a panel to deploy/grafana/dashboards/nqp.json for {missing}"


def test_per_source_hit_rate_is_exported_in_both_modes():
    """NQPLowRollingHitRate must work embedded (gateway) and distributed (workers)."""
    for metrics in (Metrics(), WorkerMetrics()):
        families = {f.name: f for f in metrics.registry.collect()}
        assert "nqp_source_rolling_hit_rate" in families, type(metrics).__name__
        assert set(metrics.hit_rate._labelnames) == {"tenant", "source"}
