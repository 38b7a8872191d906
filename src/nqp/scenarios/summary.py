"""What a scenario run reports: :class:`ScenarioSummary` (and the portfolio's own figures)."""

from __future__ import annotations

from dataclasses import dataclass

from nqp.scenarios.scoring import AnomalyStats, HitStats, MaintenanceStats

__all__ = ["PortfolioStats", "ScenarioSummary"]


@dataclass(frozen=True)
class PortfolioStats:
    """Re-optimisations and how the chosen portfolios fared against equal weight."""

    optimisations: int
    periods_scored: int
    mean_realised_return: float
    mean_benchmark_return: float
    last_selected: tuple[str, ...]


@dataclass(frozen=True)
class ScenarioSummary:
    """What one scenario sent, what came back and how right it was.

    Attributes
    ----------
    scenario : str
    sources : int
        Sources streamed (machine runs count once each).
    requested_rate, achieved_rate : float
        Points per second asked for and acknowledged (``points_sent / elapsed_s``).
    elapsed_s : float
        From the first scheduled point to the last answer.
    points_generated, points_sent, points_lost : int
        Produced by the scenario; acknowledged by the server (each got a prediction,
        stored and streamed by the server; the answer carries the last one of a request);
        dropped after an error. ``points_generated - points_sent - points_lost`` were still
        waiting when the run was cut short.
    requests, predictions_received, retries, errors : int
        HTTP requests answered 2xx; predictions in their bodies; 429/503 and connection
        retries; requests that failed for good (``error_samples`` shows a few).
    sequence_mismatches : int
        Answers whose ``sequence`` did not match the points sent (should be 0).
    latency_p50_ms, latency_p95_ms : float
        Round-trip time of successful requests (the last attempt).
    hits : HitStats or None
    anomalies : AnomalyStats or None
    maintenance : MaintenanceStats or None
    portfolio : PortfolioStats or None
    """

    scenario: str
    sources: int
    requested_rate: float
    achieved_rate: float
    elapsed_s: float
    points_generated: int
    points_sent: int
    points_lost: int
    requests: int
    predictions_received: int
    retries: int
    errors: int
    sequence_mismatches: int
    latency_p50_ms: float
    latency_p95_ms: float
    hits: HitStats | None = None
    anomalies: AnomalyStats | None = None
    maintenance: MaintenanceStats | None = None
    portfolio: PortfolioStats | None = None
    error_samples: tuple[str, ...] = ()
    events: tuple[tuple[int, str], ...] = ()
