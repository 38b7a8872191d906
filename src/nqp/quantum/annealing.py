"""Simulated annealing of Ising models in compiled loops.

Single-spin Metropolis sweeps (Kirkpatrick, Gelatt & Vecchi, Science 220, 1983) over a
CSR adjacency (unsigned integer indices, float64 weights) with incrementally updated local
fields, so one flip costs O(degree):

- ``E(s) = h·s + ½ sᵀ J s + offset`` (:class:`~nqp.quantum.ising.IsingModel`), local field
  ``f_i = h_i + Σ_j J_ij s_j``, flip cost ``ΔE_i = -2 s_i f_i``; a flip is accepted when
  ``ΔE_i ≤ 0`` or with probability ``exp(-β ΔE_i)`` (no random number is drawn for downhill
  moves, nor for uphill moves with ``β ΔE_i ≥ 40`` whose acceptance is below 2⁻⁵³).
- Inverse temperatures ``β`` follow a geometric (default) or linear schedule over the
  sweeps, one ``β`` per sweep. The default range is the one of dwave-samplers' ``neal``
  (:func:`default_beta_range`): the hot ``β`` accepts the largest possible flip cost with
  probability 1/2, the cold ``β`` keeps the expected number of excitations of the smallest
  gap at 1 %; ``beta_range="typical"`` starts from the largest *typical* flip cost of a
  random state instead (much faster on dense max-cut graphs).
- Each read has its own random stream: a SplitMix64 generator (Steele, Lea & Flood,
  OOPSLA 2014) whose state is derived from ``seed`` and the read's index alone, so read
  ``r`` is the same whatever ``num_reads``, ``n_jobs`` or thread scheduling.
- Reads run in parallel on a thread pool over ``nogil`` kernels; each thread takes the
  next unstarted read. With a ``time_limit``, no read starts after the limit (read 0 always
  starts) and a running read stops at the next chunk of sweeps; such a read is reported as
  not completed, its state is still a valid (polished) solution.
- Each read keeps the lowest-energy state seen at the end of any sweep; with ``polish``
  (default) that state is then descended greedily (flip any spin with ``ΔE_i < 0`` until
  none is left), so every returned state is a single-flip local minimum.

Energies returned are recomputed exactly from the returned spins with
:meth:`IsingModel.energy`, not taken from the incremental sums.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit
from numpy.typing import NDArray

from nqp._validation import Interval, Options, validate_params
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.ising import IsingModel

__all__ = ["AnnealResult", "anneal", "beta_schedule", "default_beta_range"]

# SplitMix64 constants (Steele et al. 2014).
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_STREAM = np.uint64(0xD1B54A32D192ED03)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_BETA_DE_CUTOFF = 40.0  # exp(-40) < 2**-53: such flips are never accepted

# The clock used for time limits (a module attribute so tests can substitute a fake one).
_now: Callable[[], float] = time.perf_counter


@njit(inline="always")
def _mix(z: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True, nogil=True)
def _start_read(
    indptr: NDArray[np.uint64],
    indices: NDArray[np.uint32],
    data: NDArray[np.float64],
    h: NDArray[np.float64],
    base: np.uint64,
    read: int,
    spins: NDArray[np.int8],
    best_spins: NDArray[np.int8],
    fields: NDArray[np.float64],
    scal: NDArray[np.float64],
    rng: NDArray[np.uint64],
) -> None:  # pragma: no cover - compiled
    """Random initial spins from read ``read``'s stream; fields, energy (without offset)."""
    state = _mix(base ^ (np.uint64(read) * _STREAM))
    state = _mix(state + _GAMMA)
    n = h.shape[0]
    for i in range(n):
        state += _GAMMA
        spins[i] = 1 if (_mix(state) >> _S31) & np.uint64(1) else -1
    energy = 0.0
    for i in range(n):
        f = h[i]
        for k in range(indptr[i], indptr[i + 1]):
            f += data[k] * spins[indices[k]]
        fields[i] = f
        energy += 0.5 * spins[i] * (f + h[i])
    best_spins[:] = spins
    scal[0] = energy
    scal[1] = energy
    rng[0] = state


