"""Quantum reservoir computing on an exactly simulated register of ``n`` qubits.

Each source owns a density matrix ``ρ`` of shape ``(2^n, 2^n)``. One step feeds one input
vector: the input is written into the input qubits, the register evolves for
``evolution_time`` under a disordered transverse-field Ising Hamiltonian, and the features
``⟨Z_i⟩`` and ``⟨Z_i Z_j⟩`` are read after each of ``virtual_nodes`` equal sub-intervals
(Fujii & Nakajima 2017). Optional dephasing and amplitude damping act once per step.

Conventions are those of :mod:`nqp.quantum.hamiltonian`: qubit 0 is the most significant
Kronecker factor (qubit ``i`` is bit ``n - 1 - i`` of a basis index), ``Z|0⟩ = +|0⟩``,
``ħ = 1``.

Echo-state washout. Beside each source's state the reservoir drives a *shadow* copy started
from a different state with the same inputs. Every step (input injection, evolution,
noise) is a CPTP map, and the trace distance ``D(ρ, σ) = ½‖ρ − σ‖₁`` never increases under
a CPTP map (Nielsen & Chuang, Thm. 9.2), so once it is small it stays small: the reservoir
has forgotten its initial state. The copies count as converged when
``D · max(E_max − E_min, 2) ≤ energy_tolerance``; then their energies agree within
``energy_tolerance`` (``|Tr((ρ − σ)H)| ≤ (E_max − E_min) D`` because ``Tr(ρ − σ) = 0``) and
so does every feature (``|Tr((ρ − σ)P)| ≤ 2D`` for a Pauli product ``P``), at this step and
every later one. Convergence is never judged from a quantity one copy's unitary evolution
conserves. ``D`` itself (the eigenvalues of ``ρ − σ``) is computed only when the cheap bounds
``‖Δ‖_F ≤ ‖Δ‖₁ ≤ min(√d ‖Δ‖_F, Σ_ij |Δ_ij|)`` cannot decide; otherwise the residual holds the
upper bound. Without noise, reset injection is an isometry ``A`` of the other qubits'
reduced state, so ``ρ − σ = A (τ_ρ − τ_σ) A†`` has the trace norm of the reduced
difference, and the bounds and eigenvalues are taken on that smaller matrix. The shadow is
advanced only until the washout is decided (converged, or
``max_washout`` steps without converging), so it costs nothing afterwards.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nqp._state import BatchState
from nqp._validation import Interval, Options, check_finite_array, check_rows, validate_params
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum._reservoir_kernels import distance_bounds, report_terms, reset_step
from nqp.quantum.hamiltonian import pauli_sum

__all__ = ["QuantumReservoir", "QuantumReservoirReport", "QuantumReservoirState"]


@dataclasses.dataclass
class QuantumReservoirState(BatchState):
    """The state of many sources' quantum reservoirs, one row per source.

    Attributes
    ----------
    rho : ndarray of shape (n_sources, 2**n, 2**n), complex128
        Density matrices (Hermitian, trace 1, positive semidefinite).
    shadow : ndarray of shape (n_sources, 2**n, 2**n), complex128
        The washout copy, started from the maximally mixed state and driven by the same
        inputs; no longer advanced once the source's washout is decided.
    iterations : ndarray of shape (n_sources,), int64
        Steps driven while the washout was tracked (frozen at convergence or at
        ``max_washout``).
    converged : ndarray of shape (n_sources,), bool
        Whether the two copies have agreed within ``energy_tolerance``.
    residual : ndarray of shape (n_sources,), float64
        ``D(ρ, σ) · max(E_max − E_min, 2)`` at the last tracked step, in energy units (an
        upper bound on ``D`` in its place while far from the tolerance); bounds the current
        value too, since ``D`` never increases.
    """

    rho: NDArray[np.complex128]
    shadow: NDArray[np.complex128]
    iterations: NDArray[np.int64]
    converged: NDArray[np.bool_]
    residual: NDArray[np.float64]


@dataclasses.dataclass(frozen=True)
class QuantumReservoirReport:
    """Per-source diagnostics of a :class:`QuantumReservoir` state.

    Attributes
    ----------
    energy : ndarray of shape (n_sources,), float64
        ``Tr(ρ H)``, in the Hamiltonian's energy units.
    phase_coherence : ndarray of shape (n_sources,), float64
        Normalised l1-norm of coherence ``Σ_{i≠j} |ρ_ij| / (d − 1)`` in the computational
        basis (Baumgratz, Cramer & Plenio, PRL 113, 140401 (2014)), in [0, 1].
    converged : ndarray of shape (n_sources,), bool
        Echo-state washout reached (see the module docstring).
    iterations : ndarray of shape (n_sources,), int64
        Steps to convergence, or steps tracked so far (at most ``max_washout``).
    residual : ndarray of shape (n_sources,), float64
        ``D(ρ, σ) · max(E_max − E_min, 2)`` (or an upper bound while far from the tolerance),
        compared with ``energy_tolerance``; see :class:`QuantumReservoirState`.
    """

    energy: NDArray[np.float64]
    phase_coherence: NDArray[np.float64]
    converged: NDArray[np.bool_]
    iterations: NDArray[np.int64]
    residual: NDArray[np.float64]


_PARAMS = (
    "qubit_count",
    "input_qubits",
    "evolution_time",
    "virtual_nodes",
    "topology",
    "coupling",
    "coupling_disorder",
    "field",
    "field_disorder",
    "longitudinal",
    "injection",
    "squash",
    "input_scaling",
    "dephasing",
    "amplitude_damping",
    "energy_tolerance",
    "max_washout",
    "seed",
)

#: Sources stepped together with rotation injection: keeps the per-node temporaries (~1 MiB
#: at n = 5) in cache.
_CHUNK = 32

#: Sources stepped together with reset injection: their packed reduced states (6 KiB a source
#: at n = 5) stay in cache between the compiled step and the feature-map product.
_RESET_CHUNK = 64

_NO_PACKED = np.empty((0, 0))
_NO_TAUS = np.empty((0, 0, 0), dtype=np.complex128)

#: Largest feature map (bytes) precomputed for ``injection="reset"``: 0.7 MiB at n = 5 and
#: 4 MiB at n = 6 with one input qubit. Beyond it (n ≥ 8) features are read node by node.
_FEATURE_MAP_BYTES = 32 << 20

_REAL = Interval("real", None, None)
_NONNEG = Interval("real", 0.0, None)


def _coupling_graph(n: int, topology: str) -> list[tuple[int, int]]:
    """Coupled pairs ``(i, j)``, ``i < j``: every pair, the open chain or the ring."""
    if topology == "all-to-all":
        return [(i, j) for i in range(n) for j in range(i + 1, n)]
    chain = [(i, i + 1) for i in range(n - 1)]
    return [*chain, (0, n - 1)] if topology == "ring" and n >= 3 else chain


def _z_sign_table(n: int) -> NDArray[np.float64]:
    """Eigenvalues of ``Z_i`` then ``Z_i Z_j`` (i < j) per basis state, shape (2^n, n(n+1)/2).

    Qubit ``i`` is bit ``n - 1 - i`` of the basis index; ``Z|0⟩ = +|0⟩``.
    """
    bits = (np.arange(1 << n)[:, None] >> (n - 1 - np.arange(n))[None, :]) & 1
    z = 1.0 - 2.0 * bits
    pairs = [z[:, i] * z[:, j] for i in range(n) for j in range(i + 1, n)]
    return np.column_stack([z, *pairs]).astype(np.float64)


def _reduced_index(n: int, inputs: tuple[int, ...]) -> NDArray[np.intp]:
    """Basis index of input state ``c`` beside reduced basis state ``j``, shape (2^m, d').

    ``c`` holds the input qubits' bits (first input qubit most significant), ``j`` the other
    qubits' bits in ascending qubit order: ``(P_ψ ⊗ τ)[full[c, j], full[c', l]] = ψ_c ψ_c'
    τ_jl`` and ``(Tr_inputs ρ)_jl = Σ_c ρ[full[c, j], full[c, l]]``.
    """
    rest = [q for q in range(n) if q not in inputs]
    m, r = len(inputs), len(rest)
    c_bits = (np.arange(1 << m)[:, None] >> (m - 1 - np.arange(m))) & 1
    j_bits = (np.arange(1 << r)[:, None] >> (r - 1 - np.arange(r))) & 1
    full = (c_bits << (n - 1 - np.array(inputs, dtype=np.int64))).sum(axis=1)[:, None] + (
        j_bits << (n - 1 - np.array(rest, dtype=np.int64))
    ).sum(axis=1)[None, :]
    return np.ascontiguousarray(full, dtype=np.intp)


def _column_blocks(
    powers: NDArray[np.complex128], full: NDArray[np.intp]
) -> NDArray[np.complex128]:
    """The columns of each ``U^k`` met by ``P_ψ ⊗ τ``, shape (2^m, V·d·d').

    Basis state ``full[c, j]`` (see :func:`_reduced_index`) carries ``ψ_c τ``; so ``A_k =
    U^k (ψ ⊗ 1) = Σ_c ψ_c U^k[:, full[c]]`` for every node ``k`` comes from one product
    ``ψ @ blocks``.
    """
    return np.ascontiguousarray(powers[:, :, full].transpose(2, 0, 1, 3).reshape(full.shape[0], -1))


def _feature_map(
    columns: NDArray[np.complex128], signs: NDArray[np.float64], virtual_nodes: int
) -> tuple[NDArray[np.float64], NDArray[np.intp], NDArray[np.intp]]:
    """The features of every node as one linear map of ``τ``, per pair of input amplitudes.

    With ``A_k = Σ_c ψ_c C_ck`` (``columns``, shape ``(2^m, V·d·d')``), feature ``f`` of node
    ``k`` is ``Σ_i signs[i, f] (A_k τ A_k†)_ii = Σ_{c≤c'} ψ_c ψ_c' Re⟨G_cc'kf, τ⟩`` with
    ``(G_cc'kf)_jl = Σ_i signs[i, f] C_ck[i, j] conj(C_c'k[i, l])`` (plus the same with
    ``c, c'`` swapped when ``c ≠ c'``) and ``⟨G, τ⟩ = Σ_jl G_jl τ_jl``. ``G`` and ``τ`` are
    Hermitian, so ``Re⟨G, τ⟩ = Σ_j Re G_jj Re τ_jj + Σ_{j<l} 2 (Re G_jl Re τ_jl − Im G_jl
    Im τ_jl)``: a real product with the d'² real parameters of ``τ``, half the entries of
    ``τ`` viewed as interleaved float64.

    Returns
    -------
    weights : ndarray of shape (P·d'², V·F), float64
        Rows pair-major (``P = 2^m (2^m + 1) / 2`` pairs ``c ≤ c'``), within a pair ``Re
        τ_jj``, then ``Re τ_jl`` and ``Im τ_jl`` for ``j < l`` in row-major order (the layout
        :func:`nqp.quantum._reservoir_kernels.reset_step` packs, scaled by ``ψ_c ψ_c'``);
        columns node-major, then feature.
    first, second : ndarray of shape (P,), intp
        ``c`` and ``c'`` of each pair.
    """
    K = columns.shape[0]
    d = signs.shape[0]
    C = columns.reshape(K, virtual_nodes, d, -1)
    first, second = np.triu_indices(K)
    G = np.einsum("if,pkij,pkil->pjlkf", signs, C[first], C[second].conj())
    off = first != second
    G[off] += np.einsum("if,pkij,pkil->pjlkf", signs, C[second[off]], C[first[off]].conj())
    P, dp = G.shape[0], G.shape[1]
    upper, lower = np.triu_indices(dp, 1)  # (j, l) with j < l, row-major
    diagonal = np.arange(dp)
    weights = np.concatenate(
        [
            G[:, diagonal, diagonal].real,
            G[:, upper, lower].real + G[:, lower, upper].real,
            G[:, lower, upper].imag - G[:, upper, lower].imag,
        ],
        axis=1,
    )  # (P, d'², V, F)
    return np.ascontiguousarray(weights.reshape(P * dp * dp, -1)), first, second


class QuantumReservoir:
    """A disordered transverse-field Ising quantum reservoir, batched over sources.

    Hamiltonian (ħ = 1)::

        H = -Σ_{(i,j)∈E} J_ij Z_i Z_j - Σ_i h_i X_i - g Σ_i Z_i

    with ``J_ij ~ U(coupling ± coupling_disorder)`` and ``h_i ~ U(field ± field_disorder)``
    drawn once from ``numpy.random.default_rng(seed)``; ``E`` is every pair
    (``"all-to-all"``), the open chain or the ring.

    A step with input ``u`` (one row per source):

    1. ``s = tanh(input_scaling · u)`` (``squash="tanh"``) or ``clip(input_scaling · u, -1,
       1)`` (``"clip"``) is written into the input qubits: ``injection="reset"`` replaces
       input qubit ``k`` by ``|ψ_s⟩ = sqrt((1+s_k)/2)|0⟩ + sqrt((1-s_k)/2)|1⟩``, i.e.
       ``ρ ← |ψ_s⟩⟨ψ_s| ⊗ Tr_k ρ`` (Fujii & Nakajima 2017; dissipative, which gives the
       echo-state property); ``"rotation"`` applies ``R_y(arccos s_k)`` to the qubit instead
       (unitary: without noise the reservoir never forgets its initial state).
    2. ``ρ`` evolves for ``evolution_time`` under ``H``; after each of the ``virtual_nodes``
       equal sub-intervals ``⟨Z_i⟩`` (``i`` ascending) and ``⟨Z_i Z_j⟩`` (``i < j``,
       lexicographic) are read.
    3. Per-qubit dephasing (``ρ ← (1-p)ρ + p Z ρ Z``) and amplitude damping (rate ``γ``
       towards ``|0⟩``) act on every qubit, lumped at the end of the step.

    Parameters
    ----------
    qubit_count : int, default=5
        Qubits ``n``; states are ``2^n × 2^n`` complex128 density matrices.
    input_qubits : sequence of int, default=(0,)
        The distinct qubits that receive the input each step.
    evolution_time : float, default=1.0
        Evolution time per step, in units of 1/energy (ħ = 1).
    virtual_nodes : int, default=4
        Equal sub-intervals of ``evolution_time``; features are read after each.
    topology : {"all-to-all", "chain", "ring"}, default="all-to-all"
        Coupling graph: every pair, the open chain, or the chain closed by ``(0, n - 1)``
        (for ``n ≥ 3``; shorter rings are chains). See Notes for why all-to-all.
    coupling, coupling_disorder : float, default=0.0, 1.0
        Centre and half-width of the uniform distribution of ``J_ij``.
    field, field_disorder : float, default=1.0, 0.5
        Centre and half-width of the uniform distribution of the transverse fields ``h_i``.
    longitudinal : float, default=0.0
        Uniform longitudinal field ``g``.
    injection : {"reset", "rotation"}, default="reset"
        How the input enters the input qubits (see above).
    squash : {"tanh", "clip"}, default="tanh"
        Map from the scaled input to ``s = ⟨Z⟩ ∈ [-1, 1]`` of the input qubit.
    input_scaling : float, default=1.0
        Factor applied to the input before ``squash``; must be > 0.
    dephasing : float, default=0.0
        Per-qubit dephasing probability ``p ∈ [0, 0.5]`` per step.
    amplitude_damping : float, default=0.0
        Per-qubit amplitude-damping probability ``γ ∈ [0, 1]`` per step.
    energy_tolerance : float, default=1e-6
        Washout converges when ``D(ρ, σ) · max(E_max − E_min, 2) ≤ energy_tolerance``.
    max_washout : int, default=1000
        Steps after which an unconverged washout is given up (reported not converged).
    seed : int, default=0
        Seeds the disorder.

    Attributes
    ----------
    hamiltonian_ : scipy.sparse.csr_array of shape (2**n, 2**n), float64
    couplings_ : ndarray of shape (n, n), float64
        ``J_ij`` in the upper triangle (zero off the coupling graph).
    fields_ : ndarray of shape (n,), float64
        Transverse fields ``h_i``.
    eigenvalues_ : ndarray of shape (2**n,), float64
        Spectrum of ``H``, ascending.
    propagator_ : ndarray of shape (2**n, 2**n), complex128
        ``exp(-i H evolution_time / virtual_nodes)``.

    Notes
    -----
    Column ``k`` of the input feeds ``input_qubits[k]``. A fresh source starts in
    ``|0…0⟩``, its washout shadow in the maximally mixed state ``1/d``.

    Numerics. ``H`` is diagonalised once (``d = 2^n ≤ 1024``) and the node propagators
    ``U^k = W exp(-i E k τ/V) W†`` are exact to rounding. With ``injection="reset"`` the
    injected state is ``P_ψ ⊗ τ`` (``τ = Tr_inputs ρ`` of size ``d' = d / 2^m``), so
    ``U^k ρ U^k† = A τ A†`` with ``A = U^k (ψ ⊗ 1)`` of shape ``(d, d')``. Every feature
    of every node is then a linear function of ``τ`` whose coefficients are quadratic in the
    input amplitudes ``ψ``: the features of a chunk of sources are one real product of the
    d'² real parameters of each Hermitian ``τ``, scaled by every pair ``ψ_c ψ_c'``, with a map
    precomputed per pair (768 × 60 at n = 5), instead of ``V`` per-source products; the map
    is kept while it is at most 32 MiB (n ≤ 7 with one input qubit and four nodes), beyond
    which nodes are read one by one as ``Re Σ_j (Aτ)_ij conj(A_ij)``. The state update is the
    last node's ``A τ`` and the upper triangle of ``(A τ) A†``, compiled per source
    (:mod:`nqp.quantum._reservoir_kernels`, which also packs ``τ`` for the map), at every
    register size: the update alone (``bench/quantum.py``, figure ``reservoir_update``, one
    thread, load ≈ 1.4) took 0.43–0.62× the time of BLAS's batched ``matmul`` for n = 5..10
    (``A τ``, the full ``(A τ) A†`` and the mirror, partial trace not counted): 0.53× at n = 8
    (256 × 128 blocks), 0.62× at n = 10, so there is no size at which BLAS is taken. The
    whole step against the NumPy one it replaced (figure ``reservoir_step``, after 400 steps,
    every washout decided, load ≈ 2) took 9.0 µs a source instead of 15.5 at n = 5 (1,000
    sources), 1/1.7 of the time at n = 6, 7 and 1/1.2 at n = 8, where features are read node
    by node with BLAS in both and dominate. Reset sources
    are stepped in chunks of 64 to keep the packed states in cache. With rotation injection
    features are ``diag(ρ) @ signs`` with a ``±1`` table of shape ``(d, n + n(n-1)/2)``.

    Defaults. In the delayed-recall task of ``tests/quantum/test_reservoir.py`` (uniform
    input, recall ``u_{t-k}``, ridge readout trained on 500 steps, tested on 300) the default
    reservoir reaches a held-out NRMSE of about 0.13, 0.24, 0.36 for ``k = 1, 2, 3`` (mean over
    seeds 0–4), where the input alone gives 1.0. The open chain with the same disorder gives
    about 0.61, 0.68, 0.87 (information leaves the input qubit only along the chain), hence
    all-to-all couplings. Light dephasing (``p = 0.05``) improved recall slightly (0.10,
    0.15, 0.24); rotation injection needs noise to forget (amplitude damping: non-unital) and
    without any it has no echo-state property.

    References
    ----------
    K. Fujii and K. Nakajima, "Harnessing disordered-ensemble quantum dynamics for machine
    learning", Phys. Rev. Applied 8, 024030 (2017).

    Examples
    --------
    >>> import numpy as np
    >>> qr = QuantumReservoir(qubit_count=3, virtual_nodes=2, seed=1)
    >>> state = qr.init_state(n_sources=2)
    >>> qr.n_features
    12
    >>> x = qr.step(state, np.array([[0.5], [-0.5]]))
    >>> x.shape, x.dtype
    ((2, 12), dtype('float64'))
    >>> bool(np.all(np.abs(x) <= 1.0))
    True
    >>> rep = qr.report(state)
    >>> rep.energy.shape, bool(rep.converged.any())
    ((2,), False)
    """

    def __init__(
        self,
        qubit_count: int = 5,
        *,
        input_qubits: Sequence[int] = (0,),
        evolution_time: float = 1.0,
        virtual_nodes: int = 4,
        topology: str = "all-to-all",
        coupling: float = 0.0,
        coupling_disorder: float = 1.0,
        field: float = 1.0,
        field_disorder: float = 0.5,
        longitudinal: float = 0.0,
        injection: str = "reset",
        squash: str = "tanh",
        input_scaling: float = 1.0,
        dephasing: float = 0.0,
        amplitude_damping: float = 0.0,
        energy_tolerance: float = 1e-6,
        max_washout: int = 1000,
        seed: int = 0,
    ) -> None:
        self.qubit_count = qubit_count
        self.input_qubits = input_qubits
        self.evolution_time = evolution_time
        self.virtual_nodes = virtual_nodes
        self.topology = topology
        self.coupling = coupling
        self.coupling_disorder = coupling_disorder
        self.field = field
        self.field_disorder = field_disorder
        self.longitudinal = longitudinal
        self.injection = injection
        self.squash = squash
        self.input_scaling = input_scaling
        self.dephasing = dephasing
        self.amplitude_damping = amplitude_damping
        self.energy_tolerance = energy_tolerance
        self.max_washout = max_washout
        self.seed = seed

    _parameter_constraints: dict[str, list[Any]] = {  # noqa: RUF012
        "qubit_count": [Interval("int", 1, 10)],
        "evolution_time": [Interval("real", 0.0, None, closed="neither")],
        "virtual_nodes": [Interval("int", 1, None)],
        "topology": [Options(("all-to-all", "chain", "ring"))],
        "coupling": [_REAL],
        "coupling_disorder": [_NONNEG],
        "field": [_REAL],
        "field_disorder": [_NONNEG],
        "longitudinal": [_REAL],
        "injection": [Options(("reset", "rotation"))],
        "squash": [Options(("tanh", "clip"))],
        "input_scaling": [Interval("real", 0.0, None, closed="neither")],
        "dephasing": [Interval("real", 0.0, 0.5)],
        "amplitude_damping": [Interval("real", 0.0, 1.0)],
        "energy_tolerance": [Interval("real", 0.0, None, closed="neither")],
        "max_washout": [Interval("int", 1, None)],
        "seed": [Interval("int", 0, None)],
    }

    # ------------------------------------------------------------------ parameters

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in _PARAMS}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    @property
    def n_features(self) -> int:
        """``virtual_nodes · (n + n(n-1)/2)``: features per source and step."""
        self._build()
        return self.virtual_nodes * self._signs.shape[1]

    @property
    def n_inputs(self) -> int:
        """Input columns per source and step: ``len(input_qubits)``."""
        self._build()
        return len(self._input_qubits)

    def _validate_input_qubits(self) -> tuple[int, ...]:
        n = self.qubit_count
        value = self.input_qubits
        ok = isinstance(value, Sequence) and not isinstance(value, str) and len(value) > 0
        if ok:
            ok = all(
                isinstance(q, int | np.integer) and not isinstance(q, bool) and 0 <= q < n
                for q in value
            ) and len(set(value)) == len(value)
        if not ok:
            raise InvalidParameterError(
                f"The 'input_qubits' parameter of QuantumReservoir must be a non-empty "
                f"sequence of distinct ints in [0, {n - 1}]. Got {value!r} instead."
            )
        return tuple(int(q) for q in value)

    def _build(self) -> None:
        """Validate the parameters and precompute H, propagators and tables (once)."""
        params = self.get_params()
        # compared on every call (parameters may be changed after first use); a sequence is
        # copied so that changing it in place is seen too
        snapshot = tuple(tuple(v) if isinstance(v, list) else v for v in params.values())
        if getattr(self, "_built_for", None) == snapshot:
            return
        validate_params(type(self).__name__, params, self._parameter_constraints)
        self._input_qubits = self._validate_input_qubits()
        n = self.qubit_count
        d = 1 << n

        rng = np.random.default_rng(self.seed)
        edges = _coupling_graph(n, self.topology)
        J = np.zeros((n, n))
        for i, j in edges:  # i < j
            J[i, j] = rng.uniform(
                self.coupling - self.coupling_disorder, self.coupling + self.coupling_disorder
            )
        h = rng.uniform(self.field - self.field_disorder, self.field + self.field_disorder, n)
        terms: list[tuple[float, str]] = [(-float(J[i, j]), f"Z{i} Z{j}") for i, j in edges]
        terms += [(-float(h[i]), f"X{i}") for i in range(n)]
        terms += [(-float(self.longitudinal), f"Z{i}") for i in range(n)]
        H = sp.csr_array(pauli_sum(n, terms), dtype=np.float64)

        H_dense = H.toarray()
        energies, W = np.linalg.eigh(H_dense)
        dt = self.evolution_time / self.virtual_nodes
        k = np.arange(1, self.virtual_nodes + 1)[:, None, None]
        phases = np.exp(-1j * energies[None, None, :] * dt * k)  # (V, 1, d)
        powers = (W[None] * phases) @ W.conj().T  # U^k = W e^{-iE k dt} W†, (V, d, d)

        self.hamiltonian_ = H
        self.couplings_ = J
        self.fields_ = h
        self.eigenvalues_ = energies
        self.propagator_ = powers[0].copy()
        self._hamiltonian_dense = np.ascontiguousarray(H_dense)
        self._signs = _z_sign_table(n)
        if self.injection == "reset":
            full = _reduced_index(n, self._input_qubits)
            columns = _column_blocks(powers, full)
            K, dp = full.shape
            size = (K * (K + 1) // 2) * dp * dp * self.virtual_nodes * self._signs.shape[1] * 8
            self._feature_weights: NDArray[np.float64] | None = None
            self._columns: NDArray[np.complex128] | None = None
            if size <= _FEATURE_MAP_BYTES:
                self._feature_weights, self._first, self._second = _feature_map(
                    columns, self._signs, self.virtual_nodes
                )
            else:
                self._first, self._second = (a.astype(np.intp) for a in np.triu_indices(K))
                self._columns = columns
            last = columns.reshape(K, self.virtual_nodes, d * dp)[:, -1]
            self._last_columns = np.ascontiguousarray(np.stack([last.real, last.imag]))
            self._full = full.astype(np.uint64)
        else:
            self._powers = powers
        hamming = np.bitwise_count(np.arange(d)[:, None] ^ np.arange(d)[None, :])
        self._dephase = (1.0 - 2.0 * self.dephasing) ** hamming if self.dephasing else None
        self._isometric = self.injection == "reset" and not (
            self.dephasing or self.amplitude_damping
        )
        self._scale = max(float(energies[-1] - energies[0]), 2.0)
        self._built_for = snapshot

    # ------------------------------------------------------------------ state

    def init_state(self, n_sources: int = 1) -> QuantumReservoirState:
        """A fresh state: every source in ``|0…0⟩``, its shadow maximally mixed.

        Parameters
        ----------
        n_sources : int, default=1

        Returns
        -------
        QuantumReservoirState
        """
        self._build()
        validate_params(
            "init_state", {"n_sources": n_sources}, {"n_sources": [Interval("int", 0, None)]}
        )
        d = 1 << self.qubit_count
        rho = np.zeros((n_sources, d, d), dtype=np.complex128)
        rho[:, 0, 0] = 1.0
        shadow = np.zeros((n_sources, d, d), dtype=np.complex128)
        shadow[:, np.arange(d), np.arange(d)] = 1.0 / d
        return QuantumReservoirState(
            rho=rho,
            shadow=shadow,
            iterations=np.zeros(n_sources, dtype=np.int64),
            converged=np.zeros(n_sources, dtype=bool),
            residual=np.full(n_sources, (1.0 - 1.0 / d) * self._scale),
        )

    def _check_state(self, state: QuantumReservoirState) -> int:
        d = 1 << self.qubit_count
        if not isinstance(state, QuantumReservoirState):
            raise InvalidInputError(
                f"state must be a QuantumReservoirState, got {type(state).__name__}."
            )
        if state.rho.ndim != 3 or state.rho.shape[1:] != (d, d):
            raise InvalidInputError(
                f"state.rho must have shape (n_sources, {d}, {d}) for {self.qubit_count} "
                f"qubits, got {state.rho.shape}."
            )
        b = state.rho.shape[0]
        expected = {
            "shadow": ((b, d, d), np.complex128),
            "iterations": ((b,), np.int64),
            "converged": ((b,), np.bool_),
            "residual": ((b,), np.float64),
        }
        for name, (shape, dtype) in expected.items():
            value = getattr(state, name)
            if value.shape != shape or value.dtype != dtype:
                raise InvalidInputError(
                    f"state.{name} must have shape {shape} and dtype {np.dtype(dtype)}, got "
                    f"{value.shape} and {value.dtype}."
                )
        if state.rho.dtype != np.complex128:
            raise InvalidInputError(f"state.rho must be complex128, got {state.rho.dtype}.")
        if not (state.rho.flags.c_contiguous and state.shadow.flags.c_contiguous):
            raise InvalidInputError("state.rho and state.shadow must be C-contiguous arrays.")
        return int(b)

    def _check_u(self, u: ArrayLike, n_sources: int) -> NDArray[np.float64]:
        arr = check_finite_array(u, name="u", ndim=2)
        expected = (n_sources, len(self._input_qubits))
        if arr.shape != expected:
            raise InvalidInputError(
                f"u must have shape (n_sources, n_inputs) = {expected}, got {arr.shape}."
            )
        return arr

    # ------------------------------------------------------------------ dynamics

    def _polarisation(self, u: NDArray[np.float64]) -> NDArray[np.float64]:
        x = self.input_scaling * u
        return np.tanh(x) if self.squash == "tanh" else np.clip(x, -1.0, 1.0)

    def _rotate(self, rho: NDArray[np.complex128], s: NDArray[np.float64]) -> None:
        """Apply ``R_y(arccos s_k)`` to input qubit ``k`` of ``rho`` (``R ρ Rᵀ``), in place."""
        n = self.qubit_count
        m = rho.shape[0]
        for col, q in enumerate(self._input_qubits):
            r = rho.reshape(m, 1 << q, 2, 1 << (n - 1 - q), 1 << q, 2, 1 << (n - 1 - q))
            theta = np.arccos(s[:, col]).reshape(m, 1, 1, 1, 1, 1)
            c, sn = np.cos(theta / 2.0), np.sin(theta / 2.0)
            r0, r1 = r[:, :, 0].copy(), r[:, :, 1].copy()  # rows: R ρ
            r[:, :, 0] = c * r0 - sn * r1
            r[:, :, 1] = sn * r0 + c * r1
            r0, r1 = r[:, :, :, :, :, 0].copy(), r[:, :, :, :, :, 1].copy()  # columns: ρ Rᵀ
            r[:, :, :, :, :, 0] = c * r0 - sn * r1
            r[:, :, :, :, :, 1] = sn * r0 + c * r1

    def _noise(self, rho: NDArray[np.complex128]) -> None:
        """Per-qubit dephasing and amplitude damping on every qubit, in place."""
        if self._dephase is not None:
            rho *= self._dephase
        gamma = self.amplitude_damping
        if gamma:
            n, m = self.qubit_count, rho.shape[0]
            keep = math.sqrt(1.0 - gamma)
            for q in range(n):
                r = rho.reshape(m, 1 << q, 2, 1 << (n - 1 - q), 1 << q, 2, 1 << (n - 1 - q))
                r[:, :, 0, :, :, 0, :] += gamma * r[:, :, 1, :, :, 1, :]
                r[:, :, 1, :, :, 1, :] *= 1.0 - gamma
                r[:, :, 0, :, :, 1, :] *= keep
                r[:, :, 1, :, :, 0, :] *= keep

    def _amplitudes(self, s: NDArray[np.float64]) -> NDArray[np.float64]:
        """``ψ_c`` of the injected input state, shape (n, 2^m) (first input most significant)."""
        b = s.shape[0]
        psi = np.ones((b, 1))
        for k in range(s.shape[1]):
            amps = np.sqrt(np.stack([(1.0 + s[:, k]) / 2.0, (1.0 - s[:, k]) / 2.0], axis=1))
            psi = (psi[:, :, None] * amps[:, None, :]).reshape(b, 2 * psi.shape[1])
        return psi

    def _reset(
        self,
        states: NDArray[np.complex128],
        rows: NDArray[np.intp],
        psi: NDArray[np.float64],
        *,
        packed: NDArray[np.float64] = _NO_PACKED,
        taus: NDArray[np.complex128] = _NO_TAUS,
    ) -> None:
        """Reset-inject ``psi`` (shape (r, 2^m)) into ``states[rows]`` and evolve, in place.

        Fills ``packed`` (shape (r, P·d'²)) for the feature map and ``taus`` (shape (r, d',
        d')) with the reduced states before the step unless they are left empty; applies the
        noise afterwards (on a copy of the rows when they are scattered).
        """
        reset_step(
            states, rows, psi, self._last_columns, self._full, self._first, self._second,
            packed, taus,
        )  # fmt: skip
        if self._dephase is not None or self.amplitude_damping:
            if rows.size and (np.diff(rows) == 1).all():  # consecutive rows: a view
                self._noise(states[rows[0] : rows[0] + rows.size])
            else:
                picked = states[rows]
                self._noise(picked)
                states[rows] = picked

    def _rotation_step(
        self, rho: NDArray[np.complex128], s: NDArray[np.float64], *, read: bool
    ) -> NDArray[np.float64] | None:
        """One step of ``rho`` (shape (n, d, d)) with rotation injection, in place.

        Returns the features, of shape (n, n_features), if ``read``.
        """
        b, d = rho.shape[0], rho.shape[1]
        V = self.virtual_nodes
        diags = np.empty((b, V, d)) if read else None
        self._rotate(rho, s)
        # diag(U^k ρ U^k†)_i = Σ_j (U^k)_ij (ρ U^k†)_ji: one product per virtual node.
        for k in range(V) if read else [V - 1]:
            Y = rho @ self._powers[k].conj().T
            if diags is not None:
                diags[:, k] = np.einsum("ij,bji->bi", self._powers[k], Y).real
        np.matmul(self._powers[V - 1], Y, out=rho)
        self._noise(rho)
        return None if diags is None else (diags @ self._signs).reshape(b, -1)

    def _node_features(
        self, tau: NDArray[np.complex128], psi: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        """Features of every node, read one by one, after injecting ``ψ`` beside ``τ``.

        ``tau`` of shape (b, d', d'), ``psi`` of shape (b, 2^m); for registers whose feature
        map would exceed ``_FEATURE_MAP_BYTES``. Returns shape (b, n_features).
        """
        b, V = tau.shape[0], self.virtual_nodes
        d, dp = self._signs.shape[0], tau.shape[1]
        if self._columns is None:  # pragma: no cover - set whenever the map is not
            raise RuntimeError("node-by-node features need the column blocks")
        cols = self._columns.reshape(psi.shape[1], -1)
        A = (psi.astype(np.complex128) @ cols).reshape(b, V, d, dp)
        X = A @ tau[:, None]
        # Re Σ_j X_ij conj(A_ij) = Σ over the real and imaginary parts of both.
        diags = np.einsum("bkij,bkij->bki", X.view(np.float64), A.view(np.float64), optimize=False)
        return (diags @ self._signs).reshape(b, -1)

    def step(
        self, state: QuantumReservoirState, u: ArrayLike, *, rows: ArrayLike | None = None
    ) -> NDArray[np.float64]:
        """Advance every source by one input, in place, and return its features.

        Parameters
        ----------
        state : QuantumReservoirState
            From :meth:`init_state`; updated in place. Left unchanged if ``u`` or ``rows``
            is rejected.
        u : array_like of shape (n_sources, n_inputs), float64
            One input per source and input qubit (normalised observations); with ``rows``,
            one per row of ``rows``.
        rows : array-like of int of shape (batch,), optional
            The distinct state rows to advance, ``u[k]`` going to ``rows[k]`` (default:
            every row, in order). With reset injection the rows are stepped where they are,
            not gathered and scattered back (32 kB a source at 5 qubits, shadow included);
            the result equals stepping ``state.take(rows)`` bit for bit.

        Returns
        -------
        ndarray of shape (n_sources, n_features) or (batch, n_features), float64
            ``⟨Z_i⟩`` then ``⟨Z_i Z_j⟩`` (i < j) after each virtual node, node-major.

        Raises
        ------
        InvalidInputError
            If ``u`` has the wrong shape or non-finite values, ``rows`` are not distinct
            indices of the state, or ``state`` does not match.
        """
        self._build()
        n_sources = self._check_state(state)
        picked = None
        if rows is not None:
            picked = check_rows(
                rows, batch=np.size(rows), n_rows=n_sources, what="one per row of u"
            )
        u_arr = self._check_u(u, n_sources if picked is None else picked.size)
        s = self._polarisation(u_arr)
        if self.injection == "reset":
            return self._step_reset(state, s, np.arange(n_sources) if picked is None else picked)
        if picked is not None:  # rotation injection: on a gathered copy of the rows
            sub = state.take(picked)
            feats = self.step(sub, u_arr)
            state.put(picked, sub)
            return feats
        feats = np.empty((n_sources, self.n_features))
        for a in range(0, n_sources, _CHUNK):
            chunk = slice(a, a + _CHUNK)
            feats[chunk] = self._rotation_step(state.rho[chunk], s[chunk], read=True)
        active = self._tracked(state)
        for a in range(0, active.size, _CHUNK):
            picked = active[a : a + _CHUNK]
            block: slice | NDArray[np.intp] = picked
            if picked[-1] - picked[0] == picked.size - 1:  # contiguous rows: work on views
                block = slice(int(picked[0]), int(picked[-1]) + 1)
            shadow = state.shadow[block]
            self._rotation_step(shadow, s[block], read=False)
            state.shadow[block] = shadow
            distance = self._trace_distance(state.rho, picked, state.shadow, picked)
            self._record(state, picked, distance)
        return feats

    def _tracked(self, state: QuantumReservoirState) -> NDArray[np.intp]:
        """Rows whose washout is still undecided (their shadows are advanced)."""
        return np.flatnonzero(~state.converged & (state.iterations < self.max_washout))

    def _record(
        self, state: QuantumReservoirState, rows: NDArray[np.intp], distance: NDArray[np.float64]
    ) -> None:
        residual = distance * self._scale
        state.residual[rows] = residual
        state.iterations[rows] += 1
        state.converged[rows] = residual <= self.energy_tolerance

    def _step_reset(
        self, state: QuantumReservoirState, s: NDArray[np.float64], rows: NDArray[np.intp]
    ) -> NDArray[np.float64]:
        """:meth:`step` with reset injection of ``s[k]`` into row ``rows[k]``, washout included.

        In chunks of rows: the states advance (compiled, :func:`reset_step`, in place on
        the state's rows) while packing their reduced states for the feature map, whose
        product gives the features; then the shadows still tracked advance and are compared
        with the states. Without noise the comparison is between the reduced states before
        the step (``ρ − σ = A (τ_ρ − τ_σ) A†`` with ``A† A = 1``: same trace norm on a
        quarter of the entries per input qubit); with noise between the full states after
        it. Returns shape (len(rows), n_features).
        """
        batch = rows.size
        psi = self._amplitudes(s)
        dp = self._full.shape[1]
        weights = self._feature_weights
        feats = np.empty((batch, self.n_features))
        live = ~state.converged[rows] & (state.iterations[rows] < self.max_washout)
        tau_buffer = np.empty((min(batch, _RESET_CHUNK), dp, dp), dtype=np.complex128)
        for a in range(0, batch, _RESET_CHUNK):
            b = min(a + _RESET_CHUNK, batch)
            chunk = rows[a:b]
            tracked = np.flatnonzero(live[a:b])  # positions in the chunk
            need_taus = weights is None or (self._isometric and tracked.size > 0)
            taus = tau_buffer[: b - a] if need_taus else _NO_TAUS
            packed = _NO_PACKED
            if weights is not None:
                packed = np.empty((b - a, weights.shape[0]))
            self._reset(state.rho, chunk, psi[a:b], packed=packed, taus=taus)
            if weights is not None:
                np.matmul(packed, weights, out=feats[a:b])
            else:
                feats[a:b] = self._node_features(taus, psi[a:b])
            if not tracked.size:
                continue
            picked = chunk[tracked]
            if self._isometric:
                shadow_taus = np.empty((picked.size, dp, dp), dtype=np.complex128)
                self._reset(state.shadow, picked, psi[a + tracked], taus=shadow_taus)
                own = np.arange(picked.size)
                distance = self._trace_distance(taus, tracked, shadow_taus, own)
            else:
                self._reset(state.shadow, picked, psi[a + tracked])
                distance = self._trace_distance(state.rho, picked, state.shadow, picked)
            self._record(state, picked, distance)
        return feats

    def _trace_distance(
        self,
        first: NDArray[np.complex128],
        rows: NDArray[np.intp],
        second: NDArray[np.complex128],
        second_rows: NDArray[np.intp],
    ) -> NDArray[np.float64]:
        """``½‖first[rows] − second[second_rows]‖₁`` where it decides convergence, else a bound.

        ``first`` and ``second`` are stacks of shape (·, D, D); returns shape (len(rows),).
        ``‖Δ‖_F ≤ ‖Δ‖₁ ≤ min(√D ‖Δ‖_F, Σ_ij |Δ_ij|)``: the eigenvalues of ``Δ`` are computed
        only for the rows whose bounds straddle the convergence threshold.
        """
        frobenius, entrywise = distance_bounds(first, rows, second, second_rows)
        distance = 0.5 * np.minimum(math.sqrt(first.shape[1]) * frobenius, entrywise)
        threshold = self.energy_tolerance / self._scale
        exact = (0.5 * frobenius <= threshold) & (distance > threshold)
        if exact.any():
            eig = np.linalg.eigvalsh(first[rows[exact]] - second[second_rows[exact]])
            distance[exact] = 0.5 * np.abs(eig).sum(axis=1)
        return distance

    def run(
        self, u_seq: ArrayLike, state: QuantumReservoirState | None = None
    ) -> NDArray[np.float64]:
        """Drive the reservoir with a whole input sequence (offline fitting).

        Parameters
        ----------
        u_seq : array_like of shape (T, n_inputs) or (T, n_sources, n_inputs), float64
        state : QuantumReservoirState, optional
            Advanced in place; a fresh :meth:`init_state` if omitted.

        Returns
        -------
        ndarray of shape (T, n_features) or (T, n_sources, n_features), float64
        """
        self._build()
        arr = check_finite_array(u_seq, name="u_seq")
        if arr.ndim not in (2, 3):
            raise InvalidInputError(
                f"u_seq must have shape (T, n_inputs) or (T, n_sources, n_inputs), got {arr.shape}."
            )
        single = arr.ndim == 2
        seq = arr[:, None, :] if single else arr
        if state is None:
            state = self.init_state(seq.shape[1])
        n_sources = self._check_state(state)
        if seq.shape[1:] != (n_sources, len(self._input_qubits)):
            raise InvalidInputError(
                f"u_seq must have {n_sources} source(s) and {len(self._input_qubits)} "
                f"input(s) per step, got shape {arr.shape}."
            )
        out = np.empty((seq.shape[0], n_sources, self.n_features))
        for t in range(seq.shape[0]):
            out[t] = self.step(state, seq[t])
        return out[:, 0] if single else out

    def report(
        self, state: QuantumReservoirState, *, rows: ArrayLike | None = None
    ) -> QuantumReservoirReport:
        """Energy, phase coherence and washout convergence of every source.

        Parameters
        ----------
        state : QuantumReservoirState
        rows : array-like of int of shape (batch,), optional
            Report these distinct state rows only, in this order (default: every row).

        Returns
        -------
        QuantumReservoirReport
            Arrays of shape (n_sources,), or (batch,) with ``rows``.
        """
        self._build()
        n_sources = self._check_state(state)
        if rows is None:
            picked = np.arange(n_sources)
        else:
            picked = check_rows(
                rows, batch=np.size(rows), n_rows=n_sources, what="the rows to report"
            )
        d = state.rho.shape[1]
        energy, off_diagonal = report_terms(state.rho, picked, self._hamiltonian_dense)
        coherence = off_diagonal / (d - 1) if d > 1 else np.zeros(picked.size)
        return QuantumReservoirReport(
            energy=energy,
            phase_coherence=coherence,
            converged=state.converged[picked],
            iterations=state.iterations[picked],
            residual=state.residual[picked],
        )
