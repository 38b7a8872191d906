"""``nqp optimize``: solve max-cut, QUBO and portfolio problems from files.

Each command prints one JSON object with ``--json`` (else a short summary). A file that
does not parse, or a parameter out of range, exits with code 2 and a one-line message
naming the line or field (no traceback).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from nqp.exceptions import InvalidParameterError, NQPError
from nqp.quantum.optimize import (
    OptimizationResult,
    minimize_qubo,
    solve_maxcut,
    solve_portfolio,
)
from nqp.quantum.problems import read_gset, read_portfolio_json, read_qubo_json

__all__ = ["optimize_app"]

optimize_app = typer.Typer(
    help="Ground states of Ising / QUBO problems: max-cut, QUBO, portfolio selection.",
    no_args_is_help=True,
    add_completion=False,
)

FileArg = Annotated[Path, typer.Argument(help="Problem file.", show_default=False, dir_okay=False)]
TimeLimit = Annotated[
    float | None,
    typer.Option("--time-limit", help="Seconds; annealing stops starting reads/sweeps after it."),
]
Seed = Annotated[int | None, typer.Option("--seed", help="Seed of the annealing reads.")]
Reads = Annotated[int, typer.Option("--reads", help="Annealing reads.")]
Sweeps = Annotated[int, typer.Option("--sweeps", help="Metropolis sweeps per read.")]
Method = Annotated[
    str, typer.Option("--method", help="auto (exact for <= 20 variables), exact or anneal.")
]
Jobs = Annotated[int | None, typer.Option("--jobs", help="Threads (default: all cores).")]
Beta = Annotated[
    str,
    typer.Option(
        "--beta",
        help="Annealing inverse temperatures: 'typical' (default rule), 'neal', or 'HOT,COLD'.",
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def _num(v: float) -> float | int:
    """An int when the value is integral (cut sizes of integer graphs), else the float."""
    f = float(v)
    return int(f) if f.is_integer() and abs(f) < 2**53 else f


def _beta(text: str) -> str | tuple[float, float]:
    if text in ("neal", "typical"):
        return text
    try:
        hot, cold = (float(v) for v in text.split(","))
    except ValueError:
        raise InvalidParameterError(
            f"--beta must be 'neal', 'typical' or 'HOT,COLD' (two numbers). Got {text!r}."
        ) from None
    return hot, cold


def _common(r: OptimizationResult, seed: int | None) -> dict[str, Any]:
    return {
        "energy": float(r.energy),
        "time_s": float(r.time_s),
        "method": r.method,
        "optimal": r.optimal,
        "reads": r.num_reads,
        "reads_completed": r.reads_completed,
        "sweeps": r.num_sweeps,
        "seed": seed,
        "beta_range": None if r.beta_range is None else list(r.beta_range),
    }


def _run(build: Callable[[], dict[str, Any]], as_json: bool, summary: Callable[..., str]) -> None:
    try:
        out = build()
    except (NQPError, OSError) as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(out))
    else:
        typer.echo(summary(out))


@optimize_app.command("maxcut")
def maxcut(
    file: FileArg,
    time_limit: TimeLimit = None,
    seed: Seed = None,
    reads: Reads = 16,
    sweeps: Sweeps = 1000,
    method: Method = "auto",
    jobs: Jobs = None,
    beta: Beta = "typical",
    best_known: Annotated[
        float | None, typer.Option("--best-known", help="Reference cut for the gap.")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Maximum cut of a graph in Gset format (first line 'nodes edges', then 'i j w')."""

    def build() -> dict[str, Any]:
        problem = read_gset(file)
        r = solve_maxcut(
            problem,
            method=method,
            num_reads=reads,
            num_sweeps=sweeps,
            time_limit=time_limit,
            seed=seed,
            n_jobs=jobs,
            beta_range=_beta(beta),
            best_known=best_known,
        )
        return {
            "problem": "maxcut",
            "file": str(file),
            "nodes": problem.n_nodes,
            "edges": int(problem.edges.shape[0]),
            "cut": _num(r.details["cut"]),
            **_common(r, seed),
            "best_known": best_known,
            "gap": r.gap,
            "partition": r.solution.astype(int).tolist(),
        }

    def summary(o: dict[str, Any]) -> str:
        gap = "" if o["gap"] is None else f", gap {_num(o['gap'])} to {_num(o['best_known'])}"
        return (
            f"max-cut {o['file']}: {o['nodes']} nodes, {o['edges']} edges\n"
            f"cut {o['cut']} (energy {o['energy']:g}){gap}\n"
            f"{o['method']}: {o['reads_completed']}/{o['reads']} reads, {o['time_s']:.3f} s"
        )

    _run(build, as_json, summary)


