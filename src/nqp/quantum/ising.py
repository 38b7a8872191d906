"""Classical Ising models and their QUBO equivalents.

Conventions used throughout NQP:

- Spins ``s ∈ {-1, +1}^n``; energy ``E(s) = Σ_i h_i s_i + Σ_{i<j} J_ij s_i s_j + offset``.
  ``J`` is stored as a symmetric sparse matrix with zero diagonal, so
  ``E(s) = h·s + ½ sᵀ J s + offset``.
- Binary variables ``x ∈ {0, 1}^n``; QUBO energy ``E(x) = xᵀ Q x + offset`` for any
  square ``Q`` (only its symmetric part matters; ``Q_ii`` are linear terms since
  ``x_i² = x_i``).
- The two are related by ``x = (1 + s) / 2``; :meth:`IsingModel.from_qubo` keeps the
  constant offset so energies agree exactly for every assignment.
- As a quantum Hamiltonian, ``s_i`` becomes the Pauli ``Z_i`` with eigenvalue +1 on
  ``|0⟩`` (see :mod:`nqp.quantum.hamiltonian`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nqp._validation import check_finite_array
from nqp.exceptions import InvalidInputError

__all__ = ["IsingModel", "qubo_energy"]


@dataclass(frozen=True)
class IsingModel:
    """An Ising model ``E(s) = h·s + ½ sᵀ J s + offset``.

    Attributes
    ----------
    h : ndarray of shape (n,), float64
        Local fields.
    J : scipy.sparse.csr_array of shape (n, n), float64
        Symmetric couplings with zero diagonal (each pair appears twice, as J_ij and J_ji).
    offset : float
        Constant energy.

    Examples
    --------
    >>> m = IsingModel.from_qubo([[1.0, -2.0], [0.0, 1.0]])
    >>> [float(m.energy(s)) for s in ([-1, -1], [1, -1], [-1, 1], [1, 1])]
    [0.0, 1.0, 1.0, 0.0]
    """

    h: NDArray[np.float64]
    J: sp.csr_array
    offset: float = 0.0

    @property
    def n(self) -> int:
        """Number of spins."""
        return int(self.h.shape[0])

    @classmethod
    def from_arrays(
        cls, h: ArrayLike | None, J: ArrayLike | sp.sparray | sp.spmatrix, offset: float = 0.0
    ) -> IsingModel:
        """Build from fields and couplings.

        ``J`` may be dense or sparse, upper-triangular or symmetric: the model uses
        ``J_ij + J_ji`` for each pair ``i < j`` as the pair's coupling, so an upper-
        triangular input is taken as is and a symmetric input counts each pair twice
        (pass ``J / 2`` of a symmetric matrix if each pair should count once). The
        diagonal must be zero (``s_i² = 1`` would make it a constant).
        """
        if sp.issparse(J):
            Jm = sp.csr_array(J, dtype=np.float64)
            if not np.isfinite(Jm.data).all():
                raise InvalidInputError("J contains non-finite values.")
        else:
            Jm = sp.csr_array(check_finite_array(J, name="J", ndim=2))
        n = Jm.shape[0]
        if Jm.shape != (n, n):
            raise InvalidInputError(f"J must be square, got shape {Jm.shape}.")
        if np.any(Jm.diagonal() != 0):
            raise InvalidInputError("J must have a zero diagonal (s_i^2 = 1 is a constant).")
        hv = np.zeros(n) if h is None else check_finite_array(h, name="h", ndim=1)
        if hv.shape != (n,):
            raise InvalidInputError(f"h has shape {hv.shape} but J has shape {Jm.shape}.")
        upper = sp.triu(Jm, k=1) + sp.tril(Jm, k=-1).T
        sym = sp.csr_array(upper + upper.T)
        sym.sum_duplicates()
        sym.eliminate_zeros()
        sym.sort_indices()
        return cls(h=hv, J=sym, offset=float(offset))

    @classmethod
    def from_qubo(cls, Q: ArrayLike | sp.sparray | sp.spmatrix, offset: float = 0.0) -> IsingModel:
        """The Ising model with ``E_ising(s) = E_qubo((1 + s) / 2)`` for every ``s``.

        With ``Qs = (Q + Qᵀ) / 2``: ``h_i = Q_ii / 2 + Σ_{j≠i} Qs_ij / 2``,
        ``J_ij = Qs_ij / 2`` per pair, ``offset += Σ_i Q_ii / 2 + Σ_{i<j} Qs_ij / 2``.
        """
        if sp.issparse(Q):
            Qm = sp.csr_array(Q, dtype=np.float64)
            if not np.isfinite(Qm.data).all():
                raise InvalidInputError("Q contains non-finite values.")
            diag = Qm.diagonal()
            off = sp.csr_array(Qm - sp.diags_array(diag))
        else:
            Qd = check_finite_array(Q, name="Q", ndim=2)
            if Qd.shape[0] != Qd.shape[1]:
                raise InvalidInputError(f"Q must be square, got shape {Qd.shape}.")
            diag = np.diag(Qd).copy()
            off = sp.csr_array(Qd - np.diag(diag))
        if off.shape[0] != off.shape[1]:
            raise InvalidInputError(f"Q must be square, got shape {off.shape}.")
        qs = (off + off.T) / 2.0  # symmetric, zero diagonal; each pair's weight is 2*qs_ij
        row_sums = np.asarray(qs.sum(axis=1)).ravel()
        h = diag / 2.0 + row_sums / 2.0
        const = diag.sum() / 2.0 + qs.sum() / 4.0
        # the pair coupling is qs_ij / 2; from_arrays reads an upper triangle as pairs
        return cls.from_arrays(h, sp.triu(qs, k=1) / 2.0, offset + const)

    def energy(self, spins: ArrayLike) -> NDArray[np.float64]:
        """Energies of spin configurations.

        Parameters
        ----------
        spins : array_like of shape (n,) or (n_reads, n), values in {-1, +1}

        Returns
        -------
        float or ndarray of shape (n_reads,)
        """
        s = np.asarray(spins, dtype=np.float64)
        single = s.ndim == 1
        s2 = np.atleast_2d(s)
        if s2.shape[1] != self.n:
            raise InvalidInputError(f"spins have {s2.shape[1]} columns, the model has {self.n}.")
        if not np.all(np.abs(s2) == 1.0):
            raise InvalidInputError("spins must be -1 or +1.")
        e = s2 @ self.h + 0.5 * np.einsum("ri,ri->r", s2, (self.J @ s2.T).T) + self.offset
        return e[0] if single else e

    def to_qubo(self) -> tuple[NDArray[np.float64], float]:
        """Upper-triangular ``Q`` and offset with ``E_qubo(x) = E_ising(2x - 1)``."""
        # s_i s_j = (2x_i-1)(2x_j-1) = 4x_i x_j - 2x_i - 2x_j + 1 ; s_i = 2x_i - 1
        Ju = sp.triu(self.J, k=1).toarray()
        Q = 4.0 * Ju
        lin = 2.0 * self.h - 2.0 * (Ju.sum(axis=1) + Ju.sum(axis=0))
        Q[np.diag_indices_from(Q)] = lin
        offset = self.offset - self.h.sum() + Ju.sum()
        return Q, float(offset)


def qubo_energy(
    Q: ArrayLike, x: ArrayLike, offset: float = 0.0
) -> NDArray[np.float64] | np.float64:
    """``xᵀ Q x + offset`` for one assignment ``(n,)`` or many ``(n_reads, n)`` in {0, 1}."""
    Qd = np.asarray(Q, dtype=np.float64)
    xa = np.asarray(x, dtype=np.float64)
    if xa.ndim == 1:
        return np.float64(xa @ Qd @ xa + offset)
    return np.einsum("ri,ij,rj->r", xa, Qd, xa) + offset
