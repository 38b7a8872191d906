"""Sparse qubit Hamiltonians built from Pauli strings with bit operations.

Conventions (shared by every module of :mod:`nqp.quantum`):

- **Tensor order.** Qubit 0 is the *most significant* factor of the Kronecker product:
  an operator acting as ``op_i`` on qubit ``i`` is ``kron(op_0, op_1, ..., op_{n-1})``
  (QuTiP's ``tensor`` order). Equivalently, qubit ``i`` is bit ``n - 1 - i`` of the
  basis index ``b``: ``bit_i(b) = (b >> (n - 1 - i)) & 1``.
- **Spins.** ``Z|0⟩ = +|0⟩`` and ``Z|1⟩ = -|1⟩``, so an Ising spin ``s_i = +1`` is bit 0 and
  ``s_i = 1 - 2 bit_i``; the classical model :class:`nqp.quantum.ising.IsingModel` becomes the
  diagonal operator of :func:`ising_hamiltonian` with ``s_i → Z_i``.
- **Units.** ``ħ = 1``; energies in arbitrary units, times in units of 1/energy.
- **Pauli strings.** ``"Z0 Z1"``, ``"X2"``, ``"Y0 Y3"``, ``"I4"`` and ``""`` (identity):
  whitespace-separated factors ``<P><qubit>`` with ``P`` in ``{I, X, Y, Z}``, each qubit at
  most once.

Construction. A Pauli string ``P`` maps a basis state to one basis state:
``P|b⟩ = i^{n_Y} (-1)^{popcount(b & z)} |b ⊕ f⟩`` where ``f`` has the bits of the X and Y
factors (flip mask) and ``z`` those of the Z and Y factors (``Y = i X Z``:
``Y|0⟩ = i|1⟩``, ``Y|1⟩ = -i|0⟩``). Terms sharing a flip mask are summed into one vector of
amplitudes, and row ``r`` of the matrix holds one entry per distinct flip mask, at column
``r ⊕ f``. The CSR arrays are written directly — no Kronecker chains and no COO sort.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from numbers import Number
from typing import Any

import numba
import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.quantum.ising import IsingModel

__all__ = [
    "BitFlipOperator",
    "ising_diagonal",
    "ising_hamiltonian",
    "pauli_sum",
    "transverse_field_ising",
    "transverse_field_ising_operator",
]

#: The largest register the builders accept (a 2^30 state vector is 8-16 GiB).
MAX_QUBITS = 30

_FACTOR = re.compile(r"([IXYZ])(\d+)")


def _check_n_qubits(owner: str, n_qubits: int) -> None:
    validate_params(owner, {"n_qubits": n_qubits}, {"n_qubits": [Interval("int", 1, MAX_QUBITS)]})


def _basis(n_qubits: int) -> NDArray[np.int64]:
    return np.arange(1 << n_qubits, dtype=np.int64)


_PLUS_MINUS = np.array([1.0, -1.0]).reshape(1, 2, 1)


def _spin(n_qubits: int, qubit: int) -> NDArray[np.float64]:
    """``s_i = 1 - 2 bit_i`` (the eigenvalue of ``Z_i``) for every basis index, float64.

    Qubit ``i`` is bit ``n - 1 - i``: blocks of ``2^(n-1-i)`` entries alternate +1, -1.
    """
    shape = (1 << qubit, 2, 1 << (n_qubits - 1 - qubit))
    return np.broadcast_to(_PLUS_MINUS, shape).reshape(-1)


def _parse_term(n_qubits: int, label: str) -> tuple[int, int, int]:
    """Flip mask, sign mask and number of Y factors of one Pauli string."""
    if not isinstance(label, str):
        raise InvalidInputError(f"A Pauli string must be a str, got {type(label).__name__}.")
    flip = zmask = n_y = 0
    seen: set[int] = set()
    for token in label.split():
        match = _FACTOR.fullmatch(token)
        if match is None:
            raise InvalidInputError(
                f"Cannot parse Pauli factor {token!r} in {label!r}: expected one of I, X, Y, Z "
                "followed by a qubit index, e.g. 'Z0 X3'."
            )
        op, q = match.group(1), int(match.group(2))
        if q >= n_qubits:
            raise InvalidInputError(
                f"Pauli string {label!r} acts on qubit {q}, but there are {n_qubits} qubits "
                f"(indices 0..{n_qubits - 1})."
            )
        if q in seen:
            raise InvalidInputError(f"Pauli string {label!r} names qubit {q} more than once.")
        seen.add(q)
        bit = 1 << (n_qubits - 1 - q)
        if op in ("X", "Y"):
            flip |= bit
        if op in ("Z", "Y"):
            zmask |= bit
        n_y += op == "Y"
    return flip, zmask, n_y


@numba.njit(cache=True)
def _fill_csr(flips, rows, consts, values, indices, data):  # pragma: no cover - compiled
    """Fill CSR ``indices``/``data`` with ``len(flips)`` entries per row, sorted by column.

    Row ``r`` holds column ``c = r ^ flips[k]`` with value ``values[rows[k], c]`` when
    ``rows[k] >= 0`` and the constant ``consts[k]`` otherwise.
    """
    m = flips.shape[0]
    dim = indices.shape[0] // m
    cols = np.empty(m, dtype=indices.dtype)
    order = np.empty(m, dtype=np.int64)
    for r in range(dim):
        for k in range(m):
            cols[k] = r ^ flips[k]
            order[k] = k
        # insertion sort of the m columns (m = number of distinct flip masks, small)
        for a in range(1, m):
            key = order[a]
            b = a - 1
            while b >= 0 and cols[order[b]] > cols[key]:
                order[b + 1] = order[b]
                b -= 1
            order[b + 1] = key
        base = r * m
        for a in range(m):
            k = order[a]
            c = cols[k]
            indices[base + a] = c
            data[base + a] = values[rows[k], c] if rows[k] >= 0 else consts[k]


def _assemble(
    n_qubits: int,
    flips: NDArray[np.int64],
    values: NDArray,
    rows: NDArray[np.int64] | None = None,
    consts: NDArray | None = None,
) -> sp.csr_array:
    """CSR matrix ``Σ_k Σ_c v_k[c] |c ⊕ f_k⟩⟨c|`` for distinct flip masks ``f_k = flips[k]``.

    ``v_k`` is ``values[rows[k]]`` (a vector of shape (2**n,)) or, where ``rows[k] < 0``, the
    constant ``consts[k]``; ``rows=None`` means ``rows[k] = k``. Written row by row with sorted
    column indices (row ``r`` holds column ``r ⊕ f_k``); explicit zeros are removed, so the
    result is canonical CSR.
    """
    dim = 1 << n_qubits
    m = flips.size
    if m == 0:
        return sp.csr_array((dim, dim), dtype=values.dtype)
    if rows is None:
        rows = np.arange(m, dtype=np.int64)
    if consts is None:
        consts = np.zeros(m, dtype=values.dtype)
    nnz = m * dim
    idx_dtype = np.int32 if nnz < np.iinfo(np.int32).max else np.int64
    indices = np.empty(nnz, dtype=idx_dtype)
    data = np.empty(nnz, dtype=values.dtype)
    _fill_csr(flips.astype(idx_dtype), rows, consts.astype(values.dtype), values, indices, data)
    indptr = np.arange(0, nnz + 1, m, dtype=idx_dtype)
    H = sp.csr_array((data, indices, indptr), shape=(dim, dim))
    H.has_sorted_indices = True
    H.eliminate_zeros()
    return H


def pauli_sum(n_qubits: int, terms: Iterable[tuple[complex | float, str]]) -> sp.csr_array:
    """Sparse matrix of a weighted sum of Pauli strings, ``Σ_t c_t P_t``.

    Parameters
    ----------
    n_qubits : int
        Number of qubits ``n``; the matrix is ``2^n × 2^n``.
    terms : iterable of (complex or float, str)
        Pairs ``(c_t, label_t)``, e.g. ``(0.5, "Z0 Z1")``, ``(1.0, "X2")``, ``(0.3, "Y0 Y3")``,
        ``(2.0, "")`` (identity). Repeated strings add up.

    Returns
    -------
    scipy.sparse.csr_array of shape (2**n_qubits, 2**n_qubits)
        float64 when every term is real (real coefficient and an even number of Y factors),
        complex128 otherwise. Canonical CSR (sorted indices, no explicit zeros). Hermitian
        exactly when every coefficient is real.

    Notes
    -----
    See the module docstring for the bit-operation construction and the qubit order
    (qubit 0 is the most significant Kronecker factor).

    Examples
    --------
    >>> H = pauli_sum(2, [(1.0, "Z0 Z1"), (0.5, "X0")])
    >>> H.dtype, H.shape
    (dtype('float64'), (4, 4))
    >>> H.toarray()
    array([[ 1. ,  0. ,  0.5,  0. ],
           [ 0. , -1. ,  0. ,  0.5],
           [ 0.5,  0. , -1. ,  0. ],
           [ 0. ,  0.5,  0. ,  1. ]])
    >>> pauli_sum(1, [(1.0, "Y0")]).toarray()
    array([[0.+0.j, 0.-1.j],
           [0.+1.j, 0.+0.j]])
    """
    _check_n_qubits("pauli_sum", n_qubits)
    parsed: list[tuple[complex, int, int]] = []
    real = True
    for term in terms:
        try:
            coeff, label = term
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(
                f"Each term must be a (coefficient, Pauli string) pair, got {term!r}."
            ) from exc
        if not isinstance(coeff, Number) or isinstance(coeff, bool):
            raise InvalidInputError(f"Coefficient of {label!r} must be a number, got {coeff!r}.")
        c = complex(coeff)
        if not (np.isfinite(c.real) and np.isfinite(c.imag)):
            raise InvalidInputError(f"Coefficient of {label!r} is not finite: {coeff!r}.")
        flip, zmask, n_y = _parse_term(n_qubits, label)
        phase = (1, 1j, -1, -1j)[n_y % 4]
        c *= phase
        real = real and c.imag == 0.0
        parsed.append((c, flip, zmask))

    dtype = np.float64 if real else np.complex128
    flips = np.array(sorted({flip for _, flip, _ in parsed}), dtype=np.int64)
    slot = {int(f): k for k, f in enumerate(flips)}
    values = np.zeros((flips.size, 1 << n_qubits), dtype=dtype)  # one allocation, touched once
    basis = _basis(n_qubits) if any(zmask for _, _, zmask in parsed) else None
    for c, flip, zmask in parsed:
        vec = values[slot[flip]]
        value = c.real if real else c
        if zmask == 0:
            vec += value
        else:
            assert basis is not None  # built above whenever some term has a Z mask
            # (-1)^{popcount(b & z)} as ±1
            vec += value * (1.0 - 2.0 * (np.bitwise_count(basis & zmask) & 1))
    return _assemble(n_qubits, flips, values)


def _per_site(value: float | ArrayLike, length: int, name: str) -> NDArray[np.float64]:
    arr = check_finite_array(value, name=name)
    if arr.ndim == 0:
        return np.full(length, float(arr))
    if arr.shape != (length,):
        raise InvalidInputError(
            f"{name} must be a scalar or have shape ({length},), got shape {arr.shape}."
        )
    return arr


def _tfim_diagonal_and_fields(
    owner: str,
    n_qubits: int,
    coupling: float | ArrayLike,
    field: float | ArrayLike,
    longitudinal: float | ArrayLike,
    periodic: bool,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Checked TFIM parameters: the diagonal ``-Σ J Z Z - Σ g Z`` of shape (2**n,) and ``h``."""
    _check_n_qubits(owner, n_qubits)
    if not isinstance(periodic, (bool, np.bool_)):
        raise InvalidParameterError(
            f"The 'periodic' parameter of {owner} must be a bool. Got {periodic!r} instead."
        )
    if periodic and n_qubits < 3:
        raise InvalidParameterError(
            f"The 'periodic' parameter of {owner} needs n_qubits >= 3 "
            f"(got n_qubits={n_qubits}): on 2 qubits the wrap-around bond repeats bond 0."
        )
    n = n_qubits
    n_bonds = n if periodic else n - 1
    J = _per_site(coupling, n_bonds, "coupling")
    h = _per_site(field, n, "field")
    g = _per_site(longitudinal, n, "longitudinal")
    diag = np.zeros(1 << n)
    for i in range(n_bonds):
        if J[i] != 0.0:
            diag -= J[i] * (_spin(n, i) * _spin(n, (i + 1) % n))
    for i in range(n):
        if g[i] != 0.0:
            diag -= g[i] * _spin(n, i)
    return diag, h


