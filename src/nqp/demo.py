"""A terminal demo: stream a generated series through both engines and say what they see.

Until the HTTP service exists, ``nqp demo`` (and so ``make demo``) runs this: each point
of a Mackey-Glass series is normalised, spike-encoded, stepped through the spiking
reservoir and the quantum reservoir, and scanned for patterns, one point at a time as a
live stream would arrive. At the end a ridge readout is fitted on the first part of the
stream's features and scored out of sample on the rest against persistence, so the
numbers printed are measured, never set.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from nqp.config import Settings
from nqp.datasets import mackey_glass
from nqp.neuromorphic.encoding import SpikeEncoder
from nqp.neuromorphic.normalization import OnlineNormalizer
from nqp.neuromorphic.patterns import PatternDetector
from nqp.neuromorphic.reservoir import EchoStateReservoir, LIFReservoir
from nqp.quantum.reservoir import QuantumReservoir
from nqp.readout import RidgeReadout

__all__ = ["DemoSummary", "run_stream_demo"]


@dataclass(frozen=True)
class DemoSummary:
    """Out-of-sample scores of the demo's offline readout (test part of the stream)."""

    n_points: int
    n_test: int
    nrmse: float
    persistence_nrmse: float
    hit_rate: float
    hit_rate_p_value: float


def run_stream_demo(
    settings: Settings,
    *,
    n_points: int = 600,
    every: int = 50,
    window: int = 20,
    echo: Callable[[str], None] = print,
) -> DemoSummary:
    """Stream ``n_points`` of Mackey-Glass through the engines, printing every ``every``-th.

    Parameters
    ----------
    settings : Settings
        Engine settings (reservoir kind and size, encoding, quantum reservoir size, seed).
    n_points : int, default=600
        Points streamed; the readout is fitted on the first 60 % after a 50-point washout.
    every : int, default=50
        Print one line per ``every`` points.
    window : int, default=20
        Observations in the spike window scanned for patterns.
    echo : callable
        Where lines go.

    Returns
    -------
    DemoSummary
    """
    if n_points < 200:
        raise ValueError(f"n_points must be at least 200, got {n_points}.")
    neuro, quantum = settings.neuromorphic, settings.quantum
    series = mackey_glass(n_points + 1, discard=200)
    normalizer = OnlineNormalizer(mode=neuro.normalization)
    encoder = SpikeEncoder(
        method=neuro.encoding,
        substeps=neuro.substeps,
        neurons_per_channel=neuro.neurons_per_channel,
        seed=settings.seed,
    )
    n_in = encoder.n_input_neurons(1)
    reservoir: LIFReservoir | EchoStateReservoir
    if neuro.reservoir == "lif":
        reservoir = LIFReservoir(
            neuro.n_neurons,
            n_in,
            connectivity=neuro.connectivity,
            spectral_radius=neuro.spectral_radius,
            seed=settings.seed,
        )
    else:
        reservoir = EchoStateReservoir(
            neuro.n_neurons,
            n_in,
            connectivity=neuro.connectivity,
            spectral_radius=neuro.spectral_radius,
            leak=neuro.leak,
            seed=settings.seed,
        )
    qres = QuantumReservoir(
        quantum.qubit_count,
        evolution_time=quantum.evolution_time,
        virtual_nodes=quantum.virtual_nodes,
        energy_tolerance=quantum.energy_tolerance,
        seed=settings.seed,
    )
    detector = PatternDetector()
    norm_state = normalizer.init_state(1, 1)
    enc_state = encoder.init_state(1, 1)
    res_state = reservoir.init_state(1)
    q_state = qres.init_state(1)
    pat_state = detector.new_state(1, neuro.n_neurons)
    bins = window * neuro.substeps
    raster = np.zeros((1, bins, neuro.n_neurons), dtype=bool)
    recent = np.zeros((1, window))

    echo(
        f"NQP demo: {n_points} Mackey-Glass points, {neuro.reservoir.upper()} reservoir of "
        f"{neuro.n_neurons} neurons, {neuro.encoding} encoding ({neuro.substeps} bins/point), "
        f"quantum reservoir of {quantum.qubit_count} qubits (2^{quantum.qubit_count} states)"
    )
    features = []
    z_all = np.empty(n_points + 1)
    for t in range(n_points + 1):
        x = series[t : t + 1].reshape(1, 1)
        z = normalizer.update_transform(norm_state, x)
        z_all[t] = z[0, 0]
        spikes = encoder.encode(z, counters=np.array([t], dtype=np.uint64), state=enc_state)
        fired = np.zeros((1, neuro.substeps, neuro.n_neurons), dtype=bool)
        if isinstance(reservoir, LIFReservoir):
            trace = reservoir.step(res_state, spikes, raster_out=fired)
        else:  # rate-based: no spikes of its own; patterns see the input raster's shape only
            trace = reservoir.step(res_state, spikes.astype(np.float32))
        raster = np.concatenate([raster[:, neuro.substeps :], fired], axis=1)
        recent = np.concatenate([recent[:, 1:], z], axis=1)
        qfeat = qres.step(q_state, np.tanh(z))
        report = detector.detect(raster, recent, state=pat_state)
        features.append(np.concatenate([trace[0], qfeat[0], report.to_array()[0], z[0]]))
        if t % every == 0 or t == n_points:
            q = qres.report(q_state)
            top = sorted(report.kinds, key=lambda k: -report.strength[k][0])[:3]
            patterns = ", ".join(f"{k} {report.strength[k][0]:.2f}" for k in top)
            echo(
                f"t={t:4d} x={x[0, 0]:.4f} z={z[0, 0]:+.2f} "
                f"spikes/bin={fired.sum() / neuro.substeps:5.1f} "
                f"patterns[{patterns}] quantum[E={q.energy[0]:+.3f} "
                f"coherence={q.phase_coherence[0]:.3f} "
                f"{'converged' if q.converged[0] else 'washing out'} "
                f"after {int(q.iterations[0])}]"
            )

    X = np.asarray(features[:-1])
    y = z_all[1:]  # next normalised change, known only one step later
    washout = 50
    split = washout + int(0.6 * (n_points - washout))
    readout = RidgeReadout(alpha=1e-3).fit(X[washout:split], y[washout:split])
    pred = readout.predict(X[split:])
    truth = y[split:]
    persistence = z_all[split:-1]
    scale = float(np.std(truth)) or 1.0
    nrmse = float(np.sqrt(np.mean((pred - truth) ** 2)) / scale)
    p_nrmse = float(np.sqrt(np.mean((persistence - truth) ** 2)) / scale)
    moving = truth != 0
    hits = int(np.sum(np.sign(pred[moving]) == np.sign(truth[moving])))
    n_dir = int(moving.sum())
    p_value = float(binomtest(hits, n_dir, 0.5, alternative="greater").pvalue) if n_dir else 1.0
    summary = DemoSummary(
        n_points=n_points,
        n_test=len(truth),
        nrmse=nrmse,
        persistence_nrmse=p_nrmse,
        hit_rate=hits / n_dir if n_dir else float("nan"),
        hit_rate_p_value=p_value,
    )
    echo(
        f"Out of sample ({summary.n_test} points, readout fitted on the {split - washout} "
        f"before): NRMSE {nrmse:.3f} (persistence {p_nrmse:.3f}), direction hit rate "
        f"{summary.hit_rate:.3f} (binomial p = {p_value:.2g} against 0.5)"
    )
    return summary