@njit(cache=True, nogil=True)
def _sweeps(
    indptr: NDArray[np.uint64],
    indices: NDArray[np.uint32],
    data: NDArray[np.float64],
    betas: NDArray[np.float64],
    t0: int,
    t1: int,
    spins: NDArray[np.int8],
    best_spins: NDArray[np.int8],
    fields: NDArray[np.float64],
    scal: NDArray[np.float64],
    rng: NDArray[np.uint64],
    trace: NDArray[np.float64],
    stride: int,
    quantum: float,
    lut: NDArray[np.float64],
) -> None:  # pragma: no cover - compiled
    """Metropolis sweeps ``t0 .. t1-1`` in place; keeps the best end-of-sweep state.

    With ``quantum > 0`` every flip cost is an integer multiple of ``quantum`` and the
    acceptance probabilities ``exp(-β k quantum)`` come from a table ``lut`` rebuilt once
    per sweep (``lut`` must hold ``40 / (β_min quantum) + 2`` entries or the largest
    multiple + 1, whichever is smaller) instead of one ``exp`` per uphill attempt.
    """
    n = spins.shape[0]
    n_sweeps = betas.shape[0]
    energy = scal[0]
    best = scal[1]
    state = rng[0]
    use_lut = quantum > 0.0
    inv_q = 1.0 / quantum if use_lut else 0.0
    n_lut = 0
    for t in range(t0, t1):
        beta = betas[t]
        cutoff = _BETA_DE_CUTOFF / beta
        if use_lut:
            n_lut = min(lut.shape[0], int(cutoff * inv_q) + 1)
            for k in range(n_lut):
                lut[k] = math.exp(-beta * quantum * k)
        for i in range(n):
            si = spins[i]
            de = -2.0 * si * fields[i]
            if de > 0.0:
                if de >= cutoff:
                    continue
                if use_lut:
                    k = int(de * inv_q + 0.5)
                    if k >= n_lut:
                        continue
                    p = lut[k]
                else:
                    p = math.exp(-beta * de)
                state += _GAMMA
                if (_mix(state) >> _S11) * _INV53 >= p:
                    continue
            ns = -si
            spins[i] = ns
            energy += de
            d = 2.0 * ns
            for k in range(indptr[i], indptr[i + 1]):
                fields[indices[k]] += d * data[k]
        if energy < best:
            best = energy
            best_spins[:] = spins
        if (t + 1) % stride == 0 or t == n_sweeps - 1:
            trace[t // stride] = best
    scal[0] = energy
    scal[1] = best
    rng[0] = state


@njit(cache=True, nogil=True)
def _polish(
    indptr: NDArray[np.uint64],
    indices: NDArray[np.uint32],
    data: NDArray[np.float64],
    h: NDArray[np.float64],
    spins: NDArray[np.int8],
    fields: NDArray[np.float64],
    tol: float,
) -> int:  # pragma: no cover - compiled
    """Greedy single-flip descent of ``spins`` in place (fields recomputed); returns flips."""
    n = spins.shape[0]
    for i in range(n):
        f = h[i]
        for k in range(indptr[i], indptr[i + 1]):
            f += data[k] * spins[indices[k]]
        fields[i] = f
    flips = 0
    changed = True
    while changed:
        changed = False
        for i in range(n):
            si = spins[i]
            if -2.0 * si * fields[i] < -tol:
                ns = -si
                spins[i] = ns
                d = 2.0 * ns
                for k in range(indptr[i], indptr[i + 1]):
                    fields[indices[k]] += d * data[k]
                flips += 1
                changed = True
    return flips


@dataclass(frozen=True)
class AnnealResult:
    """Reads of one simulated-annealing run.

    Attributes
    ----------
    spins : ndarray of shape (n_started, n), int8
        Final (best seen, then polished) state of every started read, values in {-1, +1}.
    energies : ndarray of shape (n_started,), float64
        ``model.energy(spins)`` of each read (exact, including the model's offset).
    completed : ndarray of shape (n_started,), bool
        Whether the read ran all of its sweeps (False: stopped by ``time_limit``).
    best_index : int
        The read with the lowest energy (lowest index among ties).
    trace_sweeps : ndarray of shape (n_points,), int64
        Sweep counts (1-based) at which the trace was recorded.
    trace_energy : ndarray of shape (n_started, n_points), float64
        Best end-of-sweep energy of each read after ``trace_sweeps[p]`` sweeps (before
        polishing, including the model's offset; NaN where a read stopped earlier).
    betas : ndarray of shape (num_sweeps,), float64
        The inverse-temperature schedule used (1 / energy units).
    beta_range : (float, float)
        Its hot and cold ends as requested or derived.
    num_reads, num_sweeps : int
        Requested reads and sweeps per read.
    reads_completed : int
        Reads that ran all of their sweeps.
    time_s : float
        Wall-clock time of the run in seconds.
    seed_state : int
        The 64-bit base state every read's stream was derived from.
    """

    spins: NDArray[np.int8]
    energies: NDArray[np.float64]
    completed: NDArray[np.bool_]
    best_index: int
    trace_sweeps: NDArray[np.int64]
    trace_energy: NDArray[np.float64]
    betas: NDArray[np.float64]
    beta_range: tuple[float, float]
    num_reads: int
    num_sweeps: int
    reads_completed: int
    time_s: float
    seed_state: int

    @property
    def best_spins(self) -> NDArray[np.int8]:
        """The lowest-energy state, of shape (n,), int8 in {-1, +1}."""
        return self.spins[self.best_index]

    @property
    def best_energy(self) -> float:
        """Its energy (including the model's offset)."""
        return float(self.energies[self.best_index])

    @property
    def reads_started(self) -> int:
        """Reads that started (all of them unless ``time_limit`` stopped the run)."""
        return int(self.spins.shape[0])

    def best_trace(self) -> NDArray[np.float64]:
        """Best energy over all started reads vs sweep, of shape (n_points,), float64."""
        t = self.trace_energy
        best = np.where(np.isnan(t), np.inf, t).min(axis=0, initial=np.inf)
        return np.where(np.isfinite(best), best, np.nan)


def default_beta_range(model: IsingModel, rule: str = "neal") -> tuple[float, float]:
    """Hot and cold inverse temperatures derived from the problem's couplings and fields.

    Parameters
    ----------
    model : IsingModel
    rule : {"neal", "typical"}, default="neal"
        How the hot end is set. ``"neal"`` (dwave-samplers' default): with the worst-case
        local field ``F_i = |h_i| + Σ_j |J_ij|``, ``β_hot = ln 2 / (2 max_i F_i)`` accepts the
        largest possible flip cost with probability 1/2. ``"typical"``: the same with the
        root-mean-square local field of a uniformly random state, ``R_i = (h_i² + Σ_j
        J_ij²)^½``, in place of ``F_i`` — the largest flip cost one typically meets in the
        random initial state is accepted with probability 1/2. On dense graphs ``F_i`` is
        about ``√degree`` times ``R_i``, so ``"neal"`` spends many sweeps at temperatures
        where nearly every flip is accepted; ``"typical"`` starts colder (on Gset G1/G22 it
        reaches the best known cuts several times faster, see ``bench/annealing.py``).

    Returns
    -------
    (float, float)
        ``(beta_hot, beta_cold)`` in inverse energy units. The cold end is neal's for both
        rules: with ``m_i`` the smallest non-zero ``|h_i|`` or ``|J_ij|`` of spin ``i`` and
        ``c`` the number of spins attaining ``min_i m_i``, ``β_cold = ln(c / 0.01) /
        (2 min_i m_i)`` keeps the expected number of excitations of the smallest gaps at the
        end of the anneal at 0.01.

    Examples
    --------
    >>> m = IsingModel.from_arrays([0.0, 0.0], [[0.0, 1.0], [0.0, 0.0]])
    >>> [round(b, 4) for b in default_beta_range(m)]
    [0.3466, 2.6492]
    """
    validate_params("default_beta_range", {"rule": rule}, {"rule": [Options(("neal", "typical"))]})
    csr = abs(model.J).tocsr()
    if rule == "neal":
        field = np.abs(model.h) + np.asarray(csr.sum(axis=1)).ravel()
    else:
        field = np.sqrt(model.h**2 + np.asarray(csr.multiply(csr).sum(axis=1)).ravel())
    max_field = float(field.max(initial=0.0))
    if max_field == 0.0:
        return 0.1, 1.0  # no energy scale at all: any schedule is equivalent
    hot = math.log(2.0) / (2.0 * max_field)
    mins = np.where(model.h != 0.0, np.abs(model.h), np.inf)
    starts = csr.indptr[:-1]
    rows = np.flatnonzero(np.diff(csr.indptr) > 0)
    if rows.size:
        mins[rows] = np.minimum(mins[rows], np.minimum.reduceat(csr.data, starts[rows]))
    finite = mins[np.isfinite(mins)]
    m = float(finite.min())
    count = int(np.count_nonzero(finite == m))
    cold = math.log(count / 0.01) / (2.0 * m)
    return hot, max(cold, hot)


def beta_schedule(
    beta_range: tuple[float, float], num_sweeps: int, kind: str = "geometric"
) -> NDArray[np.float64]:
    """One inverse temperature per sweep, from ``beta_range[0]`` to ``beta_range[1]``.

    Returns
    -------
    ndarray of shape (num_sweeps,), float64
        Geometric (``numpy.geomspace``) or linear (``numpy.linspace``) spacing, both ends
        included (a single sweep runs at the cold end).

    Examples
    --------
    >>> beta_schedule((0.1, 10.0), 3).tolist()
    [0.1, 1.0, 10.0]
    """
    validate_params(
        "beta_schedule",
        {"num_sweeps": num_sweeps, "kind": kind},
        {"num_sweeps": [Interval("int", 1, None)], "kind": [Options(("geometric", "linear"))]},
    )
    lo, hi = _check_beta_range(beta_range)
    if num_sweeps == 1:
        return np.array([hi])
    if kind == "geometric":
        return np.geomspace(lo, hi, num_sweeps)
    return np.linspace(lo, hi, num_sweeps)


def _check_beta_range(beta_range: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(b) for b in beta_range)
    except (TypeError, ValueError) as exc:
        raise InvalidParameterError(
            f"beta_range must be a pair (beta_hot, beta_cold). Got {beta_range!r} instead."
        ) from exc
    if not (math.isfinite(lo) and math.isfinite(hi) and 0.0 < lo <= hi):
        raise InvalidParameterError(
            f"beta_range must satisfy 0 < beta_hot <= beta_cold (finite). Got {beta_range!r}."
        )
    return lo, hi


def _energy_quantum(
    h: NDArray[np.float64], data: NDArray[np.float64], max_field: float, beta_min: float
) -> tuple[float, int]:
    """``(q, table size)`` when every flip cost ``2 s_i f_i`` is a multiple of ``q``, else (0, 1).

    That holds when all ``h_i`` and ``J_ij`` are integer multiples of ``q / 2`` (q taken as
    twice the smallest non-zero magnitude); the table is used only if it stays small.
    """
    vals = np.abs(np.concatenate([h, data]))
    vals = vals[vals != 0.0]
    if vals.size == 0:
        return 0.0, 1
    unit = float(vals.min())
    ratio = vals / unit
    if np.max(np.abs(ratio - np.round(ratio))) > 1e-9:
        return 0.0, 1
    quantum = 2.0 * unit
    size = int(min(max_field / unit + 2.0, _BETA_DE_CUTOFF / (beta_min * quantum) + 2.0))
    if size > 1 << 16:
        return 0.0, 1
    return quantum, size


def _base_state(seed: int | np.random.Generator | None) -> int:
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**64, dtype=np.uint64))
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint64)[0])