def transverse_field_ising(
    n_qubits: int,
    *,
    coupling: float | ArrayLike = 1.0,
    field: float | ArrayLike = 1.0,
    longitudinal: float | ArrayLike = 0.0,
    periodic: bool = False,
) -> sp.csr_array:
    """Transverse-field Ising chain ``H = -Σ_i J_i Z_i Z_{i+1} - Σ_i h_i X_i - Σ_i g_i Z_i``.

    Parameters
    ----------
    n_qubits : int
        Chain length ``n``.
    coupling : float or array_like of shape (n - 1,) open / (n,) periodic, default=1.0
        Bond couplings ``J_i`` between qubits ``i`` and ``i + 1`` (bond ``n - 1`` joins
        qubit ``n - 1`` to qubit 0 when ``periodic``). ``J > 0`` is ferromagnetic.
    field : float or array_like of shape (n,), default=1.0
        Transverse fields ``h_i``.
    longitudinal : float or array_like of shape (n,), default=0.0
        Longitudinal fields ``g_i``.
    periodic : bool, default=False
        Close the chain into a ring (needs ``n ≥ 3``; for ``n = 2`` the wrap-around bond
        would repeat bond 0).

    Returns
    -------
    scipy.sparse.csr_array of shape (2**n, 2**n), float64
        Real symmetric, canonical CSR, ``n + 1`` nonzeros per row when every field is
        nonzero. Disordered chains are passed as arrays, drawn by the caller from a seeded
        ``numpy.random.Generator``.

    Notes
    -----
    The uniform open chain maps to free fermions (Pfeuty, Ann. Phys. 57, 79 (1970)): its
    ground energy is ``-Σ_k σ_k`` over the singular values of the ``n × n`` bidiagonal
    matrix with ``h`` on the diagonal and ``J`` on the superdiagonal.

    Examples
    --------
    >>> import numpy as np
    >>> H = transverse_field_ising(2, coupling=1.0, field=0.5)
    >>> np.round(np.linalg.eigvalsh(H.toarray()), 6)   # ±sqrt(J² + 4h²) and ±J
    array([-1.414214, -1.      ,  1.      ,  1.414214])
    """
    n = n_qubits
    diag, h = _tfim_diagonal_and_fields(
        "transverse_field_ising", n_qubits, coupling, field, longitudinal, periodic
    )
    # diagonal (flip mask 0) from the vector, one constant -h_i per single-bit flip
    active = [i for i in range(n) if h[i] != 0.0]
    has_diag = bool(np.any(diag != 0.0))
    flips = np.array(([0] if has_diag else []) + [1 << (n - 1 - i) for i in active], np.int64)
    rows = np.array(([0] if has_diag else []) + [-1] * len(active), dtype=np.int64)
    consts = np.array(([0.0] if has_diag else []) + [-h[i] for i in active])
    order = np.argsort(flips)
    return _assemble(n, flips[order], diag[None, :], rows[order], consts[order])


