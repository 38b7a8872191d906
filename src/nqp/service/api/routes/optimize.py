"""Quantum-engine optimisation over HTTP: portfolio selection, QUBO and max-cut.

The bodies mirror the files of ``nqp optimize`` (:mod:`nqp._cli_optimize`):

- ``POST /api/v1/optimize/portfolio``: ``{mu, sigma, budget, risk_aversion, penalty?}``;
- ``POST /api/v1/optimize/qubo``: ``{Q: [[...]]}`` or ``{n, terms: [[i, j, w], ...]}``,
  optional ``offset``;
- ``POST /api/v1/optimize/maxcut``: ``{n, edges: [[i, j, w], ...]}`` (``[i, j]`` means
  weight 1).

Node, variable and asset indices are **0-based** everywhere (as in ``terms`` of a QUBO file;
Gset files are 1-based, the API is not). Every body also takes the solver options
``method``, ``time_limit_s`` (default 10, at most 30), ``seed``, ``reads``, ``sweeps`` and
``beta``. Sizes are bounded (:data:`MAX_NODES`, :data:`MAX_VARIABLES`, :data:`MAX_TERMS`) so a
request cannot pin the server, and bad input is a 422 naming the field, e.g. ``edges[3]``.

Solving runs in a worker thread (``asyncio.to_thread``; the kernels release the GIL), at
most :data:`MAX_RUNNING` at a time per process with at most :data:`MAX_WAITING` more
waiting; beyond that a 429 with ``Retry-After``. Results are cached in ``runtime.cache``
under the SHA-256 of the tenant, the problem's canonical arrays and every solver option;
an identical request answers ``"cached": true`` with the same result. Requests without a
``seed`` that anneal draw fresh entropy and are never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import time
import weakref
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from fastapi import APIRouter, Response
from numpy.typing import NDArray
from pydantic import BaseModel, Field, StrictFloat, StrictInt

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.optimize import (
    AUTO_EXACT_VARIABLES,
    OptimizationResult,
    minimize_qubo,
    solve_maxcut,
    solve_portfolio,
)
from nqp.quantum.problems import MaxCutProblem, PortfolioProblem
from nqp.service.api.deps import DeveloperKey, RuntimeDep
from nqp.service.errors import ApiError
from nqp.service.runtime import Runtime

__all__ = [
    "MAX_EXACT_VARIABLES",
    "MAX_NODES",
    "MAX_RUNNING",
    "MAX_TERMS",
    "MAX_TIME_LIMIT_S",
    "MAX_TRACE_POINTS",
    "MAX_VARIABLES",
    "MAX_WAITING",
    "AdmissionGate",
    "MaxCutRequest",
    "MaxCutResult",
    "PortfolioRequest",
    "PortfolioResult",
    "QuboRequest",
    "QuboResult",
    "downsample_trace",
    "optimize_gate",
    "router",
]

router = APIRouter(prefix="/api/v1/optimize", tags=["optimize"])

#: Most nodes of a max-cut graph.
MAX_NODES = 5000
#: Most variables of a QUBO and assets of a portfolio.
MAX_VARIABLES = 2000
#: Most edges of a graph / sparse terms of a QUBO.
MAX_TERMS = 200_000
#: Most variables ``method="exact"`` may enumerate (2^24 states, well under a second).
MAX_EXACT_VARIABLES = 24
#: Upper bound of ``time_limit_s``, seconds.
MAX_TIME_LIMIT_S = 30.0
#: Points of the convergence trace returned at most.
MAX_TRACE_POINTS = 200
#: Solves running at once per process.
MAX_RUNNING = 2
#: Solves waiting for a slot at most (beyond: 429).
MAX_WAITING = 4
#: Threads per solve (the gateway shares its cores with the realtime path).
SOLVER_THREADS = 1
#: Lifetime of a cached result, seconds.
CACHE_TTL_S = 300.0


class AdmissionGate:
    """Bounded concurrency with a short queue: ``running`` at once, ``waiting`` more queued.

    ``try_enter`` admits a caller (False when ``running + waiting`` are already inside,
    so the route answers 429 instead of queueing without bound); ``slot`` is the
    semaphore of the ``running`` slots; ``leave`` must follow every successful
    ``try_enter``. Single event loop only (no locking needed for the counter).
    """

    def __init__(self, running: int, waiting: int) -> None:
        self.running = running
        self.waiting = waiting
        self.inside = 0
        self.slot = asyncio.Semaphore(running)

    def try_enter(self) -> bool:
        if self.inside >= self.running + self.waiting:
            return False
        self.inside += 1
        return True

    def leave(self) -> None:
        self.inside -= 1


_GATES: weakref.WeakKeyDictionary[Runtime, AdmissionGate] = weakref.WeakKeyDictionary()


def optimize_gate(runtime: Runtime) -> AdmissionGate:
    """The process's gate of optimisation solves (one per runtime)."""
    gate = _GATES.get(runtime)
    if gate is None:
        gate = _GATES[runtime] = AdmissionGate(MAX_RUNNING, MAX_WAITING)
    return gate


