"""Maintenance scenario: healthy, then degrading monotonically to failure at the known step."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from nqp.exceptions import InvalidParameterError
from nqp.scenarios import MaintenanceScenario
from nqp.scenarios.maintenance import CONTROL_SOURCE


def _collect(m: MaintenanceScenario, n: int):
    rows: dict[str, list[tuple[int, tuple[float, ...]]]] = defaultdict(list)
    health: list[np.ndarray] = []
    for _ in range(n):
        for p in next(m):
            rows[p.source].append((p.step, p.data))
            assert p.target == p.data[0]
            assert p.config == {"horizon": 10, "target_channel": 0}
        health.append(m.health_.copy())
    return rows, np.array(health)


def test_noise_free_runs_are_flat_then_rise_strictly_to_failure_and_are_replaced():
    m = MaintenanceScenario(failure_steps=(100, 160), onset_fraction=0.25, noise_level=0.0, seed=1)
    rows, health = _collect(m, 400)
    runs = {r.source: r for r in m.runs_}
    first = runs["maintenance.m1.run1"]
    assert (first.start, first.onset, first.failure, first.end) == (0, 25, 100, 121)
    second = runs["maintenance.m1.run2"]
    assert (second.start, second.onset, second.failure) == (121, 146, 221)
    assert [r.source for r in m.runs_ if r.machine == 2][:2] == [
        "maintenance.m2.run1",
        "maintenance.m2.run2",
    ]
    for run in m.runs_:
        got = rows[run.source]
        steps = [k for k, _ in got]
        assert steps == list(range(run.start, min(run.end, 400)))  # one point per step
        if run.end > 400:
            continue
        vib = np.array([d[0] for _, d in got])
        h = health[run.start : run.end, run.machine - 1]
        healthy = slice(0, run.onset - run.start)
        wearing = slice(run.onset - run.start, run.failure - run.start + 1)
        np.testing.assert_allclose(h[healthy], 0.05, rtol=1e-9)
        assert np.all(np.diff(h[wearing]) > 0)  # strictly monotone toward the failure
        assert h[run.failure - run.start] == pytest.approx(1.0, rel=1e-12)
        assert np.all(np.diff(vib[wearing]) > 0)
        np.testing.assert_allclose(vib, 1.0 + 4.0 * h, rtol=1e-12)  # vibration_rms = 1 + 4h
    assert CONTROL_SOURCE in rows
    control = np.array([d for _, d in rows[CONTROL_SOURCE]])
    np.testing.assert_allclose(control[:, 0], 1.0 + 4.0 * 0.05, rtol=1e-6)


def test_with_noise_the_wear_shows_far_above_the_healthy_level():
    m = MaintenanceScenario(failure_steps=(300,), control=True, seed=3)
    rows, _ = _collect(m, 300)
    vib = np.array([d[0] for _, d in rows["maintenance.m1.run1"]])
    healthy, late = vib[:120], vib[270:300]
    noise = 0.05 * (1 + 0.05)
    assert abs(healthy.mean() - 1.2) < 4.5 * noise / math.sqrt(healthy.size)
    assert late.mean() > healthy.mean() + 10 * healthy.std()
    # block means rise monotonically through the degradation (block noise << the trend)
    blocks = vib[120:300].reshape(6, 30).mean(axis=1)
    assert np.all(np.diff(blocks) > 0)
    control = np.array([d[0] for _, d in rows[CONTROL_SOURCE]])
    assert abs(control.mean() - 1.2) < 4.5 * noise / math.sqrt(control.size)


def test_same_seed_same_stream_and_names():
    def run(seed: int) -> list:
        m = MaintenanceScenario(failure_steps=(20, 30), downtime_steps=3, seed=seed)
        return [p for _ in range(100) for p in next(m)]

    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert [p.data for p in a] != [p.data for p in c]
    assert {p.source for p in a} >= {"maintenance.m1.run4", "maintenance.m2.run3", CONTROL_SOURCE}


def test_bad_parameters_are_named():
    with pytest.raises(InvalidParameterError, match="'failure_steps' parameter"):
        next(MaintenanceScenario(failure_steps=(1,)))
    with pytest.raises(InvalidParameterError, match="'onset_fraction' parameter"):
        next(MaintenanceScenario(onset_fraction=1.0))
    with pytest.raises(InvalidParameterError, match="'horizon' parameter"):
        next(MaintenanceScenario(horizon=0))