def ising_diagonal(model: IsingModel) -> NDArray[np.float64]:
    """Energies of every computational basis state under a classical Ising model.

    Parameters
    ----------
    model : IsingModel
        ``E(s) = h·s + ½ sᵀ J s + offset`` on ``n`` spins.

    Returns
    -------
    ndarray of shape (2**n,), float64
        Entry ``b`` is ``E(s)`` with ``s_i = 1 - 2 bit_i(b)`` and qubit ``i`` bit ``n - 1 - i``
        of ``b`` (``s = +1`` is ``|0⟩``).

    Examples
    --------
    >>> from nqp.quantum.ising import IsingModel
    >>> m = IsingModel.from_arrays([0.5, 0.0], [[0.0, -1.0], [0.0, 0.0]])
    >>> ising_diagonal(m)   # |00>, |01>, |10>, |11>
    array([-0.5,  1.5,  0.5, -1.5])
    """
    if not isinstance(model, IsingModel):
        raise InvalidInputError(f"model must be an IsingModel, got {type(model).__name__}.")
    n = model.n
    _check_n_qubits("ising_diagonal", n)
    spins = [_spin(n, i) for i in range(n)] if n <= 20 else None
    energy = np.full(1 << n, float(model.offset))
    for i in range(n):
        if model.h[i] != 0.0:
            energy += model.h[i] * (spins[i] if spins is not None else _spin(n, i))
    upper = sp.triu(model.J, k=1).tocoo()
    for i, j, w in zip(upper.row, upper.col, upper.data, strict=True):
        if w != 0.0:
            si = spins[i] if spins is not None else _spin(n, int(i))
            sj = spins[j] if spins is not None else _spin(n, int(j))
            energy += w * (si * sj)
    return energy


