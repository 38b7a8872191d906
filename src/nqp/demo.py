"""A terminal demo: stream generated series through :class:`nqp.Platform` and show what it says.

Until the HTTP service exists, ``nqp demo`` (and so ``make demo``) runs this. Two sources
are streamed side by side, one point per source per call, exactly as live traffic would
arrive: a Mackey-Glass series (deterministic chaos, predictable one step ahead) and a
random walk (unpredictable by construction). Every ``every`` points a line shows each
source's latest prediction and what the engines saw; at the end the realised hit rates
are tested against a fair coin. The platform should be confident and right on the first
and say "coin flip" (confidence near 0.5) on the second: the numbers printed are measured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from nqp.config import Settings
from nqp.datasets import mackey_glass
from nqp.engine import Platform, ProcessItem
from nqp.types import Direction, Prediction

__all__ = ["DemoSummary", "SourceScore", "run_stream_demo"]


@dataclass(frozen=True)
class SourceScore:
    """Realised directional record of one demo source after warm-up."""

    source: str
    calls: int
    hits: int
    hit_rate: float
    p_value: float
    mean_confidence: float


@dataclass(frozen=True)
class DemoSummary:
    """Scores of every demo source."""

    n_points: int
    sources: dict[str, SourceScore]


def _score(source: str, preds: list[Prediction], values: np.ndarray) -> SourceScore:
    hits = calls = 0
    confidences = []
    for k, p in enumerate(preds[:-1]):
        change = values[k + 1] - values[k]
        if p.warming_up or p.direction is Direction.HOLD or change == 0:
            continue
        calls += 1
        hits += int((change > 0) == (p.direction is Direction.UP))
        confidences.append(p.confidence)
    p_value = float(binomtest(hits, calls, 0.5).pvalue) if calls else 1.0
    return SourceScore(
        source=source,
        calls=calls,
        hits=hits,
        hit_rate=hits / calls if calls else float("nan"),
        p_value=p_value,
        mean_confidence=float(np.mean(confidences)) if confidences else float("nan"),
    )


def _line(p: Prediction, value: float) -> str:
    parts = [
        f"{p.source:>12s} t={p.sequence:4d} x={value:+9.4f} -> {p.direction.value:4s} "
        f"conf {p.confidence:.2f} exp.change {p.expected_change:+.4f} "
        f"anomaly {p.anomaly_score:.2f}"
    ]
    if p.warming_up:
        parts.append("(warming up)")
    if p.neuromorphic_results is not None:
        nr = p.neuromorphic_results
        top = sorted(nr.patterns.items(), key=lambda kv: -kv[1])[:2]
        parts.append(
            f"| spikes {nr.spike_analysis.spike_count:4d} "
            + " ".join(f"{k} {v:.2f}" for k, v in top)
        )
    if p.quantum_results is not None:
        q = p.quantum_results
        state = "converged" if q.convergence.converged else "washing out"
        parts.append(f"| E {q.energy:+.2f} coh {q.phase_coherence:.2f} {state}")
    return " ".join(parts)


def run_stream_demo(
    settings: Settings,
    *,
    n_points: int = 600,
    every: int = 50,
    echo: Callable[[str], None] = print,
) -> DemoSummary:
    """Stream ``n_points`` of two series through a fresh platform, printing as it goes.

    Parameters
    ----------
    settings : Settings
        Engine settings (``settings.seed`` also seeds the random walk).
    n_points : int, default=600
        Points per source.
    every : int, default=50
        Print one line per source every ``every`` points.
    echo : callable
        Where lines go.
    """
    if n_points < 100:
        raise ValueError(f"n_points must be at least 100, got {n_points}.")
    rng = np.random.default_rng(settings.seed)
    series = {
        "mackey-glass": mackey_glass(n_points, discard=200),
        "random-walk": 100.0 + np.cumsum(rng.standard_normal(n_points)),
    }
    platform = Platform(settings)
    neuro, quantum = settings.neuromorphic, settings.quantum
    echo(
        f"NQP demo: {n_points} points of {len(series)} sources through the platform "
        f"({neuro.reservoir.upper()} reservoir of {neuro.n_neurons} neurons, {neuro.encoding} "
        f"encoding; quantum reservoir of {quantum.qubit_count} qubits = "
        f"{2**quantum.qubit_count} basis states)"
    )
    preds: dict[str, list[Prediction]] = {name: [] for name in series}
    for t in range(n_points):
        items = [ProcessItem(name, [float(v[t])], float(t)) for name, v in series.items()]
        for name, out in zip(series, platform.process_many(items), strict=True):
            preds[name].append(out[0])
            if t % every == 0 or t == n_points - 1:
                echo(_line(out[0], float(series[name][t])))
    scores = {name: _score(name, preds[name], v) for name, v in series.items()}
    for s in scores.values():
        echo(
            f"{s.source}: {s.hits}/{s.calls} directions right after warm-up "
            f"(hit rate {s.hit_rate:.3f}, binomial p = {s.p_value:.2g} against a fair coin), "
            f"mean stated confidence {s.mean_confidence:.3f}"
        )
    return DemoSummary(n_points=n_points, sources=scores)