# --------------------------------------------------------------------------- requests

Number = StrictFloat  # accepts JSON ints and floats, rejects booleans and strings


class SolverOptions(BaseModel):
    """Options of the solver (:func:`nqp.quantum.optimize.minimize_qubo` and friends)."""

    model_config = {"extra": "forbid"}

    method: Literal["auto", "exact", "anneal"] = Field(
        "auto",
        description=f"auto: exact enumeration up to {AUTO_EXACT_VARIABLES} variables, "
        f"annealing above; exact is allowed up to {MAX_EXACT_VARIABLES} variables.",
    )
    time_limit_s: float = Field(
        10.0,
        gt=0.0,
        le=MAX_TIME_LIMIT_S,
        description="Seconds; annealing starts no read or sweep chunk after it.",
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**63 - 1,
        description="Seed of the annealing reads; same seed, same result (and cached).",
    )
    reads: int = Field(16, ge=1, le=256, description="Annealing reads.")
    sweeps: int = Field(1000, ge=1, le=100_000, description="Metropolis sweeps per read.")
    beta: Literal["typical", "neal"] | tuple[Number, Number] = Field(
        "typical", description="Inverse temperatures: a rule, or [hot, cold]."
    )


class PortfolioRequest(SolverOptions):
    """Choose exactly ``budget`` assets maximising ``mu^T x - risk_aversion x^T sigma x``."""

    mu: list[Number] = Field(
        min_length=1, max_length=MAX_VARIABLES, description="Expected returns, shape (n,)."
    )
    sigma: list[list[Number]] = Field(
        min_length=1, max_length=MAX_VARIABLES, description="Covariance, shape (n, n)."
    )
    budget: StrictInt = Field(ge=1, description="Assets to select, 1 <= budget <= n.")
    risk_aversion: Number = Field(ge=0.0, description="Weight of the variance (1 / return).")
    penalty: Number | None = Field(None, gt=0.0, description="Budget penalty (default: safe).")


class QuboRequest(SolverOptions):
    """Minimise ``x^T Q x + offset`` over binary ``x``: dense ``Q`` or sparse ``n, terms``."""

    Q: list[list[Number]] | None = Field(
        None, min_length=1, max_length=MAX_VARIABLES, description="Dense square matrix."
    )
    n: StrictInt | None = Field(None, ge=1, le=MAX_VARIABLES, description="Variables (terms).")
    terms: list[list[Number]] | None = Field(
        None, max_length=MAX_TERMS, description="[i, j, w] 0-based; repeated pairs add up."
    )
    offset: Number = 0.0


class MaxCutRequest(SolverOptions):
    """Maximum cut of an undirected weighted graph."""

    n: StrictInt = Field(ge=1, le=MAX_NODES, description="Nodes, numbered 0..n-1.")
    edges: list[list[Number]] = Field(
        max_length=MAX_TERMS, description="[i, j, w] or [i, j] (w = 1), 0-based, i != j."
    )


# --------------------------------------------------------------------------- responses


class Trace(BaseModel):
    """Best energy over all reads after ``sweeps[k]`` sweeps (empty for exact solves)."""

    sweeps: list[int]
    energy: list[float | None]


class OptimizeResult(BaseModel):
    """Fields every optimisation answer has."""

    problem: str
    problem_hash: str = Field(description="SHA-256 of the problem and the solver options.")
    cached: bool = False
    energy: float = Field(description="QUBO / Ising energy of the solution (offset included).")
    method: str
    optimal: bool = Field(description="Proven optimal (exact enumeration).")
    time_s: float
    reads: int
    reads_completed: int
    sweeps: int | None
    seed: int | None
    beta_range: list[float] | None
    trace: Trace


class MaxCutResult(OptimizeResult):
    nodes: int
    edges: int
    cut: float = Field(description="Total weight of the cut edges, recomputed from partition.")
    total_weight: float
    partition: list[int] = Field(description="Side (0 or 1) of every node.")


class QuboResult(OptimizeResult):
    variables: int
    solution: list[int]


