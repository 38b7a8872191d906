"""Scoring what the platform answered against what the scenario knows.

:class:`ScenarioScore` receives every acknowledged point and every prediction of one
scenario and keeps:

- **directional hit rate**: a prediction for step ``k`` of a source with horizon ``h`` is
  scored when the point of step ``k + h`` of that source has been acknowledged: a hit when
  the stated direction matches the sign of ``target[k + h] - target[k]``. Warming-up and
  ``hold`` predictions and zero changes are not scored (as in :mod:`nqp.demo`). The rolling
  rate is over the last ``rolling_window`` scored predictions; the p-value is the two-sided
  binomial test against a fair coin.
- **anomalies** (points carrying labels): mean ``anomaly_score`` and the share of scores
  ``>= alarm_threshold`` on labelled and on normal points, and per anomaly kind how many
  planted anomalies were seen (at least one scored point inside) and detected (a score
  ``>= alarm_threshold`` at one of those points).
- **degradation alarms** (maintenance): per source the mean of the last ``alarm_window``
  calibrated ``P(up)`` of the target (``confidence`` of an ``up``, ``1 - confidence`` of a
  ``down``, 0.5 for ``hold``; warming-up predictions skipped); an alarm is raised when it
  reaches ``alarm_p``. For each run the first alarm after the degradation onset is
  compared with the known failure step; alarms on the control machine, and on a run
  before its onset, are false alarms.
"""

from __future__ import annotations

import math
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import Any

from scipy.stats import binomtest

from nqp.scenarios.base import ScenarioPoint

__all__ = [
    "AnomalyStats",
    "HitStats",
    "KindDetection",
    "MaintenanceStats",
    "RunOutcome",
    "ScenarioScore",
]


@dataclass(frozen=True)
class HitStats:
    """Directional record: ``hits`` right out of ``calls`` scored predictions."""

    calls: int
    hits: int
    hit_rate: float
    rolling_hit_rate: float
    rolling_window: int
    p_value: float


@dataclass(frozen=True)
class KindDetection:
    """Planted anomalies of one kind: ``seen`` had a scored point, ``detected`` an alarm."""

    kind: str
    seen: int
    detected: int


@dataclass(frozen=True)
class AnomalyStats:
    """Anomaly scores on labelled versus normal points (IoT scenario)."""

    threshold: float
    labelled_points: int
    normal_points: int
    mean_score_labelled: float
    mean_score_normal: float
    alarm_rate_labelled: float
    alarm_rate_normal: float
    kinds: tuple[KindDetection, ...]


@dataclass(frozen=True)
class RunOutcome:
    """A machine run against its known degradation onset and failure step.

    ``alarm_step`` is the first step of the first alarm episode that began at or after the
    onset and ``lead_steps`` its distance to the failure; ``early_alarms`` counts alarm
    episodes that began before the onset, while the machine was still healthy (false
    alarms; one that lasts past the onset is not a detection). ``status`` is
    ``"flagged before failure"``, ``"flagged after failure"``, ``"not flagged"`` (the
    failure step was reached without an alarm) or ``"running"`` (neither yet).
    """

    source: str
    onset_step: int
    failure_step: int
    alarm_step: int | None
    lead_steps: int | None
    early_alarms: int
    status: str


@dataclass(frozen=True)
class MaintenanceStats:
    """Degradation alarms of every run and false alarms of the control machine."""

    alarm_p: float
    alarm_window: int
    runs: tuple[RunOutcome, ...]
    control_points: int
    control_alarms: int


@dataclass
class _Tally:
    count: int = 0
    total: float = 0.0
    alarms: int = 0


def _p_up(pred: dict[str, Any]) -> float:
    direction = pred["direction"]
    if direction == "up":
        return float(pred["confidence"])
    if direction == "down":
        return 1.0 - float(pred["confidence"])
    return 0.5