@optimize_app.command("qubo")
def qubo(
    file: FileArg,
    time_limit: TimeLimit = None,
    seed: Seed = None,
    reads: Reads = 16,
    sweeps: Sweeps = 1000,
    method: Method = "auto",
    jobs: Jobs = None,
    beta: Beta = "typical",
    as_json: AsJson = False,
) -> None:
    """Minimise x^T Q x + offset from JSON: {"Q": [[...]]} or {"n": N, "terms": [[i, j, w]]}."""

    def build() -> dict[str, Any]:
        Q, offset = read_qubo_json(file)
        r = minimize_qubo(
            Q,
            offset,
            method=method,
            num_reads=reads,
            num_sweeps=sweeps,
            time_limit=time_limit,
            seed=seed,
            n_jobs=jobs,
            beta_range=_beta(beta),
        )
        return {
            "problem": "qubo",
            "file": str(file),
            "variables": int(r.solution.shape[0]),
            **_common(r, seed),
            "solution": r.solution.astype(int).tolist(),
        }

    def summary(o: dict[str, Any]) -> str:
        ones = int(np.sum(o["solution"]))
        return (
            f"QUBO {o['file']}: {o['variables']} variables\n"
            f"energy {o['energy']:g} ({ones} variables set)\n"
            f"{o['method']}: {o['reads_completed']}/{o['reads']} reads, {o['time_s']:.3f} s"
        )

    _run(build, as_json, summary)


@optimize_app.command("portfolio")
def portfolio(
    file: FileArg,
    time_limit: TimeLimit = None,
    seed: Seed = None,
    reads: Reads = 16,
    sweeps: Sweeps = 1000,
    method: Method = "auto",
    jobs: Jobs = None,
    beta: Beta = "typical",
    as_json: AsJson = False,
) -> None:
    """Choose exactly 'budget' assets maximising mu^T x - q x^T Sigma x (JSON input)."""

    def build() -> dict[str, Any]:
        problem = read_portfolio_json(file)
        r = solve_portfolio(
            problem,
            method=method,
            num_reads=reads,
            num_sweeps=sweeps,
            time_limit=time_limit,
            seed=seed,
            n_jobs=jobs,
            beta_range=_beta(beta),
        )
        d = r.details
        return {
            "problem": "portfolio",
            "file": str(file),
            "assets": int(r.solution.shape[0]),
            "budget": int(problem.budget),
            "selected": d["selected"],
            "expected_return": d["expected_return"],
            "risk": d["risk"],
            "objective": r.objective,
            "budget_satisfied": d["budget_satisfied"],
            "penalty": d["penalty"],
            **_common(r, seed),
        }

    def summary(o: dict[str, Any]) -> str:
        return (
            f"portfolio {o['file']}: {o['budget']} of {o['assets']} assets\n"
            f"selected {o['selected']}\n"
            f"expected return {o['expected_return']:.6g}, risk (variance) {o['risk']:.6g}, "
            f"objective {o['objective']:.6g}\n"
            f"{o['method']}: {o['reads_completed']}/{o['reads']} reads, {o['time_s']:.3f} s"
        )

    _run(build, as_json, summary)