class PortfolioResult(OptimizeResult):
    assets: int
    budget: int
    selected: list[int]
    expected_return: float = Field(description="mu^T x")
    risk: float = Field(description="Variance x^T sigma x")
    objective: float = Field(description="mu^T x - risk_aversion x^T sigma x")
    budget_satisfied: bool
    penalty: float
    solution: list[int]


# --------------------------------------------------------------------------- helpers


def downsample_trace(
    sweeps: NDArray[np.int64], energy: NDArray[np.float64], max_points: int = MAX_TRACE_POINTS
) -> Trace:
    """At most ``max_points`` evenly spaced points of a trace, the first and last kept.

    Examples
    --------
    >>> t = downsample_trace(np.arange(1, 1001), 1000.0 - np.arange(1000), 5)
    >>> t.sweeps, t.energy
    ([1, 251, 501, 750, 1000], [1000.0, 750.0, 500.0, 251.0, 1.0])
    """
    n = len(sweeps)
    idx = np.arange(n) if n <= max_points else np.linspace(0, n - 1, max_points).round()
    idx = np.unique(idx.astype(np.int64))
    e = [float(v) if math.isfinite(v) else None for v in energy[idx]]
    return Trace(sweeps=[int(s) for s in sweeps[idx]], energy=e)


def _first_bad(arr: NDArray[np.float64]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])


def _finite_vector(values: list[float], name: str) -> NDArray[np.float64]:
    a = np.asarray(values, dtype=np.float64)
    if not np.isfinite(a).all():
        (i,) = _first_bad(a)
        raise ApiError(422, f"{name}[{i}] must be a finite number.", field=f"{name}[{i}]")
    return a


def _finite_square(rows: list[list[float]], name: str, n: int) -> NDArray[np.float64]:
    for i, row in enumerate(rows):
        if len(row) != n:
            raise ApiError(
                422,
                f"{name} must be a {n}x{n} matrix; row {name}[{i}] has {len(row)} entries.",
                field=f"{name}[{i}]",
            )
    a = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(a).all():
        i, j = _first_bad(a)
        raise ApiError(422, f"{name}[{i}][{j}] must be a finite number.", field=f"{name}[{i}]")
    return a


def _triples(
    rows: list[list[float]], name: str, n: int, *, allow_pairs: bool, allow_diagonal: bool
) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
    """``[i, j, w]`` rows as 0-based index pairs of shape (m, 2) and weights (m,).

    Checked with array operations (a graph may have ``MAX_TERMS`` edges); the first bad
    row is named, e.g. ``edges[3]``.
    """
    shape = "[i, j, w] or [i, j]" if allow_pairs else "[i, j, w]"
    widths = (2, 3) if allow_pairs else (3,)
    for k, row in enumerate(rows):
        if len(row) not in widths:
            where = f"{name}[{k}]"
            raise ApiError(422, f"{where} must be {shape}; got {row!r}.", field=where)
    if not rows:
        return np.empty((0, 2), dtype=np.int64), np.empty(0)
    arr = np.asarray([r if len(r) == 3 else [*r, 1.0] for r in rows], dtype=np.float64)
    ij, w = arr[:, :2], arr[:, 2]
    with np.errstate(invalid="ignore"):
        problems = [
            (~np.isfinite(ij).all(axis=1) | (ij != np.round(ij)).any(axis=1), "integers"),
            (((ij < 0) | (ij >= n)).any(axis=1), "range"),
            (
                np.zeros(len(w), dtype=bool) if allow_diagonal else ij[:, 0] == ij[:, 1],
                "self-loop",
            ),
            (~np.isfinite(w), "weight"),
        ]
    bad = np.logical_or.reduce([mask for mask, _ in problems])
    if bad.any():
        k = int(np.argmax(bad))
        kind = next(kind for mask, kind in problems if mask[k])
        where = f"{name}[{k}]"
        row = rows[k]
        message = {
            "integers": f"{where}: indices must be integers; got {row!r}.",
            "range": f"{where}: indices are 0-based and must lie in 0..{n - 1}; got {row!r}.",
            "self-loop": f"{where}: self-loop on node {row[0]:g}.",
            "weight": f"{where}: the weight must be finite; got {row!r}.",
        }[kind]
        raise ApiError(422, message, field=where)
    return ij.astype(np.int64), np.ascontiguousarray(w)


def _check_exact(method: str, n: int) -> None:
    if method == "exact" and n > MAX_EXACT_VARIABLES:
        raise ApiError(
            422,
            f"method='exact' is limited to {MAX_EXACT_VARIABLES} variables here; the problem "
            f"has {n}. Use 'anneal' or 'auto'.",
            field="method",
        )


