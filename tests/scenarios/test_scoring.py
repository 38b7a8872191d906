"""Scenario scores against brute-force recounts of planted predictions."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from scipy.stats import binomtest

from nqp.scenarios import AnomalyEvent, MachineRun, ScenarioPoint, ScenarioScore


@dataclass
class Fake:
    anomalies_: list = field(default_factory=list)


@dataclass
class FakeMachines:
    runs_: list = field(default_factory=list)


def _pred(direction: str, confidence: float = 0.6, horizon: int = 1, **extra) -> dict:
    return {"direction": direction, "confidence": confidence, "horizon": horizon, **extra}


def test_hit_rate_matches_a_brute_force_recount(rng):
    n, horizon = 600, 3
    targets = np.round(rng.standard_normal(n).cumsum(), 1)  # rounding makes some zero changes
    score = ScenarioScore(object(), rolling_window=50)
    points = [ScenarioPoint("s", k, float(k), targets[k], targets[k]) for k in range(n)]
    k, predicted = 0, []
    while k < n:  # batches of 1-4 points; the prediction is the last point's
        size = int(rng.integers(1, 5))
        batch = points[k : k + size]
        k += size
        direction = ["up", "down", "hold"][int(rng.integers(3))]
        warming = batch[-1].step < 40
        score.on_sent(batch)
        score.on_prediction(batch[-1], _pred(direction, horizon=horizon, warming_up=warming))
        predicted.append((batch[-1].step, direction, warming))
    outcomes = []
    for step, direction, warming in predicted:
        if warming or direction == "hold" or step + horizon >= n:
            continue
        change = targets[step + horizon] - targets[step]
        if change != 0:
            outcomes.append(int((change > 0) == (direction == "up")))
    stats = score.hit_stats()
    assert stats.calls == len(outcomes) > 100
    assert stats.hits == sum(outcomes)
    assert stats.hit_rate == pytest.approx(np.mean(outcomes))
    assert stats.rolling_hit_rate == pytest.approx(np.mean(outcomes[-50:]))
    assert stats.p_value == pytest.approx(binomtest(sum(outcomes), len(outcomes), 0.5).pvalue)


def test_a_prediction_is_scored_only_once_its_horizon_point_is_acknowledged():
    score = ScenarioScore(object())
    pts = [ScenarioPoint("s", k, 0.0, float(v), float(v)) for k, v in enumerate([1, 2, 3, 2])]
    score.on_sent(pts[:1])
    score.on_prediction(pts[0], _pred("up", horizon=2))
    score.on_sent(pts[1:2])
    score.on_prediction(pts[1], _pred("up", horizon=2))
    assert score.hit_stats().calls == 0  # step 2 not acknowledged yet
    score.on_sent(pts[2:4])
    score.on_prediction(pts[3], _pred("down", horizon=2))
    # step 0: 1 -> 3 with "up": a hit; step 1: 2 -> 2, no change: not scored;
    # step 3: its horizon point (5) has not been sent
    stats = score.hit_stats()
    assert (stats.calls, stats.hits) == (1, 1)
    assert stats.p_value == pytest.approx(1.0)


def test_anomaly_scores_and_detections_per_kind():
    events = [
        AnomalyEvent("a", "spike", 10, 11, 3.0),
        AnomalyEvent("a", "stuck", 20, 25, 1.0),
        AnomalyEvent("b", "spike", 5, 6, -3.0),
    ]
    score = ScenarioScore(Fake(events), alarm_threshold=0.5)
    labelled = {("a", 10): 0.9, ("a", 21): 0.1, ("a", 22): 0.2, ("b", 5): 0.4}
    normal = {("a", 3): 0.7, ("a", 4): 0.1, ("b", 1): 0.0, ("b", 2): 0.2}
    for (src, k), s in {**labelled, **normal}.items():
        p = ScenarioPoint(src, k, 0.0, 1.0, 1.0, anomaly=(src, k) in labelled)
        score.on_sent([p])
        score.on_prediction(p, _pred("up", anomaly_score=s))
    a = score.anomaly_stats()
    assert (a.labelled_points, a.normal_points) == (4, 4)
    assert a.mean_score_labelled == pytest.approx(np.mean(list(labelled.values())))
    assert a.mean_score_normal == pytest.approx(np.mean(list(normal.values())))
    assert a.alarm_rate_labelled == pytest.approx(1 / 4)
    assert a.alarm_rate_normal == pytest.approx(1 / 4)
    assert [(k.kind, k.seen, k.detected) for k in a.kinds] == [("spike", 2, 1), ("stuck", 1, 0)]
    assert ScenarioScore(object()).anomaly_stats() is None


def _p_up_stream(score: ScenarioScore, source: str, steps: range, p_up) -> None:
    for k in steps:
        p = ScenarioPoint(source, k, 0.0, (1.0,), 1.0)
        score.on_sent([p])
        q = p_up(k)
        pred = _pred("up", q) if q >= 0.5 else _pred("down", 1.0 - q)
        score.on_prediction(p, {**pred, "warming_up": k < 5})


def test_degradation_alarms_against_onset_failure_and_the_control():
    runs = [
        MachineRun("m1", 1, 0, 30, 80, 90),  # alarm after the onset, before the failure
        MachineRun("m2", 2, 0, 30, 80, 90),  # an alarm while still healthy, none after
        MachineRun("m3", 3, 0, 30, 200, 220),  # still running at the end
    ]
    score = ScenarioScore(FakeMachines(runs), alarm_window=20, alarm_p=0.8, control_source="c")
    _p_up_stream(score, "m1", range(90), lambda k: 0.95 if k >= 50 else 0.5)
    _p_up_stream(score, "m2", range(90), lambda k: 0.95 if k < 28 else 0.3)
    _p_up_stream(score, "m3", range(90), lambda k: 0.5)
    _p_up_stream(score, "c", range(100), lambda k: 0.9 if 20 <= k < 40 or 60 <= k < 90 else 0.5)
    m = score.maintenance_stats()
    by = {r.source: r for r in m.runs}
    # m1: the mean of 20 reaches 0.8 once 14 of them are 0.95 (0.5 + 0.45 * 14/20 = 0.815)
    assert (by["m1"].alarm_step, by["m1"].lead_steps, by["m1"].early_alarms) == (63, 17, 0)
    assert by["m1"].status == "flagged before failure"
    # m2: alarm from step 24 (20 predictions of 0.95 after the 5 warming-up ones) to 31,
    # begun before the onset at 30: a false alarm, and no detection afterwards
    assert (by["m2"].alarm_step, by["m2"].early_alarms) == (None, 1)
    assert by["m2"].status == "not flagged"
    assert by["m3"].status == "running"
    # the control alarms from step 34 (15 of 20 at 0.9) to 44 and from 74 on: two episodes
    assert m.control_alarms == 2
    assert m.control_points == 95  # the five warming-up predictions are skipped
    assert (m.alarm_window, m.alarm_p) == (20, 0.8)
