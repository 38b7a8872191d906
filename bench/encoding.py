"""Spike-encoding throughput: 1024 series x 100 steps, against snnTorch's times on this machine.

snnTorch's ``spikegen`` was timed (1 thread) on a (100 steps, 1024 series) tensor, one time bin
per step, i.e. 102,400 values: rate 1.4 ms, latency 0.24 ms, delta 0.95 ms (DESIGN.md §7).
snnTorch was not installed for this script (no torch); its figures are the reference
constants below. Comparable NQP workloads, one input channel, ``substeps=1`` and
``neurons_per_channel=2`` (the minimum for a signed code: one "on" and one "off" neuron, so
NQP writes twice snnTorch's 102,400 output bins):

``steps``       100 calls of ``encode`` on a batch of 1024 sources (the streaming path; delta
                carries its per-source state between calls; rate gets per-source counters).
``one_call``    rate/temporal: one ``encode`` of a batch of 102,400 rows; delta: one
                ``encode_sequence`` of shape (1024, 100, 1) with state.
``substeps100`` rate/temporal: one ``encode`` of 1024 rows with ``substeps=100`` (snnTorch's
                ``num_steps=100`` reading of the same workload).

Prints one JSON line per figure. Run: ``.venv/bin/python bench/encoding.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np
from threadpoolctl import threadpool_limits

from nqp.neuromorphic.encoding import SpikeEncoder

SNNTORCH_MS = {"rate": 1.4, "temporal": 0.24, "delta": 0.95}
N_SERIES, N_STEPS = 1024, 100


def _times_ms(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, min) wall time in ms; the minimum is the least disturbed by other load."""
    fn()  # warm-up: compile/load the numba kernels, fit the layout
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3), float(np.min(times) * 1e3)


def _workloads(method: str, z: np.ndarray) -> dict[str, Callable[[], object]]:
    """z of shape (N_SERIES, N_STEPS): normalised observations."""
    enc = SpikeEncoder(method=method, substeps=1, neurons_per_channel=2, seed=0)
    source_ids = np.arange(N_SERIES, dtype=np.uint64) << np.uint64(32)
    counters = source_ids[:, None] + np.arange(N_STEPS, dtype=np.uint64)[None, :]
    steps_x = [np.ascontiguousarray(z[:, t : t + 1]) for t in range(N_STEPS)]
    steps_c = [np.ascontiguousarray(counters[:, t]) for t in range(N_STEPS)]

    if method == "delta":

        def steps() -> None:
            state = enc.init_state(N_SERIES, 1)
            for t in range(N_STEPS):
                enc.encode(steps_x[t], state=state)

        def one_call() -> None:
            enc.encode_sequence(z[:, :, None], state=enc.init_state(N_SERIES, 1))

        return {"steps": steps, "one_call": one_call}

    rows = z.reshape(-1, 1)
    flat_counters = counters.reshape(-1)
    wide = SpikeEncoder(method=method, substeps=N_STEPS, neurons_per_channel=2, seed=0)
    col = np.ascontiguousarray(z[:, :1])

    def steps() -> None:
        for t in range(N_STEPS):
            enc.encode(steps_x[t], counters=steps_c[t])

    def one_call() -> None:
        enc.encode(rows, counters=flat_counters)

    def substeps100() -> None:
        wide.encode(col, counters=counters[:, 0])

    return {"steps": steps, "one_call": one_call, "substeps100": substeps100}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    z = np.random.default_rng(args.seed).normal(size=(N_SERIES, N_STEPS))
    with threadpool_limits(1):
        for method in ("rate", "temporal", "delta"):
            for workload, fn in _workloads(method, z).items():
                ms, best = _times_ms(fn, args.repeats)
                ref = SNNTORCH_MS[method]
                print(
                    json.dumps(
                        {
                            "bench": "encoding",
                            "method": method,
                            "workload": workload,
                            "n_values": N_SERIES * N_STEPS,
                            "median_ms": round(ms, 4),
                            "min_ms": round(best, 4),
                            "repeats": args.repeats,
                            "snntorch_ref_ms": ref,
                            "within_ref": ms <= ref,
                            "machine": platform.machine(),
                            "loadavg_1m": round(os.getloadavg()[0], 2),
                        }
                    ),
                    flush=True,
                )


if __name__ == "__main__":
    main()
