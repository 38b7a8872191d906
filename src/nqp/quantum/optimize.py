"""Ground states of Ising / QUBO problems: exact enumeration and a solver front end.

- :func:`enumerate_ising` visits all ``2^n`` spin configurations in Gray-code order
  (one spin flips per step, so each energy costs O(n) from the previous one with the
  local fields ``f_i = h_i + Σ_j J_ij s_j`` kept up to date), compiled with numba. It
  returns the minimum energy, every minimiser (ties within a relative tolerance) and,
  optionally, the full spectrum.
- :func:`minimize_ising` / :func:`minimize_qubo` pick exact enumeration (``n ≤ 20`` with
  ``method="auto"``) or simulated annealing (:func:`nqp.quantum.annealing.anneal`) and
  return an :class:`OptimizationResult`; :func:`solve_maxcut` and :func:`solve_portfolio`
  add the problem's own objective (cut size; return, risk, selected assets).

Configuration index convention (spectrum and ``indices``): bit ``i`` of the index (bit 0 =
least significant) is ``x_i``, i.e. spin ``s_i = +1`` when the bit is set, ``-1`` otherwise.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from numba import njit
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, Options, validate_params
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.annealing import anneal
from nqp.quantum.ising import IsingModel
from nqp.quantum.problems import MaxCutProblem, PortfolioProblem

__all__ = [
    "EnumerationResult",
    "OptimizationResult",
    "enumerate_ising",
    "minimize_ising",
    "minimize_qubo",
    "solve_maxcut",
    "solve_portfolio",
]

MAX_EXACT_VARIABLES = 30
MAX_SPECTRUM_VARIABLES = 26
AUTO_EXACT_VARIABLES = 20


@njit(cache=True, nogil=True)
def _gray_scan(
    h: NDArray[np.float64],
    Jd: NDArray[np.float64],
    threshold: float,
    tol: float,
    spectrum: NDArray[np.float64],
    cand: NDArray[np.int64],
    out: NDArray[np.float64],
) -> int:  # pragma: no cover - compiled
    """Visit all 2^n configurations; energies without offset.

    ``threshold`` = +inf: keep the running minimum and the indices within ``tol`` of it
    (at most ``cand.size``); otherwise collect the indices with energy ``≤ threshold``.
    ``out[0]`` gets the minimum. Returns the number of indices that qualified (may exceed
    ``cand.size``; only the first ``cand.size`` are stored).
    """
    n = h.shape[0]
    s = -np.ones(n)
    f = h - Jd @ np.ones(n)
    energy = 0.0
    for i in range(n):
        energy += 0.5 * s[i] * (f[i] + h[i])
    store = spectrum.shape[0] > 0
    fixed = threshold < np.inf
    cap = cand.shape[0]
    best = energy
    count = 0
    if fixed:
        if energy <= threshold:
            cand[0] = 0
            count = 1
    else:
        cand[0] = 0
        count = 1
    if store:
        spectrum[0] = energy
    idx = 0
    total = 1 << n
    for k in range(1, total):
        b = 0
        while not (k >> b) & 1:
            b += 1
        sb = s[b]
        energy += -2.0 * sb * f[b]
        ns = -sb
        s[b] = ns
        d = 2.0 * ns
        row = Jd[b]
        for j in range(n):
            f[j] += d * row[j]
        idx ^= 1 << b
        if store:
            spectrum[idx] = energy
        if fixed:
            if energy <= threshold:
                if count < cap:
                    cand[count] = idx
                count += 1
        elif energy < best - tol:
            best = energy
            cand[0] = idx
            count = 1
        elif energy <= best + tol:
            if energy < best:
                best = energy
            if count < cap:
                cand[count] = idx
            count += 1
    out[0] = best
    return count


def _spins_of(indices: NDArray[np.int64], n: int) -> NDArray[np.int8]:
    bits = (indices[:, None] >> np.arange(n, dtype=np.int64)[None, :]) & 1
    return (2 * bits - 1).astype(np.int8)


@dataclass(frozen=True)
class EnumerationResult:
    """All ground states of an Ising model found by exhaustive enumeration.

    Attributes
    ----------
    energy : float
        Minimum energy (including the model's offset).
    ground_states : ndarray of shape (n_stored, n), int8
        Minimisers in {-1, +1}, in increasing configuration index (see the module notes);
        at most ``max_solutions`` of them.
    indices : ndarray of shape (n_stored,), int64
        Their configuration indices.
    degeneracy : int
        Number of minimisers (may exceed ``n_stored``).
    spectrum : ndarray of shape (2**n,), float64, or None
        Energy of every configuration by index (with ``return_spectrum=True``).
    tolerance : float
        Energies within this of the minimum count as ties.
    """

    energy: float
    ground_states: NDArray[np.int8]
    indices: NDArray[np.int64]
    degeneracy: int
    spectrum: NDArray[np.float64] | None
    tolerance: float


def enumerate_ising(
    model: IsingModel, *, return_spectrum: bool = False, max_solutions: int = 1024
) -> EnumerationResult:
    """Exact ground states of an Ising model by Gray-code enumeration of all 2^n states.

    Parameters
    ----------
    model : IsingModel
        At most 30 spins (26 with ``return_spectrum``); the cost is O(2^n n).
    return_spectrum : bool, default=False
        Also return all 2^n energies (8·2^n bytes).
    max_solutions : int, default=1024
        Most minimisers stored (all are counted).

    Returns
    -------
    EnumerationResult

    Notes
    -----
    Energies are accumulated incrementally, so ties are decided with the tolerance
    ``1e-9 · max(1, Σ|h| + Σ_{i<j}|J_ij|)``; the stored minimisers' energies are then
    recomputed exactly with :meth:`IsingModel.energy`, and ``energy`` is the smallest.

    Examples
    --------
    A ferromagnetic pair has two ground states, all-down (index 0) and all-up (index 3).

    >>> m = IsingModel.from_arrays(None, [[0.0, -1.0], [0.0, 0.0]])
    >>> r = enumerate_ising(m, return_spectrum=True)
    >>> r.energy, r.degeneracy, r.indices.tolist(), r.spectrum.tolist()
    (-1.0, 2, [0, 3], [-1.0, 1.0, 1.0, -1.0])
    """
    validate_params(
        "enumerate_ising",
        {"model": model, "return_spectrum": return_spectrum, "max_solutions": max_solutions},
        {
            "model": [IsingModel],
            "return_spectrum": [bool],
            "max_solutions": [Interval("int", 1, None)],
        },
    )
    n = model.n
    if n == 0:
        raise InvalidInputError("The model has no variables.")
    limit = MAX_SPECTRUM_VARIABLES if return_spectrum else MAX_EXACT_VARIABLES
    if n > limit:
        raise InvalidInputError(
            f"Exact enumeration is limited to {limit} variables"
            f"{' with return_spectrum' if return_spectrum else ''}; the model has {n}."
        )
    h = np.ascontiguousarray(model.h, dtype=np.float64)
    Jd = np.ascontiguousarray(model.J.toarray(), dtype=np.float64)
    scale = float(np.abs(h).sum() + 0.5 * np.abs(Jd).sum())
    tol = 1e-9 * max(1.0, scale)
    spectrum = np.empty(1 << n if return_spectrum else 0)
    cand = np.empty(max_solutions, dtype=np.int64)
    out = np.empty(1)
    count = _gray_scan(h, Jd, np.inf, tol, spectrum, cand, out)
    if count > max_solutions:
        # The running window may have counted near-ties of an earlier minimum: recount.
        count = _gray_scan(h, Jd, out[0] + tol, tol, np.empty(0), cand, out)
    idx = np.sort(cand[: min(count, max_solutions)])
    states = _spins_of(idx, n)
    exact = np.atleast_1d(model.energy(states))
    emin = float(exact.min())
    keep = exact <= emin + tol
    if count <= max_solutions:
        count = int(keep.sum())
    if return_spectrum:
        spectrum += model.offset
    return EnumerationResult(
        energy=emin,
        ground_states=states[keep],
        indices=idx[keep],
        degeneracy=int(count),
        spectrum=spectrum if return_spectrum else None,
        tolerance=tol,
    )


@dataclass(frozen=True)
class OptimizationResult:
    """Best solution of an Ising / QUBO problem and how it was found.

    Attributes
    ----------
    energy : float
        Energy of ``solution`` in the model's units (Ising or QUBO, offset included).
    solution : ndarray of shape (n,), int8
        Spins in {-1, +1} (``variables == "spin"``) or bits in {0, 1} (``"binary"``).
    variables : {"spin", "binary"}
    method : {"exact", "anneal"}
    optimal : bool
        True when the solution is proven optimal (exact enumeration).
    objective : float
        The problem's own objective: the energy for plain Ising/QUBO problems, the cut
        size for max-cut, ``μᵀx − q xᵀΣx`` for portfolio selection.
    sense : {"min", "max"}
        Whether ``objective`` is minimised or maximised.
    best_known : float or None
        A reference value of ``objective`` given by the caller (e.g. a published best cut).
    gap : float or None
        How far ``objective`` is behind ``best_known`` (``objective − best_known`` when
        minimising, ``best_known − objective`` when maximising; ≤ 0 means matched or beaten).
    relative_gap : float or None
        ``gap / |best_known|`` (None when ``best_known`` is None or 0).
    details : dict
        Problem-specific figures (``cut``, ``partition``; ``selected``, ``expected_return``,
        ``risk``, ``budget_satisfied``, ``penalty``).
    time_s : float
        Wall-clock seconds of the search (enumeration or annealing).
    num_reads, reads_completed : int
        Requested and finished annealing reads (1 and 1 for exact enumeration).
    num_sweeps : int or None
        Sweeps per read (None for exact enumeration).
    beta_range : (float, float) or None
        Hot and cold inverse temperatures of the anneal (None for exact enumeration).
    trace_sweeps : ndarray of shape (n_points,), int64
        Sweeps at which the convergence trace was taken (empty for exact enumeration).
    trace_energy : ndarray of shape (n_points,), float64
        Best energy over all reads after that many sweeps (before polishing).
    read_energies : ndarray of shape (n_reads_started,), float64
        Final energy of every read (the minimum for exact enumeration).
    ground_states : ndarray of shape (n_ties, n), int8, or None
        Exact enumeration only: every minimiser, in the same variables as ``solution``.
    """

    energy: float
    solution: NDArray[np.int8]
    variables: str
    method: str
    optimal: bool
    objective: float
    sense: str
    best_known: float | None
    gap: float | None
    relative_gap: float | None
    time_s: float
    num_reads: int
    reads_completed: int
    num_sweeps: int | None
    beta_range: tuple[float, float] | None
    trace_sweeps: NDArray[np.int64]
    trace_energy: NDArray[np.float64]
    read_energies: NDArray[np.float64]
    ground_states: NDArray[np.int8] | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Raw:
    energy: float
    spins: NDArray[np.int8]
    method: str
    time_s: float
    num_reads: int
    reads_completed: int
    num_sweeps: int | None
    beta_range: tuple[float, float] | None
    trace_sweeps: NDArray[np.int64]
    trace_energy: NDArray[np.float64]
    read_energies: NDArray[np.float64]
    ground_states: NDArray[np.int8] | None


_SOLVER_CONSTRAINTS: dict[str, list[Any]] = {
    "method": [Options(("auto", "exact", "anneal"))],
    "num_reads": [Interval("int", 1, None)],
    "num_sweeps": [Interval("int", 1, None)],
    "time_limit": [Interval("real", 0.0, None, closed="neither"), None],
    "seed": [Interval("int", 0, None), np.random.Generator, None],
    "n_jobs": [Interval("int", 1, None), None],
    "best_known": [Interval("real", None, None), None],
}


def _solve(
    model: IsingModel,
    owner: str,
    *,
    method: str,
    num_reads: int,
    num_sweeps: int,
    time_limit: float | None,
    seed: int | np.random.Generator | None,
    n_jobs: int | None,
    best_known: float | None,
    beta_range: tuple[float, float] | str | None,
) -> _Raw:
    validate_params(
        owner,
        {
            "method": method,
            "num_reads": num_reads,
            "num_sweeps": num_sweeps,
            "time_limit": time_limit,
            "seed": seed,
            "n_jobs": n_jobs,
            "best_known": best_known,
        },
        _SOLVER_CONSTRAINTS,
    )
    if method == "auto":
        method = "exact" if model.n <= AUTO_EXACT_VARIABLES else "anneal"
    if method == "exact":
        if model.n > MAX_EXACT_VARIABLES:
            raise InvalidParameterError(
                f"method='exact' is limited to {MAX_EXACT_VARIABLES} variables; the problem "
                f"has {model.n}. Use method='anneal'."
            )
        t0 = time.perf_counter()
        ex = enumerate_ising(model)
        dt = time.perf_counter() - t0
        return _Raw(
            energy=ex.energy,
            spins=ex.ground_states[0],
            method="exact",
            time_s=dt,
            num_reads=1,
            reads_completed=1,
            num_sweeps=None,
            beta_range=None,
            trace_sweeps=np.empty(0, dtype=np.int64),
            trace_energy=np.empty(0),
            read_energies=np.array([ex.energy]),
            ground_states=ex.ground_states,
        )
    res = anneal(
        model,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        beta_range=beta_range,
        seed=seed,
        time_limit=time_limit,
        n_jobs=n_jobs,
    )
    return _Raw(
        energy=res.best_energy,
        spins=res.best_spins.copy(),
        method="anneal",
        time_s=res.time_s,
        num_reads=num_reads,
        reads_completed=res.reads_completed,
        num_sweeps=num_sweeps,
        beta_range=res.beta_range,
        trace_sweeps=res.trace_sweeps,
        trace_energy=res.best_trace(),
        read_energies=res.energies,
        ground_states=None,
    )


def _result(
    raw: _Raw,
    *,
    solution: NDArray[np.int8],
    variables: str,
    objective: float,
    sense: str,
    best_known: float | None,
    ground_states: NDArray[np.int8] | None,
    details: dict[str, Any] | None = None,
) -> OptimizationResult:
    gap = rel = None
    if best_known is not None:
        gap = objective - best_known if sense == "min" else best_known - objective
        rel = gap / abs(best_known) if best_known != 0 else None
    return OptimizationResult(
        energy=raw.energy,
        solution=solution,
        variables=variables,
        method=raw.method,
        optimal=raw.method == "exact",
        objective=float(objective),
        sense=sense,
        best_known=None if best_known is None else float(best_known),
        gap=None if gap is None else float(gap),
        relative_gap=None if rel is None else float(rel),
        time_s=raw.time_s,
        num_reads=raw.num_reads,
        reads_completed=raw.reads_completed,
        num_sweeps=raw.num_sweeps,
        beta_range=raw.beta_range,
        trace_sweeps=raw.trace_sweeps,
        trace_energy=raw.trace_energy,
        read_energies=raw.read_energies,
        ground_states=ground_states,
        details={} if details is None else details,
    )


_DOC_SOLVER = """
    method : {"auto", "exact", "anneal"}, default="auto"
        ``"auto"`` enumerates exactly for at most 20 variables, anneals otherwise.
    num_reads : int, default=16
        Annealing reads (ignored by exact enumeration).
    num_sweeps : int, default=1000
        Metropolis sweeps per read.
    time_limit : float or None, default=None
        Seconds; annealing stops starting reads / sweeps after it (see
        :func:`~nqp.quantum.annealing.anneal`).
    seed : int, numpy.random.Generator or None, default=None
        Seeds every annealing read (identical results for the same int).
    n_jobs : int or None, default=None
        Threads for parallel reads (None: all available cores).
    beta_range : (float, float), {"neal", "typical"} or None, default=None
        Annealing inverse temperatures, or the rule deriving them
        (:func:`~nqp.quantum.annealing.default_beta_range`; None: ``"typical"``).
"""


def minimize_ising(
    model: IsingModel,
    *,
    method: str = "auto",
    num_reads: int = 16,
    num_sweeps: int = 1000,
    time_limit: float | None = None,
    seed: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    beta_range: tuple[float, float] | str | None = None,
    best_known: float | None = None,
) -> OptimizationResult:
    """Lowest-energy spin configuration of an Ising model.

    Parameters
    ----------
    model : IsingModel
    {solver}
    best_known : float or None, default=None
        A known (or bounding) energy to report the gap against.

    Returns
    -------
    OptimizationResult
        ``solution`` in spins; ``objective`` is the energy (``sense="min"``).

    Examples
    --------
    >>> m = IsingModel.from_arrays([0.5, 0.0], [[0.0, -1.0], [0.0, 0.0]])
    >>> r = minimize_ising(m)
    >>> r.method, r.energy, r.solution.tolist()
    ('exact', -1.5, [-1, -1])
    """
    if not isinstance(model, IsingModel):
        raise InvalidParameterError(
            f"The 'model' parameter of minimize_ising must be an IsingModel. Got {model!r}."
        )
    raw = _solve(
        model,
        "minimize_ising",
        method=method,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        time_limit=time_limit,
        seed=seed,
        n_jobs=n_jobs,
        best_known=best_known,
        beta_range=beta_range,
    )
    return _result(
        raw,
        solution=raw.spins,
        variables="spin",
        objective=raw.energy,
        sense="min",
        best_known=best_known,
        ground_states=raw.ground_states,
    )


def minimize_qubo(
    Q: ArrayLike | sp.sparray | sp.spmatrix,
    offset: float = 0.0,
    *,
    method: str = "auto",
    num_reads: int = 16,
    num_sweeps: int = 1000,
    time_limit: float | None = None,
    seed: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    beta_range: tuple[float, float] | str | None = None,
    best_known: float | None = None,
) -> OptimizationResult:
    """Binary vector ``x`` minimising ``xᵀ Q x + offset``.

    Parameters
    ----------
    Q : array_like or sparse of shape (n, n)
        Any square matrix (only ``Q + Qᵀ`` matters; the diagonal holds linear terms).
    offset : float, default=0.0
    {solver}
    best_known : float or None, default=None
        A known (or bounding) QUBO energy to report the gap against.

    Returns
    -------
    OptimizationResult
        ``solution`` in bits; ``energy`` and ``objective`` are the QUBO energy.

    Examples
    --------
    >>> r = minimize_qubo([[-1.0, 2.0], [0.0, -1.0]])
    >>> r.energy, r.solution.tolist(), r.ground_states.tolist()
    (-1.0, [1, 0], [[1, 0], [0, 1]])
    """
    model = IsingModel.from_qubo(Q, offset)
    raw = _solve(
        model,
        "minimize_qubo",
        method=method,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        time_limit=time_limit,
        seed=seed,
        n_jobs=n_jobs,
        best_known=best_known,
        beta_range=beta_range,
    )
    x = ((raw.spins + 1) // 2).astype(np.int8)
    gs = None if raw.ground_states is None else ((raw.ground_states + 1) // 2).astype(np.int8)
    return _result(
        raw,
        solution=x,
        variables="binary",
        objective=raw.energy,
        sense="min",
        best_known=best_known,
        ground_states=gs,
    )


def solve_maxcut(
    problem: MaxCutProblem,
    *,
    method: str = "auto",
    num_reads: int = 16,
    num_sweeps: int = 1000,
    time_limit: float | None = None,
    seed: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    beta_range: tuple[float, float] | str | None = None,
    best_known: float | None = None,
) -> OptimizationResult:
    """Maximum cut of a weighted graph via its Ising model ``J_ij = w_ij``, ``h = 0``.

    Parameters
    ----------
    problem : MaxCutProblem
    {solver}
    best_known : float or None, default=None
        A known cut value (e.g. the published best) to report the gap against.

    Returns
    -------
    OptimizationResult
        ``solution`` is the partition in bits (node ``i`` on side ``solution[i]``);
        ``objective`` = ``details["cut"]`` = total weight of the cut edges, recomputed
        from the partition (equal to ``(W − E) / 2``); ``sense="max"``.

    Examples
    --------
    A triangle: any 2-vs-1 split cuts two edges.

    >>> p = MaxCutProblem.from_edges(3, [(0, 1), (1, 2), (0, 2)])
    >>> r = solve_maxcut(p)
    >>> r.objective, r.details["cut"], len(r.ground_states)
    (2.0, 2.0, 6)
    """
    if not isinstance(problem, MaxCutProblem):
        raise InvalidParameterError(
            f"The 'problem' parameter of solve_maxcut must be a MaxCutProblem. Got {problem!r}."
        )
    raw = _solve(
        problem.to_ising(),
        "solve_maxcut",
        method=method,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        time_limit=time_limit,
        seed=seed,
        n_jobs=n_jobs,
        best_known=best_known,
        beta_range=beta_range,
    )
    partition = ((raw.spins + 1) // 2).astype(np.int8)
    cut = problem.cut_value(partition)
    gs = None if raw.ground_states is None else ((raw.ground_states + 1) // 2).astype(np.int8)
    return _result(
        raw,
        solution=partition,
        variables="binary",
        objective=cut,
        sense="max",
        best_known=best_known,
        ground_states=gs,
        details={"cut": cut, "partition": partition},
    )


def solve_portfolio(
    problem: PortfolioProblem,
    *,
    method: str = "auto",
    num_reads: int = 16,
    num_sweeps: int = 1000,
    time_limit: float | None = None,
    seed: int | np.random.Generator | None = None,
    n_jobs: int | None = None,
    beta_range: tuple[float, float] | str | None = None,
    best_known: float | None = None,
) -> OptimizationResult:
    """Budget-constrained Markowitz selection through its penalised QUBO.

    Parameters
    ----------
    problem : PortfolioProblem
    {solver}
    best_known : float or None, default=None
        A known objective value ``μᵀx − q xᵀΣx`` to report the gap against.

    Returns
    -------
    OptimizationResult
        ``solution`` is the selection ``x`` in bits; ``objective`` = ``μᵀx − q xᵀΣx``
        (``sense="max"``); ``details`` holds ``selected`` (asset indices),
        ``expected_return`` (``μᵀx``), ``risk`` (``xᵀΣx``), ``budget_satisfied`` and the
        ``penalty`` used. With the default penalty every single-flip local minimum of the
        QUBO meets the budget (see :meth:`PortfolioProblem.default_penalty`), and the
        annealer polishes every read to such a minimum.

    Examples
    --------
    >>> p = PortfolioProblem(mu=[0.1, 0.2, 0.15], sigma=np.diag([0.1, 0.4, 0.1]),
    ...                      budget=2, risk_aversion=0.5)
    >>> r = solve_portfolio(p)
    >>> r.details["selected"], round(r.objective, 6)
    ([0, 2], 0.15)
    """
    if not isinstance(problem, PortfolioProblem):
        raise InvalidParameterError(
            "The 'problem' parameter of solve_portfolio must be a PortfolioProblem. "
            f"Got {problem!r}."
        )
    Q, offset = problem.to_qubo()
    raw = _solve(
        IsingModel.from_qubo(Q, offset),
        "solve_portfolio",
        method=method,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        time_limit=time_limit,
        seed=seed,
        n_jobs=n_jobs,
        best_known=best_known,
        beta_range=beta_range,
    )
    x = ((raw.spins + 1) // 2).astype(np.int8)
    gs = None if raw.ground_states is None else ((raw.ground_states + 1) // 2).astype(np.int8)
    ev = problem.evaluate(x)
    details = {**ev, "penalty": problem.penalty_value()}
    return _result(
        raw,
        solution=x,
        variables="binary",
        objective=ev["objective"],
        sense="max",
        best_known=best_known,
        ground_states=gs,
        details=details,
    )


for _f in (minimize_ising, minimize_qubo, solve_maxcut, solve_portfolio):
    if _f.__doc__:
        _f.__doc__ = _f.__doc__.replace("    {solver}\n", _DOC_SOLVER.lstrip("\n"))
