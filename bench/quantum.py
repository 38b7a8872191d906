"""Quantum numerics benchmark: TFIM ground states and exact evolution, NQP vs SciPy and QuTiP.

Prints one JSON line per figure. Run from the repository root (needs the ``bench`` extra for
QuTiP; without it the QuTiP columns are skipped with a note):

    .venv/bin/python bench/quantum.py                 # about 3-5 minutes on 2 shared cores
    .venv/bin/python bench/quantum.py --quick         # n <= 14 only

Figures
-------
- ``ground_state``: open critical TFIM chain ``H = -Σ Z_i Z_i+1 - Σ X_i`` (J = h = 1),
  n = 8..20. Times the solve for a prebuilt sparse ``H`` (the build is its own column):
  ``nqp`` = :func:`nqp.quantum.evolution.ground_state` (two-pass Lanczos, tol 1e-8 on the
  residual), ``nqp_matfree`` = the same on
  :func:`nqp.quantum.hamiltonian.transverse_field_ising_operator`, its build *included*,
  ``scipy`` = ``eigsh(H, k=1, which="SA")`` with its default start vector and tolerance,
  ``qutip`` = ``Qobj(H).groundstate(sparse=True)`` (QuTiP's defaults: ``tol=0``, ``safe=True``
  computes two eigenpairs to flag degeneracy). Each column reports its energy error against
  the free-fermion value ``-Σ σ_k`` (bidiagonal singular values) and its residual
  ``‖Hψ − Eψ‖``.
- ``evolution``: ``ψ(t) = exp(-iHt)|0…0⟩`` at 100 times uniformly on [0, t_max] for the same
  chain, n = 10..18, t_max = 1 and 10 (``--t-max``): ``nqp`` =
  :func:`nqp.quantum.evolution.evolve` (auto → Chebyshev, tol 1e-10) on the CSR matrix,
  ``nqp_matfree`` = the same on the matrix-free operator (build included), ``scipy`` =
  ``expm_multiply`` with ``start/stop/num`` (n <= 14), ``qutip`` =
  ``sesolve`` with its defaults (adams, atol 1e-8, rtol 1e-6) and with tight tolerances
  (atol 1e-12, rtol 1e-10, nsteps 1e6). Infidelity ``max_t 1 − |⟨ref|ψ⟩|²`` against a
  reference: dense ``eigh`` for n <= 12, SciPy ``expm_multiply`` for n = 14 (it works at
  double precision), NQP's Krylov propagator at tol 1e-13 (an independent algorithm) above.

- ``reservoir``: one step of :class:`nqp.quantum.reservoir.QuantumReservoir` (defaults: n = 5,
  four virtual nodes, reset injection) for 1,000 sources, washout shadow included, in µs
  per source: ``feature_map`` (every node's features as one precomputed linear map of the
  reduced state) against ``node_by_node`` (the per-node products it replaced, kept for
  registers too large for the map), from the same states; ``max_feature_diff`` between them.
  ``reservoir_washout``: the washout decided on the reduced states against the full ones.
- ``reservoir_step``: the same reservoir's step and report, compiled per source
  (``compiled``, :mod:`nqp.quantum._reservoir_kernels`) against the NumPy implementation it
  replaced (``previous``, :class:`PreviousReset`: batched ``matmul``, reshaped partial trace,
  report through ``np.abs``), alternated step by step on copies of the same states, for
  fresh sources (``phase="washout"``: every shadow tracked) and after 400 steps (all
  converged), for n = 5..8 (``--step-qubits``; 1,000, 250, 64, 16 sources; at n = 8 the
  features are read node by node in both); in µs per source, with the largest differences
  of features, states, residuals, energies and coherences against ``previous``.
- ``reservoir_update``: the state update ``ρ ← A τ A†`` alone, the compiled kernel (partial
  trace included) against BLAS batched ``matmul`` (``A τ``, full ``(A τ) A†``, mirror;
  partial trace excluded), alternated, n = 5..10 (``--update-qubits``): the evidence for
  using the compiled update at every register size.

Times are medians over ``--repeats`` runs (fewer for the largest sizes, reported as
``repeats``). BLAS is pinned to one thread (threadpoolctl). Every line carries ``loadavg``:
the machine is shared and a 1-minute load above its 2 cores inflates wall times.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse.linalg as spla
from threadpoolctl import threadpool_limits

from nqp.quantum.evolution import evolve, ground_state
from nqp.quantum.hamiltonian import transverse_field_ising, transverse_field_ising_operator

try:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "matplotlib not found"
        import qutip
except ImportError:  # pragma: no cover - optional reference
    qutip = None


def emit(figure: str, **fields: Any) -> None:
    rec = {"figure": figure, **fields, "loadavg": round(os.getloadavg()[0], 2)}
    print(json.dumps(rec), flush=True)


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), result


def free_fermion_energy(n: int) -> float:
    M = np.eye(n) + np.diag(np.ones(n - 1), k=1)
    return -float(np.linalg.svd(M, compute_uv=False).sum())


def residual(H: Any, psi: np.ndarray, energy: float) -> float:
    psi = psi / np.linalg.norm(psi)
    return float(np.linalg.norm(H @ psi - energy * psi))


def bench_ground_state(sizes: list[int], repeats: int) -> None:
    qutip_too_slow = False
    for n in sizes:
        reps = repeats if n <= 14 else (2 if n <= 16 else 1)
        t_build, H = timed(lambda n=n: transverse_field_ising(n), 1)
        exact = free_fermion_energy(n)
        row: dict[str, Any] = {"n": n, "repeats": reps, "build_s": round(t_build, 4)}

        t, gs = timed(lambda H=H: ground_state(H, tol=1e-8), reps)
        row["nqp_s"] = round(t, 4)
        row["nqp_energy_err"] = abs(gs.energy - exact)
        row["nqp_residual"] = gs.residual
        row["nqp_matvecs"] = gs.iterations

        t, gs = timed(lambda n=n: ground_state(transverse_field_ising_operator(n), tol=1e-8), reps)
        row["nqp_matfree_s"] = round(t, 4)
        row["nqp_matfree_energy_err"] = abs(gs.energy - exact)
        row["nqp_matfree_residual"] = gs.residual

        t, (w, v) = timed(lambda H=H: spla.eigsh(H, k=1, which="SA"), reps)
        row["scipy_s"] = round(t, 4)
        row["scipy_energy_err"] = abs(float(w[0]) - exact)
        row["scipy_residual"] = residual(H, v[:, 0], float(w[0]))

        if qutip is None:
            row["qutip_note"] = "qutip not installed"
        elif qutip_too_slow:
            row["qutip_note"] = "skipped: previous size took > 15 s"
        else:
            Q = qutip.Qobj(H, dims=[[2] * n, [2] * n])
            t, (e, st) = timed(lambda Q=Q: Q.groundstate(sparse=True), 1 if n >= 16 else reps)
            row["qutip_s"] = round(t, 4)
            row["qutip_energy_err"] = abs(float(np.real(e)) - exact)
            row["qutip_residual"] = residual(H, st.full().ravel(), float(np.real(e)))
            qutip_too_slow = t > 15.0
        row["speedup_vs_scipy"] = round(row["scipy_s"] / row["nqp_s"], 2)
        row["matfree_speedup_vs_scipy"] = round(row["scipy_s"] / row["nqp_matfree_s"], 2)
        if "qutip_s" in row:
            row["speedup_vs_qutip"] = round(row["qutip_s"] / row["nqp_s"], 2)
        emit("ground_state", **row)


def max_infidelity(ref: np.ndarray, states: np.ndarray) -> float:
    ov = np.abs(np.einsum("ij,ij->i", ref.conj(), states)) ** 2
    return float(np.max(1.0 - ov))


def bench_evolution(sizes: list[int], repeats: int, t_max: float) -> None:
    times = np.linspace(0.0, t_max, 100)
    for n in sizes:
        reps = repeats if n <= 14 else (2 if n <= 16 else 1)
        H = transverse_field_ising(n)
        dim = 2**n
        psi0 = np.zeros(dim)
        psi0[0] = 1.0
        row: dict[str, Any] = {"n": n, "n_times": times.size, "t_max": t_max, "repeats": reps}

        if n <= 12:
            row["reference"] = "dense eigh"
            ref = evolve(H, psi0, times, method="eigh")
        elif n <= 14:
            row["reference"] = "scipy expm_multiply"
            ref = None  # filled from the scipy column below
        else:
            row["reference"] = "nqp krylov tol=1e-13"
            ref = evolve(H, psi0, times, method="krylov", tol=1e-13, krylov_dim=40)

        if n <= 14:
            t, sp_states = timed(
                lambda H=H, psi0=psi0: spla.expm_multiply(
                    -1j * H, psi0 + 0j, start=0.0, stop=t_max, num=100, endpoint=True
                ),
                1,
            )
            row["scipy_s"] = round(t, 4)
            if ref is None:
                ref = sp_states
            else:
                row["scipy_infidelity"] = max_infidelity(ref, sp_states)
        else:
            row["scipy_note"] = "expm_multiply skipped above n = 14 (tens of seconds)"

        t, states = timed(lambda H=H, psi0=psi0: evolve(H, psi0, times, tol=1e-10), reps)
        row["nqp_s"] = round(t, 4)
        row["nqp_infidelity"] = max_infidelity(ref, states)
        del states
        t, states = timed(
            lambda n=n, psi0=psi0: evolve(
                transverse_field_ising_operator(n), psi0, times, tol=1e-10
            ),
            reps,
        )
        row["nqp_matfree_s"] = round(t, 4)
        row["nqp_matfree_infidelity"] = max_infidelity(ref, states)
        del states

        if qutip is None:
            row["qutip_note"] = "qutip not installed"
        else:
            Q = qutip.Qobj(H, dims=[[2] * n, [2] * n])
            q0 = qutip.basis([2] * n, [0] * n)
            for label, opts in (
                ("qutip_default", {}),
                ("qutip_tight", {"atol": 1e-12, "rtol": 1e-10, "nsteps": 1_000_000}),
            ):
                if t_max > 1.0 and n >= 16:
                    # measured once here: n=16 default 22 s / tight 39 s, n=18 default 63 s
                    row[label + "_note"] = "skipped for n >= 16 at t_max > 1 (20-60+ s each)"
                    continue
                if n >= 18 and label == "qutip_tight":
                    row[label + "_note"] = "skipped at n = 18 (about 20 s)"
                    continue
                t, res = timed(
                    lambda Q=Q, q0=q0, opts=opts: qutip.sesolve(Q, q0, times, options=opts),
                    1 if n >= 16 else reps,
                )
                qs = np.array([s.full().ravel() for s in res.states])
                row[label + "_s"] = round(t, 4)
                row[label + "_infidelity"] = max_infidelity(ref, qs)
                del res, qs
            row["qutip_tight_options"] = "method=adams atol=1e-12 rtol=1e-10 nsteps=1e6"
        if "qutip_default_s" in row:
            row["speedup_vs_qutip_default"] = round(row["qutip_default_s"] / row["nqp_s"], 2)
        if "qutip_tight_s" in row:
            row["speedup_vs_qutip_tight"] = round(row["qutip_tight_s"] / row["nqp_s"], 2)
        emit("evolution", **row)


class PreviousReset:
    """The reset-injection step, washout and report as they were before the compiled kernels.

    NumPy only: partial trace by reshapes, features from the (2·d'², P·V·F) map of ``τ``
    viewed as float64, state update by batched ``matmul``, washout on the reduced states
    (noise-free reset injection), report by a product with ``ρ`` viewed as float64 and
    ``np.abs``. Tables are rebuilt from the reservoir's Hamiltonian the way ``_build`` did.
    Kept here as the reference of figure ``reservoir_step``.
    """

    def __init__(self, qr: Any) -> None:
        from nqp.quantum import reservoir as qres

        qr.init_state(0)  # builds
        if qr.injection != "reset" or not qr._isometric:
            raise ValueError("PreviousReset covers noise-free reset injection only")
        self.qr = qr
        n, V = qr.qubit_count, qr.virtual_nodes
        d = 1 << n
        H = qr.hamiltonian_.toarray()
        energies, W = np.linalg.eigh(H)
        dt = qr.evolution_time / V
        k = np.arange(1, V + 1)[:, None, None]
        powers = (W[None] * np.exp(-1j * energies[None, None, :] * dt * k)) @ W.conj().T
        columns = qres._column_blocks(powers, qres._reduced_index(n, qr._input_qubits))
        K = columns.shape[0]
        C = columns.reshape(K, V, d, -1)
        first, second = np.triu_indices(K)
        self.first, self.second = first, second
        # the old size test: (2·d'², P·V·F) float64 at most _FEATURE_MAP_BYTES, else node by node
        size = len(first) * V * qr._signs.shape[1] * 2 * (d // K) ** 2 * 8
        self.weights: Any = None
        self.columns = columns
        if size <= qres._FEATURE_MAP_BYTES:
            G = np.einsum("if,pkij,pkil->pkfjl", qr._signs, C[first], C[second].conj())
            off = first != second
            G[off] += np.einsum(
                "if,pkij,pkil->pkfjl", qr._signs, C[second[off]], C[first[off]].conj()
            )
            weights = np.stack([G.real, -G.imag], axis=-1).reshape(G.shape[0] * V * G.shape[2], -1)
            self.weights = np.ascontiguousarray(weights.T)
        self.last = np.ascontiguousarray(columns.reshape(K, V, -1)[:, -1])
        energy = np.zeros((d, d, 2))
        energy[:, :, 0] = H.T
        self.energy_weights = energy.reshape(-1)

    def partial_trace(self, rho: np.ndarray) -> np.ndarray:
        b, k = rho.shape[0], self.qr.qubit_count
        out = rho
        for q in sorted(self.qr._input_qubits, reverse=True):
            lo, hi = 1 << q, 1 << (k - 1 - q)
            r = out.reshape(b, lo, 2, hi, lo, 2, hi)
            out = (r[:, :, 0, :, :, 0, :] + r[:, :, 1, :, :, 1, :]).reshape(b, lo * hi, lo * hi)
            k -= 1
        return out

    def advance(self, rho: np.ndarray, s: np.ndarray, read: bool) -> tuple[Any, np.ndarray]:
        b, d = rho.shape[0], rho.shape[1]
        tau = self.partial_trace(rho)
        psi = self.qr._amplitudes(s)
        features = None
        if read and self.weights is not None:
            products = tau.reshape(b, -1).view(np.float64) @ self.weights
            pairs = psi[:, self.first] * psi[:, self.second]
            features = np.einsum("bp,bpf->bf", pairs, products.reshape(b, pairs.shape[1], -1))
        elif read:  # node by node
            V, dp = self.qr.virtual_nodes, tau.shape[1]
            cols = self.columns.reshape(psi.shape[1], -1)
            An = (psi.astype(np.complex128) @ cols).reshape(b, V, d, dp)
            X = An @ tau[:, None]
            diags = np.einsum(
                "bkij,bkij->bki", X.view(np.float64), An.view(np.float64), optimize=False
            )
            features = (diags @ self.qr._signs).reshape(b, -1)
        A = (psi.astype(np.complex128) @ self.last).reshape(b, d, tau.shape[1])
        np.matmul(A @ tau, A.conj().transpose(0, 2, 1), out=rho)
        return features, tau

    def trace_distance(self, rho: np.ndarray, sigma: np.ndarray) -> np.ndarray:
        qr = self.qr
        diff = rho - sigma
        magnitude = np.abs(diff)
        frobenius = np.sqrt(np.einsum("bij,bij->b", magnitude, magnitude))
        entrywise = magnitude.sum(axis=(1, 2))
        distance = 0.5 * np.minimum(np.sqrt(diff.shape[1]) * frobenius, entrywise)
        threshold = qr.energy_tolerance / qr._scale
        exact = (0.5 * frobenius <= threshold) & (distance > threshold)
        if exact.any():
            distance[exact] = 0.5 * np.abs(np.linalg.eigvalsh(diff[exact])).sum(axis=1)
        return distance

    def step(self, state: Any, u: np.ndarray) -> np.ndarray:
        qr, chunk = self.qr, 32
        s = qr._polarisation(u)
        b = state.rho.shape[0]
        feats = np.empty((b, qr.n_features))
        dp = state.rho.shape[1] >> len(qr._input_qubits)
        taus = np.empty((b, dp, dp), dtype=np.complex128)
        for a in range(0, b, chunk):
            feats[a : a + chunk], taus[a : a + chunk] = self.advance(
                state.rho[a : a + chunk], s[a : a + chunk], read=True
            )
        active = np.flatnonzero(~state.converged & (state.iterations < qr.max_washout))
        for a in range(0, active.size, chunk):
            picked = active[a : a + chunk]
            rows: Any = picked
            if picked[-1] - picked[0] == picked.size - 1:
                rows = slice(int(picked[0]), int(picked[-1]) + 1)
            shadow = state.shadow[rows]
            _, tau_shadow = self.advance(shadow, s[rows], read=False)
            state.shadow[rows] = shadow
            residual = self.trace_distance(taus[rows], tau_shadow) * qr._scale
            state.residual[rows] = residual
            state.iterations[rows] += 1
            state.converged[rows] = residual <= qr.energy_tolerance
        return feats

    def report(self, state: Any) -> tuple[np.ndarray, np.ndarray]:
        rho = state.rho
        d = rho.shape[1]
        energy = rho.reshape(rho.shape[0], d * d).view(np.float64) @ self.energy_weights
        total = np.abs(rho).sum(axis=(1, 2))
        diag = np.abs(np.einsum("bii->bi", rho)).sum(axis=1)
        return energy, (total - diag) / (d - 1)


def report_pair(qr: Any, state: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(energy, phase_coherence)`` of ``qr.report(state)``."""
    report = qr.report(state)
    return report.energy, report.phase_coherence


#: Sources per register size in figure ``reservoir_step`` (a state is 16·4^n bytes, twice
#: with its shadow, per variant).
STEP_SOURCES = {5: 1000, 6: 250, 7: 64, 8: 16}


def bench_reservoir_step(repeats: int, sizes: list[int], washout_steps: int = 400) -> None:
    """The current step against :class:`PreviousReset`, alternated, from the same states."""
    from nqp.quantum.reservoir import QuantumReservoir

    for n in sizes:
        n_sources = STEP_SOURCES.get(n, 16)
        qr = QuantumReservoir(n)
        previous = PreviousReset(QuantumReservoir(n))
        variants: dict[str, tuple[Callable[..., Any], Callable[..., Any]]] = {
            "previous": (previous.step, previous.report),
            "current": (qr.step, functools.partial(report_pair, qr)),
        }
        rng = np.random.default_rng(0)
        warm = qr.init_state(2)
        qr.step(warm, np.zeros((2, 1)))  # compile
        qr.report(warm)
        for phase, steps in (("washout", 0), ("converged", washout_steps)):
            start = qr.init_state(n_sources)
            if steps:
                qr.run(rng.uniform(-1, 1, size=(steps, n_sources, 1)), state=start)
            inputs = rng.standard_normal((repeats, n_sources, 1))
            states = {name: start.copy() for name in variants}
            step_times: dict[str, list[float]] = {k: [] for k in variants}
            report_times: dict[str, list[float]] = {k: [] for k in variants}
            feats: dict[str, np.ndarray] = {}
            reports: dict[str, Any] = {}
            names = list(variants)
            for t in range(repeats):
                for name in names if t % 2 else names[::-1]:
                    stepper, reporter = variants[name]
                    t0 = time.perf_counter()
                    feats[name] = stepper(states[name], inputs[t])
                    t1 = time.perf_counter()
                    reports[name] = reporter(states[name])
                    t2 = time.perf_counter()
                    step_times[name].append(t1 - t0)
                    report_times[name].append(t2 - t1)
            us = {  # per source
                f"{kind}_{name}": round(float(np.median(times[name])) / n_sources * 1e6, 2)
                for kind, times in (("step", step_times), ("report", report_times))
                for name in variants
            }
            ref = "previous"
            diffs = {
                name: {
                    "feature": float(np.abs(feats[name] - feats[ref]).max()),
                    "rho": float(np.abs(states[name].rho - states[ref].rho).max()),
                    "residual_rel": float(
                        np.max(
                            np.abs(states[name].residual - states[ref].residual)
                            / states[ref].residual
                        )
                    ),
                    "energy": float(np.abs(reports[name][0] - reports[ref][0]).max()),
                    "coherence": float(np.abs(reports[name][1] - reports[ref][1]).max()),
                }
                for name in variants
                if name != ref
            }
            emit(
                "reservoir_step",
                qubits=n,
                phase=phase,
                sources=n_sources,
                repeats=repeats,
                tracked=int((~states["current"].converged).sum()),
                us_per_source=us,
                step_speedup={
                    name: round(us["step_previous"] / us[f"step_{name}"], 2)
                    for name in variants
                    if name != ref
                },
                max_diff_vs_previous=diffs,
            )


def bench_reservoir_update(repeats: int, sizes: list[int]) -> None:
    """The state update ``ρ ← A τ A†`` alone: compiled per source against BLAS, alternated.

    ``compiled``: :func:`nqp.quantum._reservoir_kernels.reset_step` without features (partial
    trace included). ``blas``: ``A = ψ @ C`` then batched ``matmul`` for ``A τ`` and ``(A τ)
    A†`` and the mirror of the upper triangle, from ``τ`` given (partial trace excluded, in
    BLAS's favour). From random mixed states, one input qubit.
    """
    for n in sizes:
        update_figure(n, repeats)


def update_figure(n: int, repeats: int) -> None:
    """One line of figure ``reservoir_update``, ``n`` qubits."""
    from nqp.quantum._reservoir_kernels import reset_step
    from nqp.quantum.reservoir import QuantumReservoir

    no_packed, no_taus = np.empty((0, 0)), np.empty((0, 0, 0), dtype=np.complex128)
    qr = QuantumReservoir(n)
    qr.init_state(0)  # builds
    d, dp = 1 << n, 1 << (n - 1)
    r = max(1, min(64, (4 << 20) // (16 * d * d)))  # sources: 4 MiB of states
    rng = np.random.default_rng(0)
    G = rng.normal(size=(r, d, d)) + 1j * rng.normal(size=(r, d, d))
    base = G @ G.conj().transpose(0, 2, 1)
    base /= np.einsum("bii->b", base).real[:, None, None]
    taus = np.ascontiguousarray(base[:, :dp, :dp] + base[:, dp:, dp:])
    rows = np.arange(r)
    psi = qr._amplitudes(rng.uniform(-1, 1, (r, 1)))
    tables = (qr._last_columns, qr._full, qr._first, qr._second, no_packed, no_taus)
    last = qr._last_columns[0] + 1j * qr._last_columns[1]
    upper = np.triu(np.ones((d, d), dtype=bool), 1)

    def compiled(states: np.ndarray) -> None:
        reset_step(states, rows, psi, *tables)

    def blas(states: np.ndarray) -> None:
        A = (psi.astype(np.complex128) @ last).reshape(r, d, dp)
        np.matmul(A @ taus, A.conj().transpose(0, 2, 1), out=states)
        lower = states.transpose(0, 2, 1)
        lower[:, upper] = states[:, upper].conj()

    variants = {"compiled": compiled, "blas": blas}
    states = {name: base.copy() for name in variants}
    times: dict[str, list[float]] = {name: [] for name in variants}
    reps = max(5, min(repeats * 3, int(2e8 / (d * dp * dp * r))))
    names = list(variants)
    for t in range(reps):
        for name in names if t % 2 else names[::-1]:
            states[name][:] = base
            t0 = time.perf_counter()
            variants[name](states[name])
            times[name].append(time.perf_counter() - t0)
    diff = states["compiled"] - states["blas"]
    us = {k: round(float(np.median(v)) / r * 1e6, 2) for k, v in times.items()}
    emit(
        "reservoir_update",
        qubits=n,
        sources=r,
        repeats=reps,
        us_per_source=us,
        blas_over_compiled=round(us["blas"] / us["compiled"], 2),
        max_rho_diff=float(np.abs(diff).max()),
    )


def bench_reservoir(repeats: int, n_sources: int = 1000) -> None:
    from nqp.quantum import reservoir as qres

    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((repeats + 5, n_sources, 1))
    ref = qres.QuantumReservoir().init_state(n_sources)
    qres.QuantumReservoir().run(inputs[:5], state=ref)  # past the first steps
    figures, features = {}, {}
    limit = qres._FEATURE_MAP_BYTES
    for name, cap in (("feature_map", limit), ("node_by_node", 0)):
        qres._FEATURE_MAP_BYTES = cap
        try:
            qr = qres.QuantumReservoir()
            state = ref.copy()
            times = []
            for t in range(5, 5 + repeats):
                t0 = time.perf_counter()
                features[name] = qr.step(state, inputs[t])
                times.append(time.perf_counter() - t0)
        finally:
            qres._FEATURE_MAP_BYTES = limit
        figures[name] = round(float(np.median(times)) / n_sources * 1e6, 2)
    diff = float(np.abs(features["feature_map"] - features["node_by_node"]).max())
    emit(
        "reservoir",
        sources=n_sources,
        us_per_source=figures,
        speedup=round(figures["node_by_node"] / figures["feature_map"], 2),
        max_feature_diff=diff,
    )
    # washout decided on the reduced states (noise-free reset injection: the step is an
    # isometry of them) against the full 2^n x 2^n difference, from the same states
    residuals, figures = {}, {}
    for name, reduced in (("reduced_states", True), ("full_states", False)):
        qr = qres.QuantumReservoir()
        qr._build()
        qr._isometric = reduced  # the full comparison is the path taken with noise
        state = ref.copy()
        times = []
        for t in range(5, 5 + repeats):
            t0 = time.perf_counter()
            qr.step(state, inputs[t])
            times.append(time.perf_counter() - t0)
        residuals[name] = state.residual
        figures[name] = round(float(np.median(times)) / n_sources * 1e6, 2)
    emit(
        "reservoir_washout",
        sources=n_sources,
        us_per_source=figures,
        speedup=round(figures["full_states"] / figures["reduced_states"], 2),
        # both are upper bounds of D until it is close to the tolerance; the reduced one,
        # √d' ‖Δ‖_F on d' = d / 2, is the tighter
        residual_bound_ratio_median=round(
            float(np.median(residuals["reduced_states"] / residuals["full_states"])), 4
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="sizes up to n = 14 only")
    parser.add_argument("--only", choices=("ground_state", "evolution", "reservoir"), default=None)
    parser.add_argument(
        "--t-max", type=float, nargs="+", default=[1.0, 10.0], help="evolution time spans"
    )
    parser.add_argument(
        "--step-qubits",
        type=int,
        nargs="+",
        default=[5, 6, 7, 8],
        help="register sizes of figure reservoir_step",
    )
    parser.add_argument(
        "--update-qubits",
        type=int,
        nargs="+",
        default=[5, 6, 7, 8, 9, 10],
        help="register sizes of figure reservoir_update",
    )
    args = parser.parse_args()
    gs_sizes = [8, 10, 12, 14, 16, 18, 20]
    ev_sizes = [10, 12, 14, 16, 18]
    if args.quick:
        gs_sizes = [n for n in gs_sizes if n <= 14]
        ev_sizes = [n for n in ev_sizes if n <= 14]
    with threadpool_limits(limits=1):
        # warm-up: numba compilation and qutip imports are not part of any figure
        ground_state(transverse_field_ising(9))
        ground_state(transverse_field_ising_operator(9))
        evolve(transverse_field_ising_operator(9), np.eye(512)[0] + 0j, [0.0, 1.0])
        evolve(transverse_field_ising(9), np.eye(512)[0], [0.0, 1.0])
        if args.only in (None, "ground_state"):
            bench_ground_state(gs_sizes, args.repeats)
        if args.only in (None, "evolution"):
            for t_max in args.t_max:
                bench_evolution(ev_sizes, args.repeats, t_max)
        if args.only in (None, "reservoir"):
            bench_reservoir_step(max(args.repeats, 10), args.step_qubits)
            bench_reservoir_update(args.repeats, args.update_qubits)
            bench_reservoir(args.repeats)


if __name__ == "__main__":
    main()
