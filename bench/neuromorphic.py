"""Reservoir accuracy and throughput: NQP side by side with ReservoirPy, one JSON line per figure.

Run: ``.venv/bin/python bench/neuromorphic.py`` (needs the ``bench`` extra: reservoirpy).
BLAS is pinned to one thread. Timings are medians of repeats; every line carries the
load average (the machine may be shared).

Figures
-------
* Mackey-Glass (``nqp.datasets.mackey_glass``, tau=17, one sample per time unit,
  normalised to [-1, 1]): the readout maps the state at ``t`` to ``u[t + h]``,
  h = 1 and h = 84 (direct, not iterated). NRMSE = RMSE / std(target) on the test
  span. Both libraries: same units, spectral radius, leak, input scaling,
  connectivities, bias scale, ridge alpha, washout, split; each draws its own random
  matrices; median over 3 seeds.
* ESN throughput at 1000 units: single stream µs/step (``step`` per observation, and
  ``run`` over a sequence); stream-steps/s over 256 and 1000 streams (NQP steps them
  together, ReservoirPy runs one stream at a time: its best per-stream rate is its
  ``run`` rate).
* Same matrices run by NQP (float32 state) and ReservoirPy (float64): state difference
  and NRMSE, isolating precision from initialisation.
* LIF 1000 neurons, 10 % connectivity, 256 sources, 10 bins per observation fed from
  the rate spike encoder: ms per observation and per bin, with the firing rate (the
  trace mean, spikes per bin), at the defaults and at a lower input connectivity, with
  1 and 2 numba threads (the kernel splits the sources between threads).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from threadpoolctl import threadpool_limits

from nqp.datasets import mackey_glass
from nqp.neuromorphic.reservoir import EchoStateReservoir, LIFReservoir
from nqp.readout import RidgeReadout

HP = {
    "spectral_radius": 0.99,
    "leak": 0.3,
    "input_scaling": 1.0,
    "connectivity": 0.1,
    "input_connectivity": 1.0,
    "bias_scaling": 0.2,
    "ridge_alpha": 1e-7,
}
WASHOUT, N_TRAIN, N_TEST = 200, 5000, 2000
HORIZONS = (1, 84)
SEEDS = (0, 1, 2)


def emit(**fields: Any) -> None:
    fields = {"bench": "neuromorphic", **fields, "loadavg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(fields), flush=True)


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def nrmse(pred: np.ndarray, target: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - target) ** 2)) / np.std(target))


def mackey_glass_series() -> np.ndarray:
    n = WASHOUT + N_TRAIN + N_TEST + max(HORIZONS)
    x = mackey_glass(n, tau=17.0, sample_every=1.0, discard=1000)
    return 2.0 * (x - x.min()) / (x.max() - x.min()) - 1.0


def fit_and_score(states: np.ndarray, u: np.ndarray, fit: Callable) -> dict[int, float]:
    """states (T, N) after input u[t]; returns NRMSE per horizon on the test span."""
    out = {}
    tr = slice(WASHOUT, WASHOUT + N_TRAIN)
    te = slice(WASHOUT + N_TRAIN, WASHOUT + N_TRAIN + N_TEST)
    for h in HORIZONS:
        target = np.roll(u, -h)
        predict = fit(states[tr], target[tr])
        out[h] = nrmse(predict(states[te]), target[te])
    return out


def nqp_states(units: int, seed: int, u: np.ndarray) -> np.ndarray:
    esn = EchoStateReservoir(
        n_neurons=units,
        n_inputs=1,
        connectivity=HP["connectivity"],
        spectral_radius=HP["spectral_radius"],
        leak=HP["leak"],
        input_scaling=HP["input_scaling"],
        input_connectivity=HP["input_connectivity"],
        bias_scaling=HP["bias_scaling"],
        seed=seed,
    )
    return esn.run(u[:, None])


def nqp_fit(x: np.ndarray, y: np.ndarray) -> Callable:
    return RidgeReadout(alpha=HP["ridge_alpha"]).fit(x, y).predict


def rpy_reservoir(units: int, seed: int, connectivity: float = HP["connectivity"]) -> Any:
    from reservoirpy.mat_gen import bernoulli
    from reservoirpy.nodes import Reservoir

    return Reservoir(
        units,
        lr=HP["leak"],
        sr=HP["spectral_radius"],
        input_scaling=HP["input_scaling"],
        input_connectivity=HP["input_connectivity"],
        rc_connectivity=connectivity,
        bias=functools.partial(bernoulli, input_scaling=HP["bias_scaling"]),
        seed=seed,
    )


def rpy_fit(x: np.ndarray, y: np.ndarray) -> Callable:
    from reservoirpy.nodes import Ridge

    readout = Ridge(ridge=HP["ridge_alpha"]).fit(x, y[:, None])
    return lambda s: readout.run(s)[:, 0]


def bench_mackey_glass() -> None:
    u = mackey_glass_series()
    for units in (500, 1000):
        scores: dict[str, dict[int, list[float]]] = {
            "nqp": {h: [] for h in HORIZONS},
            "reservoirpy": {h: [] for h in HORIZONS},
        }
        radius_rpy = []
        for seed in SEEDS:
            for h, v in fit_and_score(nqp_states(units, seed, u), u, nqp_fit).items():
                scores["nqp"][h].append(v)
            res = rpy_reservoir(units, seed)
            states = res.run(u[:, None])
            radius_rpy.append(float(np.abs(np.linalg.eigvals(res.W.toarray())).max()))
            for h, v in fit_and_score(states, u, rpy_fit).items():
                scores["reservoirpy"][h].append(v)
        for h in HORIZONS:
            a = statistics.median(scores["nqp"][h])
            b = statistics.median(scores["reservoirpy"][h])
            emit(
                task=f"mackey_glass_{h}step",
                units=units,
                nqp_nrmse=a,
                reservoirpy_nrmse=b,
                ratio=a / b,
                nqp_all=scores["nqp"][h],
                reservoirpy_all=scores["reservoirpy"][h],
            )
        emit(
            figure="reservoirpy_true_spectral_radius",
            units=units,
            asked=HP["spectral_radius"],
            got=radius_rpy,
        )


def bench_float32_state() -> None:
    """Same matrices in ReservoirPy (float64 state) and NQP (float32): isolates precision."""
    from reservoirpy.nodes import Reservoir

    u = mackey_glass_series()
    esn = EchoStateReservoir(
        n_neurons=500,
        n_inputs=1,
        connectivity=HP["connectivity"],
        spectral_radius=HP["spectral_radius"],
        leak=HP["leak"],
        input_scaling=HP["input_scaling"],
        input_connectivity=HP["input_connectivity"],
        bias_scaling=HP["bias_scaling"],
        seed=0,
    )
    s32 = esn.run(u[:, None])
    twin = Reservoir(
        W=esn.W_.astype(np.float64),
        Win=esn.W_in_.astype(np.float64),
        bias=esn.bias_.astype(np.float64),
        lr=HP["leak"],
    )
    s64 = twin.run(u[:, None])
    a = fit_and_score(s32, u, nqp_fit)
    b = fit_and_score(s64, u, nqp_fit)
    emit(
        figure="esn_same_matrices_float32_vs_float64",
        units=500,
        max_abs_state_diff=float(np.abs(s32 - s64).max()),
        nqp_float32_nrmse=a,
        reservoirpy_float64_nrmse=b,
    )


def bench_esn_throughput(connectivity: float) -> None:
    units, n_steps = 1000, 2000
    rng = np.random.default_rng(0)
    u = rng.uniform(-1, 1, (n_steps, 1))
    esn = EchoStateReservoir(units, 1, connectivity=connectivity, seed=0)
    state = esn.init_state(1)
    u_steps = [u[t].reshape(1, 1, 1) for t in range(n_steps)]

    def nqp_step_loop() -> None:
        for x in u_steps:
            esn.step(state, x)

    nqp_step_loop()
    t_nqp_step = median_time(nqp_step_loop, 5) / n_steps
    esn.run(u[:10])
    t_nqp_run = median_time(lambda: esn.run(u), 5) / n_steps

    res = rpy_reservoir(units, 0, connectivity)
    res.run(u[:10])
    rows = [u[t] for t in range(n_steps)]

    def rpy_step_loop() -> None:
        for x in rows:
            res.step(x)

    t_rpy_step = median_time(rpy_step_loop, 3) / n_steps
    t_rpy_run = median_time(lambda: res.run(u), 3) / n_steps
    for name, a, b in (
        ("esn_single_stream_us_per_step", t_nqp_step, t_rpy_step),
        ("esn_single_stream_us_per_step_run", t_nqp_run, t_rpy_run),
    ):
        emit(
            figure=name,
            units=units,
            connectivity=connectivity,
            nqp=a * 1e6,
            reservoirpy=b * 1e6,
            ratio=b / a,
        )
    rpy_rate = 1.0 / min(t_rpy_run, t_rpy_step)
    for n_streams in (256, 1000):
        state = esn.init_state(n_streams)
        x = rng.uniform(-1, 1, (n_streams, 1, 1))
        esn.step(state, x)
        per_step = median_time(lambda state=state, x=x: esn.step(state, x), 7)
        rate = n_streams / per_step
        emit(
            figure="esn_stream_steps_per_s",
            units=units,
            connectivity=connectivity,
            streams=n_streams,
            nqp=rate,
            nqp_ms_per_step=per_step * 1e3,
            reservoirpy=rpy_rate,
            ratio=rate / rpy_rate,
        )


def bench_lif() -> None:
    from nqp.neuromorphic.encoding import SpikeEncoder

    n_sources, substeps = 256, 10
    encoder = SpikeEncoder(method="rate", substeps=substeps, neurons_per_channel=8, seed=0)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((20, n_sources, 1))
    spikes = [encoder.encode(z[t], counters=np.full(n_sources, t)) for t in range(20)]
    n_in = spikes[0].shape[2]
    # Cost per bin ~ n_neurons + (firing neurons) x (synapses per neuron): the second
    # configuration drives fewer neurons from the input, so the network fires less.
    # The kernel splits the sources over numba's threads (results identical for any count).
    thread_counts = sorted({1, min(2, numba.config.NUMBA_NUM_THREADS)})
    for extra, threads in itertools.product(({}, {"input_connectivity": 0.05}), thread_counts):
        numba.set_num_threads(threads)
        lif = LIFReservoir(
            n_neurons=1000, n_inputs=n_in, connectivity=0.1, seed=0, n_threads=threads, **extra
        )
        state = lif.init_state(n_sources)
        for t in range(10):  # settle, and compile
            lif.step(state, spikes[t])
        rates: list[float] = []

        def obs(lif: LIFReservoir = lif, state: Any = state, rates: list = rates) -> None:
            for t in range(10, 20):
                rates.append(float(lif.step(state, spikes[t]).mean()))

        per_obs = median_time(obs, 5) / 10
        emit(
            figure="lif_ms_per_observation",
            neurons=1000,
            connectivity=0.1,
            params=extra,
            numba_threads=threads,
            sources=n_sources,
            substeps=substeps,
            input_neurons=n_in,
            input_spike_rate_per_bin=float(np.mean([s.mean() for s in spikes])),
            firing_rate_per_bin=statistics.mean(rates),
            nqp_ms_per_observation=per_obs * 1e3,
            nqp_ms_per_bin=per_obs * 1e3 / substeps,
            nqp_us_per_source_observation=per_obs * 1e6 / n_sources,
        )


def main() -> None:
    t0 = time.perf_counter()
    with threadpool_limits(1):
        emit(
            figure="setup",
            python=sys.version.split()[0],
            cpus=os.cpu_count(),
            washout=WASHOUT,
            train=N_TRAIN,
            test=N_TEST,
            hyper_parameters=HP,
        )
        bench_mackey_glass()
        bench_float32_state()
        for connectivity in (0.1, 0.01):
            bench_esn_throughput(connectivity)
        bench_lif()
    emit(figure="bench_wall_s", seconds=time.perf_counter() - t0)


if __name__ == "__main__":
    main()
