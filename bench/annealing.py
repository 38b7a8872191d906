"""Ising optimiser benchmark: NQP simulated annealing and exact enumeration vs dwave-samplers.

Prints one JSON line per figure. Run from the repository root:

    .venv/bin/python bench/annealing.py            # about 2-4 minutes on 2 cores
    .venv/bin/python bench/annealing.py --reads 200

Figures
-------
- ``single_anneal``: one call, one read, ``num_sweeps`` sweeps on Gset G1 / G22, NQP vs
  dwave-samplers' ``SimulatedAnnealingSampler`` (neal) with the same sweeps and each one's
  default beta range; median wall time and median cut over ``--repeats`` calls.
- ``tts``: time to reach a target cut with 99 % probability,
  ``TTS = t_read · ln(0.01) / ln(1 − p)``, ``p`` = fraction of ``--reads`` independent reads
  (distinct streams) that reach the target, ``t_read`` = wall time of the batch / reads:
  NQP runs its reads on 2 threads (so ``t_read`` is per read on 2 cores), neal on one
  (it has no parallel reads). Both samplers get the same sweeps and the same beta range,
  from the ``neal`` rule (both defaults) and from NQP's ``typical`` rule. Targets: the best
  known cut and 99.9 % of it (rounded up).
  ``p_ci95`` is the Wilson interval of ``p`` and ``tts_ci95`` the TTS range it implies.
- ``exact``: all 2^20 states of a random 20-variable QUBO, NQP's Gray-code enumeration vs
  dimod's ``ExactSolver``; both must agree on the minimum.

Every line carries ``loadavg`` (1-minute load average when the figure was taken): the
machine is shared, and a load above the core count inflates wall times.
BLAS is pinned to one thread.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nqp.quantum.annealing import anneal, default_beta_range
from nqp.quantum.ising import IsingModel
from nqp.quantum.optimize import enumerate_ising
from nqp.quantum.problems import MaxCutProblem, read_gset

GSET = Path(__file__).resolve().parents[1] / "../shared/data/gset"
BEST_KNOWN = {"G1": 11624, "G22": 13359}
# Time-to-target runs: (beta_range rule, sweeps). "neal" is dwave-samplers' default rule
# (also NQP's default); "typical" is NQP's other rule (see default_beta_range), with the
# sweep count picked from a small grid (500/1000/2000) on each graph.
TTS_RUNS = {
    "G1": (("neal", 1000), ("typical", 1000)),
    "G22": (("neal", 1000), ("typical", 2000)),
}


def emit(figure: str, **fields: Any) -> None:
    rec = {"figure": figure, **fields, "loadavg": round(os.getloadavg()[0], 2)}
    print(json.dumps(rec), flush=True)


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return max(0.0, c - h), min(1.0, c + h)


def tts(t_read: float, p: float) -> float | None:
    if p <= 0:
        return None
    if p >= 1:
        return t_read
    return t_read * math.log(0.01) / math.log(1 - p)


def rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def tts_fields(cuts: np.ndarray, target: int, t_read: float) -> dict[str, Any]:
    k = int(np.count_nonzero(cuts >= target))
    n = cuts.size
    lo, hi = wilson(k, n)
    return {
        "target": target,
        "p_success": k / n,
        "p_ci95": [round(lo, 4), round(hi, 4)],
        "tts_s": rounded(tts(t_read, k / n)),
        "tts_ci95_s": [rounded(tts(t_read, hi)), rounded(tts(t_read, lo))],
    }


def neal_bqm(problem: MaxCutProblem) -> Any:
    import dimod

    J: dict[tuple[int, int], float] = {}
    for (i, j), w in zip(problem.edges.tolist(), problem.weights.tolist(), strict=True):
        key = (min(i, j), max(i, j))
        J[key] = J.get(key, 0.0) + w
    return dimod.BinaryQuadraticModel.from_ising(dict.fromkeys(range(problem.n_nodes), 0.0), J)


def bench_graph(name: str, args: argparse.Namespace, neal: Any) -> None:
    problem = read_gset(GSET / f"{name}.txt")
    model = problem.to_ising()
    W = problem.total_weight
    best = BEST_KNOWN[name]
    targets = (best, math.ceil(0.999 * best))
    sweeps = args.sweeps
    anneal(model, num_reads=2, num_sweeps=5, seed=0)  # load the compiled kernels

    # --- single anneal, same sweeps, each sampler's default beta range -------------------
    times, single = [], []
    for rep in range(args.repeats):
        t0 = time.perf_counter()
        r = anneal(model, num_reads=1, num_sweeps=sweeps, seed=rep, n_jobs=1)
        times.append(time.perf_counter() - t0)
        single.append(problem.cut_from_energy(r.best_energy))
    emit(
        "single_anneal",
        graph=name,
        sampler="nqp",
        sweeps=sweeps,
        beta_range="default",
        median_time_s=round(float(np.median(times)), 4),
        median_cut=float(np.median(single)),
        best_cut=float(max(single)),
        repeats=args.repeats,
    )
    if neal is not None:
        bqm = neal_bqm(problem)
        times, single = [], []
        for rep in range(args.repeats):
            t0 = time.perf_counter()
            ss = neal.sample(bqm, num_reads=1, num_sweeps=sweeps, seed=rep)
            times.append(time.perf_counter() - t0)
            single.append((W - float(ss.record.energy[0])) / 2)
        emit(
            "single_anneal",
            graph=name,
            sampler="neal",
            sweeps=sweeps,
            beta_range="default",
            median_time_s=round(float(np.median(times)), 4),
            median_cut=float(np.median(single)),
            best_cut=float(max(single)),
            repeats=args.repeats,
        )

    # --- time to target ---------------------------------------------------------------
    R = args.reads
    bqm = None if neal is None else neal_bqm(problem)
    for rule, sw in TTS_RUNS[name]:
        br = default_beta_range(model, rule)
        t0 = time.perf_counter()
        c0 = time.process_time()
        r = anneal(model, num_reads=R, num_sweeps=sw, beta_range=br, seed=args.seed, n_jobs=2)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - c0
        cuts = (W - r.energies) / 2
        for target in targets:
            emit(
                "tts",
                graph=name,
                sampler="nqp",
                threads=2,
                sweeps=sw,
                beta_rule=rule,
                beta_range=[round(b, 5) for b in br],
                reads=R,
                t_read_s=round(wall / R, 5),
                cpu_per_read_s=round(cpu / R, 5),
                median_cut=float(np.median(cuts)),
                max_cut=float(cuts.max()),
                **tts_fields(cuts, target, wall / R),
            )
        if neal is None:
            continue
        # neal with the same sweeps and the same beta range: its rule (its default) or ours
        t0 = time.perf_counter()
        ss = neal.sample(bqm, num_reads=R, num_sweeps=sw, beta_range=br, seed=args.seed)
        wall = time.perf_counter() - t0
        cuts = (W - ss.record.energy.astype(float)) / 2
        for target in targets:
            emit(
                "tts",
                graph=name,
                sampler="neal",
                threads=1,
                sweeps=sw,
                beta_rule=rule,
                beta_range=[round(b, 5) for b in br],
                reads=R,
                t_read_s=round(wall / R, 5),
                median_cut=float(np.median(cuts)),
                max_cut=float(cuts.max()),
                **tts_fields(cuts, target, wall / R),
            )


def bench_exact(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(args.seed)
    n = 20
    Q = np.triu(rng.normal(size=(n, n)))
    model = IsingModel.from_qubo(Q)
    enumerate_ising(model)  # load the compiled kernel
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        res = enumerate_ising(model)
        times.append(time.perf_counter() - t0)
    emit(
        "exact",
        sampler="nqp",
        n=n,
        median_time_s=round(float(np.median(times)), 5),
        min_energy=res.energy,
    )
    try:
        import dimod
    except ImportError:
        return
    bqm = dimod.BinaryQuadraticModel.from_qubo(
        {(i, j): float(Q[i, j]) for i in range(n) for j in range(i, n)}
    )
    solver = dimod.ExactSolver()
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        ss = solver.sample(bqm)
        emin = float(ss.record.energy.min())
        times.append(time.perf_counter() - t0)
    emit(
        "exact",
        sampler="dimod.ExactSolver",
        n=n,
        median_time_s=round(float(np.median(times)), 5),
        min_energy=emin,
        agrees=bool(abs(emin - res.energy) < 1e-9),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reads", type=int, default=100, help="reads (seeds) per TTS estimate")
    ap.add_argument("--sweeps", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=21, help="calls per single-anneal median")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--graphs", default="G1,G22")
    ap.add_argument("--no-neal", action="store_true")
    args = ap.parse_args()
    neal = None
    if not args.no_neal:
        try:
            from dwave.samplers import SimulatedAnnealingSampler

            neal = SimulatedAnnealingSampler()
        except ImportError:
            emit("note", message="dwave-samplers not installed: NQP figures only")
    with threadpool_limits(1):
        for name in args.graphs.split(","):
            if not (GSET / f"{name}.txt").exists():
                emit("note", message=f"{GSET / name}.txt not found: skipped")
                continue
            bench_graph(name, args, neal)
        bench_exact(args)


if __name__ == "__main__":
    main()