class ScenarioScore:
    """Running scores of one scenario (see the module docstring).

    Parameters
    ----------
    scenario : object
        The scenario; its ``anomalies_`` (IoT) and ``runs_`` (maintenance) are read.
    rolling_window : int, default=200
    alarm_threshold : float, default=0.5
        Anomaly score counted as an alarm.
    alarm_window : int, default=20
        Predictions averaged by the degradation alarm.
    alarm_p : float, default=0.8
        Mean ``P(up)`` that raises a degradation alarm.
    control_source : str or None
        Source whose alarms are false alarms.
    """

    def __init__(
        self,
        scenario: Any,
        *,
        rolling_window: int = 200,
        alarm_threshold: float = 0.5,
        alarm_window: int = 20,
        alarm_p: float = 0.8,
        control_source: str | None = None,
    ) -> None:
        self.scenario = scenario
        self.rolling_window = rolling_window
        self.alarm_threshold = alarm_threshold
        self.alarm_window = alarm_window
        self.alarm_p = alarm_p
        self.control_source = control_source
        self._targets: dict[str, dict[int, float]] = defaultdict(dict)
        self._last_step: dict[str, int] = {}
        self._pending: dict[str, deque[tuple[int, str, int, bool]]] = defaultdict(deque)
        self.calls = 0
        self.hits = 0
        self._rolling: deque[int] = deque(maxlen=rolling_window)
        # anomalies
        self._labelled = _Tally()
        self._normal = _Tally()
        self._events_indexed = 0
        self._events: dict[str, list[Any]] = defaultdict(list)
        self._seen: set[Any] = set()
        self._detected: set[Any] = set()
        # degradation alarms
        self._p_window: dict[str, deque[float]] = {}
        self._alarm_step: dict[str, int] = {}
        self._alarming: dict[str, bool] = {}
        self._runs: dict[str, Any] = {}
        self._early: dict[str, int] = {}
        self.control_points = 0
        self.control_alarms = 0

    # ------------------------------------------------------------------ input
    def on_sent(self, points: list[ScenarioPoint]) -> None:
        """Points of one source acknowledged by the server, in order."""
        if not points:
            return
        source = points[0].source
        targets = self._targets[source]
        for p in points:
            targets[p.step] = p.target
        self._last_step[source] = points[-1].step
        self._resolve(source)

    def on_prediction(self, point: ScenarioPoint, pred: dict[str, Any]) -> None:
        """The server's prediction for ``point`` (after :meth:`on_sent` of its batch)."""
        source = point.source
        warming = bool(pred.get("warming_up", False))
        self._pending[source].append(
            (point.step, str(pred["direction"]), int(pred.get("horizon", 1)), warming)
        )
        self._resolve(source)
        if "anomaly_score" in pred:
            self._score_anomaly(point, float(pred["anomaly_score"]))
        if not warming:
            self._degradation(point, pred)

    # ------------------------------------------------------------------ hit rate
    def _resolve(self, source: str) -> None:
        pending = self._pending[source]
        targets = self._targets[source]
        last = self._last_step.get(source, -1)
        while pending and pending[0][0] + pending[0][2] <= last:
            step, direction, horizon, warming = pending.popleft()
            now, later = targets.get(step), targets.get(step + horizon)
            if warming or direction == "hold" or now is None or later is None or later == now:
                continue
            hit = int((later > now) == (direction == "up"))
            self.calls += 1
            self.hits += hit
            self._rolling.append(hit)
        # keep only the targets a pending prediction (or a future one) may still need
        keep_from = pending[0][0] if pending else last
        if len(targets) > 4096:
            for k in [k for k in targets if k < keep_from]:
                del targets[k]

    def hit_stats(self) -> HitStats:
        """The directional record so far."""
        rate = self.hits / self.calls if self.calls else math.nan
        rolling = sum(self._rolling) / len(self._rolling) if self._rolling else math.nan
        p_value = float(binomtest(self.hits, self.calls, 0.5).pvalue) if self.calls else 1.0
        return HitStats(self.calls, self.hits, rate, rolling, self.rolling_window, p_value)

    # ------------------------------------------------------------------ anomalies
    def _score_anomaly(self, point: ScenarioPoint, score: float) -> None:
        events = getattr(self.scenario, "anomalies_", None)
        if events is None:
            return
        alarm = score >= self.alarm_threshold
        tally = self._labelled if point.anomaly else self._normal
        tally.count += 1
        tally.total += score
        tally.alarms += int(alarm)
        for event in events[self._events_indexed :]:
            self._events[event.source].append(event)
        self._events_indexed = len(events)
        if point.anomaly:
            for event in reversed(self._events[point.source]):
                if event.start <= point.step < event.end:
                    self._seen.add(event)
                    if alarm:
                        self._detected.add(event)
                    break

    def anomaly_stats(self) -> AnomalyStats | None:
        """Scores on labelled versus normal points (None for scenarios without labels)."""
        if getattr(self.scenario, "anomalies_", None) is None:
            return None
        kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for event in self._seen:
            kinds[event.kind][0] += 1
            kinds[event.kind][1] += int(event in self._detected)
        lab, nor = self._labelled, self._normal
        return AnomalyStats(
            threshold=self.alarm_threshold,
            labelled_points=lab.count,
            normal_points=nor.count,
            mean_score_labelled=lab.total / lab.count if lab.count else math.nan,
            mean_score_normal=nor.total / nor.count if nor.count else math.nan,
            alarm_rate_labelled=lab.alarms / lab.count if lab.count else math.nan,
            alarm_rate_normal=nor.alarms / nor.count if nor.count else math.nan,
            kinds=tuple(KindDetection(k, s, d) for k, (s, d) in sorted(kinds.items())),
        )

    # ------------------------------------------------------------------ degradation
    def _degradation(self, point: ScenarioPoint, pred: dict[str, Any]) -> None:
        runs = getattr(self.scenario, "runs_", None)
        if runs is None:
            return
        for run in runs[len(self._runs) :]:
            self._runs[run.source] = run
        source = point.source
        window = self._p_window.setdefault(source, deque(maxlen=self.alarm_window))
        window.append(_p_up(pred))
        alarm = len(window) == self.alarm_window and sum(window) / len(window) >= self.alarm_p
        new_episode = alarm and not self._alarming.get(source, False)
        self._alarming[source] = alarm
        if source == self.control_source:
            self.control_points += 1
            self.control_alarms += int(new_episode)
            return
        run = self._runs.get(source)
        if run is None or not new_episode:
            return  # an alarm raised while healthy that lasts past the onset is no detection
        if point.step < run.onset:
            self._early[source] = self._early.get(source, 0) + 1
        elif source not in self._alarm_step:
            self._alarm_step[source] = point.step

    def maintenance_stats(self) -> MaintenanceStats | None:
        """Each run's alarms against its onset and failure (None for other scenarios)."""
        runs = getattr(self.scenario, "runs_", None)
        if runs is None:
            return None
        outcomes = []
        for run in runs:
            last = self._last_step.get(run.source)
            if last is None:
                continue  # nothing of this run was acknowledged
            alarm = self._alarm_step.get(run.source)
            lead = None if alarm is None else run.failure - alarm
            if lead is not None:
                status = "flagged before failure" if lead >= 0 else "flagged after failure"
            else:
                status = "not flagged" if last >= run.failure else "running"
            early = self._early.get(run.source, 0)
            outcomes.append(
                RunOutcome(run.source, run.onset, run.failure, alarm, lead, early, status)
            )
        return MaintenanceStats(
            alarm_p=self.alarm_p,
            alarm_window=self.alarm_window,
            runs=tuple(outcomes),
            control_points=self.control_points,
            control_alarms=self.control_alarms,
        )