def ising_hamiltonian(model: IsingModel) -> sp.csr_array:
    """The classical Ising model as a diagonal qubit operator (``s_i → Z_i``).

    Parameters
    ----------
    model : IsingModel

    Returns
    -------
    scipy.sparse.csr_array of shape (2**n, 2**n), float64
        ``diag(ising_diagonal(model))`` with explicit zeros removed.

    Examples
    --------
    >>> from nqp.quantum.ising import IsingModel
    >>> m = IsingModel.from_arrays(None, [[0.0, 1.0], [0.0, 0.0]])
    >>> ising_hamiltonian(m).diagonal()
    array([ 1., -1., -1.,  1.])
    """
    return _assemble(model.n, np.zeros(1, dtype=np.int64), ising_diagonal(model)[None, :])


# --------------------------------------------------------------------------- matrix-free

#: log2 of the tile (in float64 entries) the matrix-free kernel keeps in cache: 2^13 floats
#: (64 KiB) of ``y`` and its partner tile of ``x``.
_TILE_BITS = 13


@numba.njit(cache=True, boundscheck=False)
def _axpy(y, x, c):  # pragma: no cover - compiled
    for i in range(y.shape[0]):
        y[i] += c * x[i]


@numba.njit(cache=True)
def _flip_matvec(diag, flips, coefs, x, y, shift, tile_bits):  # pragma: no cover - compiled
    """``y = diag ⊙ x + Σ_k coefs[k] x[· ⊕ flips[k]]`` on float64 arrays.

    ``x`` and ``y`` hold ``2^shift`` consecutive floats per basis state (shift 1: a complex
    vector viewed as float64 pairs), so basis index ``r`` owns floats ``r·2^shift + q`` and
    flipping mask ``f`` of ``r`` flips ``f << shift`` of the float index. The float index range
    is walked in tiles of ``2^tile_bits``. Inside a tile, flips of one bit ``>= 8`` run as
    contiguous half-block AXPYs; the other in-tile flips (low bits, multi-bit masks) are
    summed in the same pass as the diagonal; a flip reaching outside the tile adds the partner
    tile ``x[tile ⊕ f]`` in one contiguous pass.
    """
    size = x.shape[0]
    tile = min(1 << tile_bits, size)
    m = flips.shape[0]
    scalar = np.zeros(m, dtype=np.bool_)
    n_scalar = 0
    for k in range(m):
        f = flips[k] << shift
        f_lo = f & (tile - 1)
        if f == f_lo and (f_lo < 8 or (f_lo & (f_lo - 1)) != 0):
            scalar[k] = True
            n_scalar += 1
    s_flip = np.empty(n_scalar, dtype=np.int64)
    s_coef = np.empty(n_scalar)
    j = 0
    for k in range(m):
        if scalar[k]:
            s_flip[j] = flips[k] << shift
            s_coef[j] = coefs[k]
            j += 1
    for base in range(0, size, tile):
        yt = y[base : base + tile]
        xt = x[base : base + tile]
        for i in range(tile):
            acc = diag[(base + i) >> shift] * xt[i]
            for q in range(n_scalar):
                acc += s_coef[q] * xt[i ^ s_flip[q]]
            yt[i] = acc
        for k in range(m):
            if scalar[k]:
                continue
            f = flips[k] << shift
            c = coefs[k]
            f_hi = f & ~(tile - 1)
            f_lo = f & (tile - 1)
            xp = x[(base ^ f_hi) : (base ^ f_hi) + tile]
            if f_lo == 0:
                _axpy(yt, xp, c)
            elif (f_lo & (f_lo - 1)) == 0 and f_lo >= 8:  # one bit: swap half-blocks
                for s in range(0, tile, 2 * f_lo):
                    _axpy(yt[s : s + f_lo], xp[s + f_lo : s + 2 * f_lo], c)
                    _axpy(yt[s + f_lo : s + 2 * f_lo], xp[s : s + f_lo], c)
            else:
                for i in range(tile):
                    yt[i] += c * xp[i ^ f_lo]


