"""Engine alone: predictions/s of ``Platform.process_many_json`` for waves of warmed sources.

Two figures per wave width: ``engine_wave``, every warmed source in every wave (their
state rows are consecutive, so the engine steps them in place), and ``engine_wave_scattered``,
each wave a random half of twice as many warmed sources (as concurrent realtime requests for
many sources give: state rows gathered and scattered, the readout's stepped by row index).
Then ``engine_wave_evicting``: waves alternating between two sets of (at most 256) sources
with ``max_sources`` one set, so every wave evicts the other set to checkpoints and restores
its own, beside the same waves with every source resident. Then ``readout_step``: the online
readout's update and prediction at the engine's feature count for the widest wave, fused
(``RLSReadout.learn_predict``, as the engine steps it) beside ``learn`` then ``predict``,
alternating on copies of the same states (and checked equal bit for bit), and the update
kernel alone in the order it takes past its overflow bounds (every row checked before any
is written). Then ``store_growth``: the store doubling from 1,024 held sources, in place
beside copying into new arrays (the reference), and growing by its step in place (as the
engine grows it at that size). BLAS pinned to one thread. Usage:
``.venv/bin/python bench/engine.py [--widths 1,256,1000] [--waves 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nqp import Platform
from nqp.config import Settings
from nqp.engine.platform import ProcessItem
from nqp.engine.store import GROWTH_STEP_ROWS, SourceStore
from nqp.readout import _rls_update

WARM_POINTS = 40  # past the default warm-up of 30 outcomes


def measure(width: int, waves: int, *, scattered: bool = False, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    platform = Platform()
    pool = 2 * width if scattered else width
    sources = [f"t/s{i}" for i in range(pool)]
    walk = np.cumsum(rng.standard_normal((WARM_POINTS + waves, pool)), axis=0)

    def wave(k: int, picked: np.ndarray) -> list[ProcessItem]:
        return [ProcessItem(sources[j], [float(walk[k, j])], [1.7e9 + k], None) for j in picked]

    for k in range(WARM_POINTS):
        platform.process_many_json(wave(k, np.arange(pool)))
    times = []
    for k in range(WARM_POINTS, WARM_POINTS + waves):
        picked = rng.permutation(pool)[:width] if scattered else np.arange(pool)
        items = wave(k, picked)
        start = time.perf_counter()
        platform.process_many_json(items)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {"median_wave_ms": round(median * 1e3, 3), "predictions_per_s": round(width / median)}


def measure_evicting(width: int, waves: int, seed: int = 0) -> dict[str, float]:
    """Waves alternating between two sets of ``width`` sources with ``max_sources = width``.

    Every wave evicts the other set (each source checkpointed into the in-memory sink) and
    restores its own from their checkpoints: the engine's cost when more sources are active
    than it may hold. Returned beside the same waves with every source resident.
    """
    rng = np.random.default_rng(seed)
    walk = np.cumsum(rng.standard_normal((WARM_POINTS + waves, 2 * width)), axis=0)
    sources = [f"t/s{i}" for i in range(2 * width)]
    out: dict[str, float] = {}
    for name, max_sources in (("evicting", width), ("resident", 2 * width)):
        platform = Platform(Settings(engine={"max_sources": max_sources}))
        times = []
        for k in range(WARM_POINTS + waves):
            picked = range(width) if k % 2 == 0 else range(width, 2 * width)
            items = [
                ProcessItem(sources[j], [float(walk[k, j])], [1.7e9 + k], None) for j in picked
            ]
            start = time.perf_counter()
            platform.process_many_json(items)
            if k >= WARM_POINTS:
                times.append(time.perf_counter() - start)
        median = float(np.median(times))
        out[f"{name}_wave_ms"] = round(median * 1e3, 3)
        out[f"{name}_predictions_per_s"] = round(width / median)
    out["ratio"] = round(out["evicting_predictions_per_s"] / out["resident_predictions_per_s"], 3)
    return out


def readout_step(width: int, repeats: int, seed: int = 0) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    rls = Platform().pipeline.readout
    d = rls.n_features
    x = rng.standard_normal((repeats + 41, width, d))
    y = rng.standard_normal((repeats + 41, width))
    state = rls.init_state(width)
    for t in range(40):  # P away from its initial diagonal
        rls.learn(state, x[t], y[t])
    fused, apart, checked = state.copy(), state.copy(), state.copy()
    lam, p_max = rls.forgetting, rls.variance_cap / rls.delta
    times: dict[str, list[float]] = {
        "learn_predict": [],
        "learn_then_predict": [],
        "update_checked_two_pass": [],
    }
    for t in range(40, 40 + repeats):
        start = time.perf_counter()
        got = rls.learn_predict(fused, x[t], y[t], x[t + 1])
        times["learn_predict"].append(time.perf_counter() - start)
        start = time.perf_counter()
        rls.learn(apart, x[t], y[t])
        want = rls.predict(apart, x[t + 1])
        times["learn_then_predict"].append(time.perf_counter() - start)
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))
        # the kernel alone in the order taken past the overflow bounds (every row
        # prepared and checked, then every row applied: P read twice)
        start = time.perf_counter()
        _rls_update(
            checked.w, checked.P, checked.resid_var, checked.resid_weight,
            x[t], y[t], lam, lam, p_max, x[t + 1], np.arange(width), row_by_row=False,
        )  # fmt: skip
        times["update_checked_two_pass"].append(time.perf_counter() - start)
        assert np.array_equal(checked.P, fused.P)
    us = {k: round(float(np.median(v)) / width * 1e6, 2) for k, v in times.items()}
    return {
        "sources": width,
        "n_features": d,
        "us_per_source": us,
        "speedup": round(us["learn_then_predict"] / us["learn_predict"], 2),
        "bitwise_equal": True,
    }


def _held_store(rows: int) -> SourceStore:
    """A default engine's store of ``rows`` rows, every page of them written (mapped), as
    in an engine holding that many sources; no reference to its arrays is left behind (it
    would stop numpy from resizing them)."""
    store = Platform().store
    store._grow(rows)
    for state in store.states.values():
        for array in state.arrays().values():
            array[...] = array
    return store


def store_growth(rows: int, repeats: int) -> dict[str, object]:
    """Doubling a default engine's store from ``rows`` (all held) to ``2 * rows`` rows.

    ``in_place``: :meth:`SourceStore._grow` (each array reallocated,
    :meth:`BatchState.grow`); ``copy``: the reference, a new state per component from its
    factory with the held rows copied in (what the store did before); ``in_place_step``:
    what the engine's store does at ``rows`` now, in place by ``GROWTH_STEP_ROWS`` rows when
    ``rows`` exceeds it. Alternating, each on a new platform whose held rows have been
    written (mapped) first.
    """
    step = min(rows, GROWTH_STEP_ROWS)
    times: dict[str, list[float]] = {"in_place": [], "copy": [], "in_place_step": []}
    for _ in range(repeats):
        for how in times:
            store = _held_store(rows)
            start = time.perf_counter()
            if how == "in_place":
                store._grow(2 * rows)
            elif how == "in_place_step":
                store._grow(rows + step)
            else:
                for name, state in store.states.items():
                    grown = store.factories[name](2 * rows)
                    grown.put(slice(0, rows), state)
                    store.states[name] = grown
            times[how].append(time.perf_counter() - start)
            del store
    ms = {k: round(float(np.median(v)) * 1e3, 1) for k, v in times.items()}
    return {
        "rows": f"{rows} -> {2 * rows} (step: -> {rows + step})",
        "median_ms": ms,
        "runs_ms": {k: [round(t * 1e3) for t in v] for k, v in times.items()},
        "ratio": round(ms["copy"] / ms["in_place"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="1,256,1000")
    parser.add_argument("--waves", type=int, default=20)
    args = parser.parse_args()
    with threadpool_limits(1):
        for width in (int(w) for w in args.widths.split(",")):
            for scattered in (False, True):
                out = measure(width, args.waves, scattered=scattered)
                figure = "engine_wave_scattered" if scattered else "engine_wave"
                line = {"figure": figure, "sources": width, **out}
                print(json.dumps(line | {"loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)
        widest = max(int(w) for w in args.widths.split(","))
        evicting = min(widest, 256)
        line = {"figure": "engine_wave_evicting", "sources": evicting}
        line |= measure_evicting(evicting, args.waves)
        print(json.dumps(line | {"loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)
        line = {"figure": "readout_step", **readout_step(widest, max(args.waves, 20))}
        print(json.dumps(line | {"loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)
        line = {"figure": "store_growth", **store_growth(1024, 5)}
        print(json.dumps(line | {"loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