def _cacheable(opts: SolverOptions, n: int) -> bool:
    exact = opts.method == "exact" or (opts.method == "auto" and n <= AUTO_EXACT_VARIABLES)
    return exact or opts.seed is not None


def _problem_hash(
    tenant_id: str, kind: str, opts: SolverOptions, scalars: dict[str, Any], *arrays: np.ndarray
) -> str:
    """SHA-256 of the tenant, the problem (its arrays' dtype, shape, bytes) and options.

    The tenant is part of the key so one tenant cannot learn from ``cached`` (or timing)
    that another solved the same problem.
    """
    h = hashlib.sha256()
    header = {
        "tenant": tenant_id,
        "kind": kind,
        "options": opts.model_dump(
            mode="json", include={"method", "time_limit_s", "seed", "reads", "sweeps", "beta"}
        ),
        "scalars": scalars,
        "arrays": [[a.dtype.str, list(a.shape)] for a in arrays],
    }
    h.update(json.dumps(header, sort_keys=True).encode())
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _solver_kwargs(opts: SolverOptions) -> dict[str, Any]:
    beta = opts.beta if isinstance(opts.beta, str) else (float(opts.beta[0]), float(opts.beta[1]))
    return {
        "method": opts.method,
        "num_reads": opts.reads,
        "num_sweeps": opts.sweeps,
        "time_limit": opts.time_limit_s,
        "seed": opts.seed,
        "n_jobs": SOLVER_THREADS,
        "beta_range": beta,
    }


def _common(r: OptimizationResult, opts: SolverOptions, kind: str, key: str) -> dict[str, Any]:
    return {
        "problem": kind,
        "problem_hash": key,
        "energy": float(r.energy),
        "method": r.method,
        "optimal": r.optimal,
        "time_s": float(r.time_s),
        "reads": r.num_reads,
        "reads_completed": r.reads_completed,
        "sweeps": r.num_sweeps,
        "seed": opts.seed,
        "beta_range": None if r.beta_range is None else [float(b) for b in r.beta_range],
        "trace": downsample_trace(r.trace_sweeps, r.trace_energy),
    }


def _field_of(message: str, fields: tuple[str, ...]) -> str | None:
    """The first of ``fields`` named as a word in ``message`` (``beta`` in 'beta_range')."""
    return next((f for f in fields if re.search(rf"\b{f}(?:\b|_)", message)), None)


async def _solve(
    runtime: Runtime,
    key: str,
    cacheable: bool,
    solve: Callable[[], BaseModel],
    fields: tuple[str, ...],
) -> Response:
    """Run ``solve`` in a worker thread through the gate (and the cache); the response."""
    ran = False

    async def compute() -> bytes:
        nonlocal ran
        ran = True
        gate = optimize_gate(runtime)
        if not gate.try_enter():
            runtime.metrics.errors.labels("optimize_busy").inc()
            raise ApiError(
                429,
                "The optimiser is busy; retry shortly.",
                headers={"Retry-After": "3"},
            )
        try:
            async with gate.slot:
                start = time.perf_counter()
                try:
                    model = await asyncio.to_thread(solve)
                except (InvalidInputError, InvalidParameterError) as exc:
                    raise ApiError(422, str(exc), field=_field_of(str(exc), fields)) from None
                runtime.metrics.stage.labels("optimize").observe(time.perf_counter() - start)
        finally:
            gate.leave()
        return model.model_dump_json(exclude={"cached"}).encode()

    if cacheable:
        body = await runtime.cache.get_or_compute(key, compute, ttl_s=CACHE_TTL_S)
    else:
        body = await compute()
    runtime.metrics.cache.labels("optimize", "miss" if ran else "hit").inc()
    flag = b"false" if ran else b"true"
    return Response(b'{"cached":' + flag + b"," + body[1:], media_type="application/json")


# --------------------------------------------------------------------------- routes