class BitFlipOperator(spla.LinearOperator):
    """Matrix-free real symmetric operator ``H = diag(d) + Σ_k c_k X^{f_k}``.

    ``X^f`` flips the bits of mask ``f`` (a product of Pauli X on those qubits, qubit ``i``
    being bit ``n - 1 - i``), so ``(H x)[r] = d[r] x[r] + Σ_k c_k x[r ⊕ f_k]``. This covers the
    transverse-field Ising model and any Ising problem plus X-string driver. Nothing but the
    diagonal is stored: a product streams ``x`` once per flip reaching outside a 64 KiB
    cache tile (single-bit flips inside a tile run as contiguous AXPYs), against
    ``(m + 1)·2^n`` indices and values read by a CSR product.

    Parameters
    ----------
    diagonal : array_like of shape (2**n,)
        Diagonal ``d`` (energy units), float64.
    flips : array_like of shape (m,)
        Distinct nonzero flip masks ``f_k`` below ``2**n``, int.
    coefficients : array_like of shape (m,)
        Real coefficients ``c_k`` (energy units).

    Attributes
    ----------
    n_qubits : int
    diagonal : ndarray of shape (2**n,), float64
    flips : ndarray of shape (m,), int64
    coefficients : ndarray of shape (m,), float64
    norm_bound : float
        Gershgorin bound ``max|d| + Σ|c_k| ≥ ‖H‖₂``.
    is_stoquastic : bool
        Every off-diagonal entry ``<= 0`` (``c_k <= 0``): the ground state can be taken
        non-negative (Perron–Frobenius).

    Notes
    -----
    ``matvec`` accepts float64 or complex128 vectors; a complex vector is processed as its
    float64 (real, imaginary) pairs in the same single pass, since ``H`` is real.

    Examples
    --------
    >>> import numpy as np
    >>> op = transverse_field_ising_operator(2, coupling=1.0, field=0.5)
    >>> np.allclose(op @ np.eye(4), transverse_field_ising(2, field=0.5).toarray())
    True
    >>> op.is_stoquastic, op.norm_bound
    (True, 2.0)
    """

    def __init__(self, diagonal: ArrayLike, flips: ArrayLike, coefficients: ArrayLike) -> None:
        d = np.ascontiguousarray(check_finite_array(diagonal, name="diagonal", ndim=1))
        dim = d.size
        n = dim.bit_length() - 1
        if dim < 2 or dim != 1 << n:
            raise InvalidInputError(f"diagonal must have length 2**n_qubits, got {dim}.")
        f = np.asarray(flips)
        if f.ndim != 1 or (f.size and f.dtype.kind not in "iu"):
            raise InvalidInputError("flips must be a 1-d array of integer bit masks.")
        f = f.astype(np.int64)
        c = check_finite_array(coefficients, name="coefficients", ndim=1)
        if c.shape != f.shape:
            raise InvalidInputError(
                f"coefficients has shape {c.shape} but flips has shape {f.shape}."
            )
        if np.any(f <= 0) or np.any(f >= dim) or np.unique(f).size != f.size:
            raise InvalidInputError(f"flips must be distinct masks in [1, {dim - 1}].")
        super().__init__(dtype=np.float64, shape=(dim, dim))
        self.n_qubits = n
        self.diagonal = d
        self.flips = f
        self.coefficients = np.ascontiguousarray(c)
        self.norm_bound = float(np.abs(d).max() + np.abs(c).sum())
        self.is_stoquastic = bool(np.all(c <= 0.0))

    def apply(self, x: NDArray[Any], out: NDArray[Any] | None = None) -> NDArray[Any]:
        """``H @ x`` for a contiguous float64 or complex128 vector of shape (2**n,), into
        ``out`` (same shape and dtype, not ``x``) when given."""
        if out is None:
            out = np.empty_like(x)
        shift = 1 if x.dtype.kind == "c" else 0
        _flip_matvec(
            self.diagonal,
            self.flips,
            self.coefficients,
            x.view(np.float64),
            out.view(np.float64),
            shift,
            _TILE_BITS,
        )
        return out

    def _matvec(self, x: NDArray[Any]) -> NDArray[Any]:
        v = np.asarray(x).reshape(-1)
        dtype = np.complex128 if v.dtype.kind == "c" else np.float64
        return self.apply(np.ascontiguousarray(v, dtype=dtype))

    def _matmat(self, X: NDArray[Any]) -> NDArray[Any]:
        return np.column_stack([self._matvec(X[:, j]) for j in range(X.shape[1])])

    def _adjoint(self) -> BitFlipOperator:
        return self

    def tocsr(self) -> sp.csr_array:
        """The same operator as a canonical CSR matrix of shape (2**n, 2**n), float64."""
        flips = np.concatenate([[0], self.flips])
        rows = np.concatenate([[0], np.full(self.flips.size, -1)]).astype(np.int64)
        consts = np.concatenate([[0.0], self.coefficients])
        order = np.argsort(flips)
        return _assemble(
            self.n_qubits, flips[order], self.diagonal[None, :], rows[order], consts[order]
        )


