"""The Grafana dashboard and its provisioning for the docker-compose stack."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "nqp.json"
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "nqp.yml"
COMPOSE = ROOT / "deploy" / "docker-compose.yml"
GRID_COLUMNS = 24


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def _panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_dashboard_identity(dashboard):
    assert dashboard["uid"] == "nqp-overview"
    assert dashboard["title"]
    assert isinstance(dashboard["schemaVersion"], int)
    assert "nqp" in dashboard["tags"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"


def test_panels_query_the_provisioned_datasource(dashboard):
    provisioned = yaml.safe_load(DATASOURCES.read_text())["datasources"]
    assert len(provisioned) == 1
    uid = provisioned[0]["uid"]
    for panel in _panels(dashboard):
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": uid}
        targets = panel["targets"]
        assert targets, f"panel {panel['title']} has no query"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids))
        for target in targets:
            assert target["expr"].strip()
            assert target["datasource"]["uid"] == uid


def _cells(grid: dict[str, int]) -> set[tuple[int, int]]:
    return {
        (x, y)
        for x in range(grid["x"], grid["x"] + grid["w"])
        for y in range(grid["y"], grid["y"] + grid["h"])
    }


def test_layout_fits_the_grid_without_overlaps(dashboard):
    taken: dict[tuple[int, int], str] = {}
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["w"] > 0
        assert grid["h"] > 0
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= GRID_COLUMNS, panel["title"]
        for cell in _cells(grid):
            assert cell not in taken, f"{panel['title']} overlaps {taken[cell]}"
            taken[cell] = panel["title"]


def test_overlap_check_catches_overlaps():
    a = {"x": 0, "y": 0, "w": 8, "h": 8}
    b = {"x": 7, "y": 7, "w": 2, "h": 2}
    c = {"x": 8, "y": 0, "w": 8, "h": 8}
    assert _cells(a) & _cells(b)
    assert not _cells(a) & _cells(c)


def test_units_suit_the_quantities(dashboard):
    for panel in _panels(dashboard):
        unit = panel["fieldConfig"]["defaults"]["unit"]
        exprs = " ".join(t["expr"] for t in panel["targets"])
        if "histogram_quantile" in exprs:
            assert unit == "s", panel["title"]
        title = panel["title"].lower()
        if "hit_rate" in exprs or "ratio" in title or "share" in title:
            assert unit == "percentunit", panel["title"]


def _compose_service(name: str) -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())["services"][name]


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    out = {}
    for volume in service["volumes"]:
        source, target = volume.split(":")[:2]
        out[target] = source
    return out


def test_provisioning_points_where_compose_mounts():
    grafana = _compose_service("grafana")
    mounts = _mounts(grafana)
    provisioning = mounts["/etc/grafana/provisioning"]
    assert (ROOT / "deploy" / provisioning).resolve() == (GRAFANA / "provisioning").resolve()
    provider = yaml.safe_load(PROVIDERS.read_text())["providers"][0]
    path = provider["options"]["path"]
    assert (ROOT / "deploy" / mounts[path]).resolve() == DASHBOARD.parent.resolve()
    assert provider["type"] == "file"


def test_datasource_reaches_the_compose_prometheus():
    datasource = yaml.safe_load(DATASOURCES.read_text())["datasources"][0]
    assert datasource["type"] == "prometheus"
    prometheus = _compose_service("prometheus")
    port = prometheus["ports"][0].split(":")[-1]
    assert datasource["url"] == f"http://prometheus:{port}"