@router.post("/portfolio", response_model=PortfolioResult)
async def optimize_portfolio(
    body: PortfolioRequest, principal: DeveloperKey, runtime: RuntimeDep
) -> Response:
    """Budget-constrained Markowitz selection (:func:`nqp.quantum.optimize.solve_portfolio`).

    ``mu`` of shape (n,), ``sigma`` (n, n) symmetric positive semi-definite, exactly
    ``budget`` assets chosen; assets are numbered 0..n-1 in ``selected``.
    """
    n = len(body.mu)
    mu = _finite_vector(body.mu, "mu")
    if len(body.sigma) != n:
        raise ApiError(
            422,
            f"sigma must be {n}x{n} (mu has {n} assets); it has {len(body.sigma)} rows.",
            field="sigma",
        )
    sigma = await asyncio.to_thread(_finite_square, body.sigma, "sigma", n)
    if body.budget > n:
        raise ApiError(422, f"budget={body.budget} exceeds the {n} assets.", field="budget")
    _check_exact(body.method, n)
    scalars = {"budget": body.budget, "q": body.risk_aversion, "penalty": body.penalty}
    key = _problem_hash(principal.tenant_id, "portfolio", body, scalars, mu, sigma)

    def solve() -> PortfolioResult:
        problem = PortfolioProblem(mu, sigma, body.budget, body.risk_aversion, body.penalty)
        r = solve_portfolio(problem, **_solver_kwargs(body))
        d = r.details
        return PortfolioResult(
            **_common(r, body, "portfolio", key),
            assets=n,
            budget=body.budget,
            selected=d["selected"],
            expected_return=d["expected_return"],
            risk=d["risk"],
            objective=r.objective,
            budget_satisfied=d["budget_satisfied"],
            penalty=d["penalty"],
            solution=r.solution.astype(int).tolist(),
        )

    fields = ("sigma", "budget", "risk_aversion", "penalty", "mu", "beta", "seed")
    return await _solve(runtime, f"opt:{key}", _cacheable(body, n), solve, fields)


@router.post("/qubo", response_model=QuboResult)
async def optimize_qubo(
    body: QuboRequest, principal: DeveloperKey, runtime: RuntimeDep
) -> Response:
    """Minimise ``x^T Q x + offset`` (:func:`nqp.quantum.optimize.minimize_qubo`).

    Give either ``Q`` (dense, square; only ``Q + Q^T`` matters, the diagonal holds the
    linear terms) or ``n`` and ``terms`` (``[i, j, w]``, 0-based, ``i == j`` for linear
    terms, repeated pairs add up).
    """
    if (body.Q is None) == (body.terms is None):
        raise ApiError(422, "Give exactly one of 'Q' (dense) or 'n' and 'terms'.", field="Q")
    if not math.isfinite(body.offset):
        raise ApiError(422, "offset must be a finite number.", field="offset")
    Q: NDArray[np.float64] | sp.csr_array
    if body.Q is not None:
        if body.n is not None:
            raise ApiError(422, "'n' goes with 'terms', not with 'Q'.", field="n")
        n = len(body.Q)
        Q = await asyncio.to_thread(_finite_square, body.Q, "Q", n)
        arrays: tuple[np.ndarray, ...] = (Q,)
    else:
        if body.n is None:
            raise ApiError(422, "'terms' needs 'n', the number of variables.", field="n")
        n = body.n
        assert body.terms is not None
        ij, w = await asyncio.to_thread(
            _triples, body.terms, "terms", n, allow_pairs=False, allow_diagonal=True
        )
        Q = sp.coo_array((w, (ij[:, 0], ij[:, 1])), shape=(n, n)).tocsr()
        arrays = (ij, w)
    _check_exact(body.method, n)
    key = _problem_hash(principal.tenant_id, "qubo", body, {"n": n, "offset": body.offset}, *arrays)

    def solve() -> QuboResult:
        r = minimize_qubo(Q, body.offset, **_solver_kwargs(body))
        return QuboResult(
            **_common(r, body, "qubo", key),
            variables=n,
            solution=r.solution.astype(int).tolist(),
        )

    return await _solve(runtime, f"opt:{key}", _cacheable(body, n), solve, ("beta", "seed"))


@router.post("/maxcut", response_model=MaxCutResult)
async def optimize_maxcut(
    body: MaxCutRequest, principal: DeveloperKey, runtime: RuntimeDep
) -> Response:
    """Maximum cut (:func:`nqp.quantum.optimize.solve_maxcut`); nodes are 0-based.

    ``cut`` is the total weight of the edges between the two sides of ``partition``,
    recomputed edge by edge; parallel edges add up; negative weights are allowed.
    """
    ij, w = await asyncio.to_thread(
        _triples, body.edges, "edges", body.n, allow_pairs=True, allow_diagonal=False
    )
    _check_exact(body.method, body.n)
    key = _problem_hash(principal.tenant_id, "maxcut", body, {"n": body.n}, ij, w)

    def solve() -> MaxCutResult:
        problem = MaxCutProblem(body.n, ij, w)
        r = solve_maxcut(problem, **_solver_kwargs(body))
        return MaxCutResult(
            **_common(r, body, "maxcut", key),
            nodes=body.n,
            edges=len(w),
            cut=r.details["cut"],
            total_weight=problem.total_weight,
            partition=r.solution.astype(int).tolist(),
        )

    return await _solve(runtime, f"opt:{key}", _cacheable(body, body.n), solve, ("beta", "seed"))