def transverse_field_ising_operator(
    n_qubits: int,
    *,
    coupling: float | ArrayLike = 1.0,
    field: float | ArrayLike = 1.0,
    longitudinal: float | ArrayLike = 0.0,
    periodic: bool = False,
) -> BitFlipOperator:
    """Matrix-free :func:`transverse_field_ising`: the same ``H``, as a :class:`BitFlipOperator`.

    Parameters and conventions are those of :func:`transverse_field_ising`. Building stores one
    float64 diagonal (``2^n`` entries) instead of ``(n + 1)·2^n`` CSR entries, and a product
    reads far less memory (see :class:`BitFlipOperator`): the form to hand to
    :func:`nqp.quantum.evolution.ground_state` and :func:`~nqp.quantum.evolution.evolve` for
    large chains.

    Returns
    -------
    BitFlipOperator of shape (2**n, 2**n), float64

    Examples
    --------
    >>> import numpy as np
    >>> op = transverse_field_ising_operator(3, coupling=[1.0, 0.5], field=0.3)
    >>> H = transverse_field_ising(3, coupling=[1.0, 0.5], field=0.3)
    >>> bool(np.allclose(op @ np.arange(8.0), H @ np.arange(8.0)))
    True
    """
    n = n_qubits
    diag, h = _tfim_diagonal_and_fields(
        "transverse_field_ising_operator", n_qubits, coupling, field, longitudinal, periodic
    )
    active = [i for i in range(n) if h[i] != 0.0]
    flips = np.array([1 << (n - 1 - i) for i in active], dtype=np.int64)
    return BitFlipOperator(diag, flips, np.array([-h[i] for i in active], dtype=np.float64))
