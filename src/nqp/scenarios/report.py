"""Plain-text summaries of scenario runs (what ``nqp demo`` prints at the end)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from nqp.scenarios.summary import ScenarioSummary

__all__ = ["format_summary", "print_summaries"]


def _f(value: float, digits: int = 3) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def format_summary(s: ScenarioSummary) -> str:
    """A few lines stating what one scenario sent, got back and scored."""
    lines = [f"== {s.scenario} =="]
    if s.portfolio is None:
        lines.append(
            f"points sent {s.points_sent:,} of {s.points_generated:,} produced "
            f"({s.points_lost:,} lost) from {s.sources} sources in {s.elapsed_s:.1f} s: "
            f"{s.achieved_rate:,.0f} points/s (requested {s.requested_rate:,.0f}/s)"
        )
        per_request = s.points_sent / s.requests if s.requests else math.nan
        lines.append(
            f"predictions received {s.predictions_received:,} in {s.requests:,} requests "
            f"({_f(per_request, 1)} points/request), retries {s.retries:,}, errors {s.errors:,}, "
            f"sequence mismatches {s.sequence_mismatches:,}; latency p50 "
            f"{_f(s.latency_p50_ms, 1)} ms, p95 {_f(s.latency_p95_ms, 1)} ms"
        )
    if s.hits is not None:
        h = s.hits
        lines.append(
            f"directional hit rate {_f(h.hit_rate)} over {h.calls:,} scored predictions "
            f"(last {h.rolling_window}: {_f(h.rolling_hit_rate)}; binomial p = {h.p_value:.2g} "
            "against a fair coin)"
        )
    if s.events:
        lines.append("events: " + ", ".join(f"{e} at step {k}" for k, e in s.events))
    if s.anomalies is not None:
        a = s.anomalies
        lines.append(
            f"anomaly score: mean {_f(a.mean_score_labelled)} on {a.labelled_points:,} labelled "
            f"points vs {_f(a.mean_score_normal)} on {a.normal_points:,} normal ones; "
            f"score >= {a.threshold:g} on {_f(100 * a.alarm_rate_labelled, 1)}% of labelled, "
            f"{_f(100 * a.alarm_rate_normal, 1)}% of normal points"
        )
        if a.kinds:
            lines.append(
                "planted anomalies detected (an alarm inside the window): "
                + ", ".join(f"{k.kind} {k.detected}/{k.seen}" for k in a.kinds)
            )
    if s.maintenance is not None:
        m = s.maintenance
        lines.append(
            f"degradation alarm = mean P(up) of the last {m.alarm_window} predictions "
            f">= {m.alarm_p:g}:"
        )
        for r in m.runs:
            at = "" if r.alarm_step is None else f" at step {r.alarm_step}"
            lead = "" if r.lead_steps is None else f", {r.lead_steps} steps before failure"
            early = f"; {r.early_alarms} false alarm(s) while healthy" if r.early_alarms else ""
            lines.append(
                f"  {r.source}: degrades from step {r.onset_step}, fails at {r.failure_step}; "
                f"{r.status}{at}{lead}{early}"
            )
        lines.append(
            f"  healthy control machine: {m.control_alarms} false alarm(s) in "
            f"{m.control_points:,} predictions"
        )
    if s.portfolio is not None:
        p = s.portfolio
        lines.append(
            f"{p.optimisations} re-optimisations ({s.requests} requests, retries {s.retries}, "
            f"errors {s.errors}; latency p50 {_f(s.latency_p50_ms, 1)} ms); last holding "
            f"{', '.join(p.last_selected) or 'none'}"
        )
        lines.append(
            f"held portfolios returned {_f(100 * p.mean_realised_return, 4)}% per period vs "
            f"{_f(100 * p.mean_benchmark_return, 4)}% for equal weight "
            f"({p.periods_scored} periods)"
        )
    for e in s.error_samples:
        lines.append(f"  error: {e}")
    return "\n".join(lines)


def print_summaries(
    summaries: Mapping[str, ScenarioSummary], echo: Callable[[str], None] = print
) -> None:
    """Print :func:`format_summary` of every scenario."""
    for s in summaries.values():
        echo(format_summary(s))