def _default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def anneal(
    model: IsingModel,
    *,
    num_reads: int = 16,
    num_sweeps: int = 1000,
    beta_range: tuple[float, float] | str | None = None,
    schedule: str = "geometric",
    seed: int | np.random.Generator | None = None,
    time_limit: float | None = None,
    n_jobs: int | None = None,
    polish: bool = True,
) -> AnnealResult:
    """Minimise an Ising model by simulated annealing.

    Parameters
    ----------
    model : IsingModel
        The problem; ``model.J`` is read as a CSR adjacency (uint32 column indices, uint64
        row pointers, float64 weights).
    num_reads : int, default=16
        Independent anneals, each from its own random initial state and stream.
    num_sweeps : int, default=1000
        Metropolis sweeps (``n`` single-spin attempts each, in index order) per read.
    beta_range : (float, float), {"neal", "typical"} or None, default=None
        Hot and cold inverse temperatures (1 / energy units), or the rule of
        :func:`default_beta_range` that derives them from the model (None: ``"typical"``,
        which reached the best known Gset cuts 2.5-5x faster than ``"neal"``).
    schedule : {"geometric", "linear"}, default="geometric"
        Spacing of the per-sweep inverse temperatures (:func:`beta_schedule`).
    seed : int, numpy.random.Generator or None, default=None
        Source of every read's stream; the same int gives identical reads on any number of
        threads. None draws fresh entropy (reported as ``seed_state``).
    time_limit : float or None, default=None
        Seconds. After it, no new read starts (read 0 always does) and running reads stop
        at their next chunk of sweeps; ``reads_completed`` counts the reads that finished.
    n_jobs : int or None, default=None
        Threads running reads in parallel; None uses every core available to the process.
        Results do not depend on it (except which reads a ``time_limit`` cuts short).
    polish : bool, default=True
        Greedy single-flip descent of each read's best state at the end.

    Returns
    -------
    AnnealResult

    Examples
    --------
    An antiferromagnetic triangle is frustrated: its ground energy is -1.

    >>> m = IsingModel.from_arrays(None, [[0, 1, 1], [0, 0, 1], [0, 0, 0]])
    >>> r = anneal(m, num_reads=4, num_sweeps=50, seed=0)
    >>> r.best_energy, r.reads_completed
    (-1.0, 4)
    """
    validate_params(
        "anneal",
        {
            "model": model,
            "num_reads": num_reads,
            "num_sweeps": num_sweeps,
            "seed": seed,
            "time_limit": time_limit,
            "n_jobs": n_jobs,
            "polish": polish,
        },
        {
            "model": [IsingModel],
            "num_reads": [Interval("int", 1, None)],
            "num_sweeps": [Interval("int", 1, None)],
            "seed": [Interval("int", 0, None), np.random.Generator, None],
            "time_limit": [Interval("real", 0.0, None, closed="neither"), None],
            "n_jobs": [Interval("int", 1, None), None],
            "polish": [bool],
        },
    )
    n = model.n
    if n == 0:
        raise InvalidInputError("The model has no variables.")
    t_start = _now()
    if beta_range is None or isinstance(beta_range, str):
        beta_range = default_beta_range(model, "typical" if beta_range is None else beta_range)
    betas = beta_schedule(beta_range, num_sweeps, schedule)
    beta_range = _check_beta_range(beta_range)
    J = model.J
    # Unsigned indices: numba then skips negative-index wraparound in the inner loops
    # (1.6x faster flips on G1).
    indptr = J.indptr.astype(np.uint64)
    indices = J.indices.astype(np.uint32)
    data = np.ascontiguousarray(J.data, dtype=np.float64)
    h = np.ascontiguousarray(model.h, dtype=np.float64)
    base_int = _base_state(seed)
    base = np.uint64(base_int)
    stride = max(1, -(-num_sweeps // 256))
    n_points = -(-num_sweeps // stride)
    trace_sweeps = np.minimum((np.arange(n_points, dtype=np.int64) + 1) * stride, num_sweeps)
    # Sweeps per kernel call: the whole read without a limit, else ~4M spin/edge visits.
    chunk = num_sweeps if time_limit is None else max(1, 4_000_000 // (n + data.size + 1))
    scale = float(np.abs(h).sum() + np.abs(data).sum())
    tol = 1e-12 * max(scale, 1.0)
    max_field = float((np.abs(h) + np.asarray(abs(J).sum(axis=1)).ravel()).max())
    quantum, n_lut = _energy_quantum(h, data, max_field, float(betas.min()))

    all_spins = np.empty((num_reads, n), dtype=np.int8)
    trace = np.full((num_reads, n_points), np.nan)
    completed = np.zeros(num_reads, dtype=bool)
    lock = threading.Lock()
    next_read = [0]
    deadline = math.inf if time_limit is None else t_start + time_limit

    def run_reads() -> None:
        spins = np.empty(n, dtype=np.int8)
        fields = np.empty(n)
        scal = np.empty(2)
        rng = np.empty(1, dtype=np.uint64)
        lut = np.empty(n_lut)
        while True:
            with lock:
                r = next_read[0]
                if r >= num_reads or (r > 0 and _now() >= deadline):
                    return
                next_read[0] = r + 1
            best = all_spins[r]
            _start_read(indptr, indices, data, h, base, r, spins, best, fields, scal, rng)
            t = 0
            while t < num_sweeps:
                t1 = min(num_sweeps, t + chunk)
                _sweeps(
                    indptr,
                    indices,
                    data,
                    betas,
                    t,
                    t1,
                    spins,
                    best,
                    fields,
                    scal,
                    rng,
                    trace[r],
                    stride,
                    quantum,
                    lut,
                )
                t = t1
                if t < num_sweeps and _now() >= deadline:
                    break
            completed[r] = t == num_sweeps
            if polish:
                _polish(indptr, indices, data, h, best, fields, tol)

    jobs = _default_jobs() if n_jobs is None else n_jobs
    jobs = min(jobs, num_reads)
    if jobs == 1:
        run_reads()
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            futures = [pool.submit(run_reads) for _ in range(jobs)]
            for fut in futures:
                fut.result()
    started = next_read[0]
    spins_out = all_spins[:started]
    energies = np.atleast_1d(model.energy(spins_out))
    return AnnealResult(
        spins=spins_out,
        energies=energies,
        completed=completed[:started],
        best_index=int(np.argmin(energies)),
        trace_sweeps=trace_sweeps,
        trace_energy=trace[:started] + model.offset,
        betas=betas,
        beta_range=beta_range,
        num_reads=num_reads,
        num_sweeps=num_sweeps,
        reads_completed=int(completed[:started].sum()),
        time_s=_now() - t_start,
        seed_state=base_int,
    )
