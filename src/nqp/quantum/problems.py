"""Problem builders for the Ising optimiser: max-cut, Markowitz portfolio selection, QUBO files.

- Max-cut of a weighted graph ``G = (V, E, w)``: with spins ``s_i = ±1`` marking the side
  of node ``i``, ``cut(s) = Σ_{(i,j)∈E} w_ij (1 − s_i s_j) / 2 = (W − E(s)) / 2`` where
  ``W = Σ w_ij`` and ``E(s) = Σ_{(i,j)∈E} w_ij s_i s_j`` is the Ising energy with
  ``J_ij = +w_ij``, ``h = 0``. Maximising the cut = minimising ``E``.
- Portfolio selection under a budget (Markowitz 1952, binary form): choose exactly ``k`` of
  ``n`` assets, ``x ∈ {0, 1}^n``, maximising ``μᵀx − q xᵀΣx`` (see :class:`PortfolioProblem`
  for units and for the penalty that makes the QUBO's minima respect the budget).
- Readers: Gset max-cut files (:func:`read_gset`), QUBO JSON (:func:`read_qubo_json`) and
  portfolio JSON (:func:`read_portfolio_json`); every parse error is a
  :class:`~nqp.exceptions.FileFormatError` naming the line or the field.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import FileFormatError, InvalidInputError
from nqp.quantum.ising import IsingModel

__all__ = [
    "MaxCutProblem",
    "PortfolioProblem",
    "cut_value",
    "parse_gset",
    "read_gset",
    "read_portfolio_json",
    "read_qubo_json",
]


def cut_value(edges: ArrayLike, weights: ArrayLike | None, partition: ArrayLike) -> float:
    """Total weight of the edges whose ends lie on different sides of ``partition``.

    Parameters
    ----------
    edges : array_like of shape (m, 2), int
        0-based node pairs.
    weights : array_like of shape (m,) or None
        Edge weights (None: all 1).
    partition : array_like of shape (n_nodes,)
        Side of every node: {0, 1} or {-1, +1}.

    Examples
    --------
    >>> cut_value([(0, 1), (1, 2), (0, 2)], None, [0, 1, 1])
    2.0
    """
    e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    w = np.ones(len(e)) if weights is None else np.asarray(weights, dtype=np.float64)
    side = np.asarray(partition)
    side = side > 0 if side.dtype != bool else side
    return float(w[side[e[:, 0]] != side[e[:, 1]]].sum())


@dataclass(frozen=True)
class MaxCutProblem:
    """A weighted undirected graph whose maximum cut is wanted.

    Attributes
    ----------
    n_nodes : int
    edges : ndarray of shape (m, 2), int64
        0-based node pairs, no self-loops (parallel edges add up).
    weights : ndarray of shape (m,), float64

    Examples
    --------
    >>> p = MaxCutProblem.from_edges(3, [(0, 1), (1, 2)], [1.0, 2.0])
    >>> s = np.array([1, -1, 1])
    >>> p.cut_value(s), p.cut_from_energy(float(p.to_ising().energy(s)))
    (3.0, 3.0)
    """

    n_nodes: int
    edges: NDArray[np.int64]
    weights: NDArray[np.float64]

    def __post_init__(self) -> None:
        if not isinstance(self.n_nodes, int | np.integer) or self.n_nodes < 1:
            raise InvalidInputError(f"n_nodes must be a positive int, got {self.n_nodes!r}.")
        e, w = self.edges, self.weights
        if e.ndim != 2 or e.shape[1] != 2:
            raise InvalidInputError(f"edges must have shape (m, 2), got {e.shape}.")
        if w.shape != (e.shape[0],):
            raise InvalidInputError(f"weights has shape {w.shape}, edges has {e.shape}.")
        if e.size and (e.min() < 0 or e.max() >= self.n_nodes):
            raise InvalidInputError(f"edge endpoints must lie in [0, {self.n_nodes - 1}].")
        if np.any(e[:, 0] == e[:, 1]):
            raise InvalidInputError("edges must not contain self-loops.")
        if not np.isfinite(w).all():
            raise InvalidInputError("weights must be finite.")

    @classmethod
    def from_edges(
        cls, n_nodes: int, edges: ArrayLike, weights: ArrayLike | None = None
    ) -> MaxCutProblem:
        """Build from 0-based ``edges`` of shape (m, 2) and ``weights`` (default 1)."""
        e = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
        w = (
            np.ones(len(e))
            if weights is None
            else check_finite_array(weights, name="weights", ndim=1)
        )
        return cls(int(n_nodes), e, w)

    @property
    def total_weight(self) -> float:
        """``W = Σ w_ij``."""
        return float(self.weights.sum())

    def to_ising(self) -> IsingModel:
        """The Ising model ``J_ij = +w_ij`` (per edge), ``h = 0``: ``cut = (W − E) / 2``."""
        lo = np.minimum(self.edges[:, 0], self.edges[:, 1])
        hi = np.maximum(self.edges[:, 0], self.edges[:, 1])
        J = sp.coo_array((self.weights, (lo, hi)), shape=(self.n_nodes, self.n_nodes))
        return IsingModel.from_arrays(None, J.tocsr())

    def cut_value(self, partition: ArrayLike) -> float:
        """Cut weight of ``partition`` (shape (n_nodes,), {0, 1} or {-1, +1}), edge by edge."""
        side = np.asarray(partition)
        if side.shape != (self.n_nodes,):
            raise InvalidInputError(
                f"partition has shape {side.shape}, the graph has {self.n_nodes} nodes."
            )
        return cut_value(self.edges, self.weights, side)

    def cut_from_energy(self, energy: float) -> float:
        """``(W − E) / 2`` for an energy of :meth:`to_ising`."""
        return (self.total_weight - float(energy)) / 2.0


def parse_gset(text: str, source: str = "<string>") -> MaxCutProblem:
    """Parse the Gset max-cut format: ``nodes edges`` then one ``i j w`` line per edge.

    Node numbers are 1-based; weights may be any finite number; blank lines are ignored.

    Raises
    ------
    FileFormatError
        Naming ``source`` and the line: a malformed header or edge line, a node out of
        range, a self-loop, a non-finite weight, or an edge count different from the
        header's.

    Examples
    --------
    >>> p = parse_gset("3 2\\n1 2 1\\n2 3 -1\\n")
    >>> p.n_nodes, p.edges.tolist(), p.weights.tolist()
    (3, [[0, 1], [1, 2]], [1.0, -1.0])
    """
    lines = text.splitlines()
    header_no = 0
    while header_no < len(lines) and not lines[header_no].strip():
        header_no += 1
    if header_no == len(lines):
        raise FileFormatError(f"{source}: empty file, expected a header line 'nodes edges'.")
    head = lines[header_no].split()
    where = f"{source}, line {header_no + 1}"
    try:
        if len(head) != 2:
            raise ValueError
        n_nodes, n_edges = int(head[0]), int(head[1])
    except ValueError:
        raise FileFormatError(
            f"{where}: expected a header 'nodes edges' (two integers), got {lines[header_no]!r}."
        ) from None
    if n_nodes < 1 or n_edges < 0:
        raise FileFormatError(
            f"{where}: the header needs nodes >= 1 and edges >= 0, got {n_nodes} {n_edges}."
        )
    edges = np.empty((n_edges, 2), dtype=np.int64)
    weights = np.empty(n_edges)
    count = 0
    for lineno in range(header_no + 1, len(lines)):
        line = lines[lineno]
        parts = line.split()
        if not parts:
            continue
        where = f"{source}, line {lineno + 1}"
        if count == n_edges:
            raise FileFormatError(
                f"{where}: more edges than the {n_edges} declared on line {header_no + 1}."
            )
        try:
            if len(parts) != 3:
                raise ValueError
            i, j, w = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            raise FileFormatError(
                f"{where}: expected an edge 'i j w' (two node numbers and a weight), got {line!r}."
            ) from None
        if not (1 <= i <= n_nodes and 1 <= j <= n_nodes):
            raise FileFormatError(
                f"{where}: node numbers must lie in 1..{n_nodes}, got {i} and {j}."
            )
        if i == j:
            raise FileFormatError(f"{where}: self-loop on node {i}.")
        if not math.isfinite(w):
            raise FileFormatError(f"{where}: the weight must be finite, got {parts[2]!r}.")
        edges[count] = (i - 1, j - 1)
        weights[count] = w
        count += 1
    if count != n_edges:
        raise FileFormatError(
            f"{source}, line {len(lines)} (end of file): the header on line {header_no + 1} "
            f"declares {n_edges} edges, found {count}."
        )
    return MaxCutProblem(n_nodes, edges, weights)


def read_gset(path: str | PathLike[str]) -> MaxCutProblem:
    """Read a Gset max-cut file (see :func:`parse_gset`)."""
    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p}: not a text file ({exc.reason}).") from exc
    return parse_gset(text, source=str(p))


def _load_json(path: str | PathLike[str]) -> tuple[Any, str]:
    p = Path(path)
    try:
        text = p.read_text()
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{p}: not a text file ({exc.reason}).") from exc
    try:
        return json.loads(text), str(p)
    except json.JSONDecodeError as exc:
        raise FileFormatError(
            f"{p}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg})."
        ) from exc


def _field_array(obj: dict[str, Any], key: str, ndim: int, source: str) -> NDArray[np.float64]:
    if key not in obj:
        raise FileFormatError(f"{source}: missing field {key!r}.")
    try:
        arr = check_finite_array(obj[key], name=key, ndim=ndim)
    except InvalidInputError as exc:
        raise FileFormatError(f"{source}: field {key!r}: {exc}") from exc
    return arr


def read_qubo_json(
    path: str | PathLike[str],
) -> tuple[NDArray[np.float64] | sp.csr_array, float]:
    """Read a QUBO ``E(x) = xᵀ Q x + offset`` from JSON.

    Two layouts: ``{"Q": [[...], ...]}`` (dense, square) or ``{"n": N, "terms": [[i, j, w],
    ...]}`` (0-based indices, ``i == j`` for linear terms; repeated pairs add up); both
    take an optional ``"offset"`` (default 0).

    Returns
    -------
    Q : ndarray of shape (n, n) (dense layout) or scipy.sparse.csr_array (terms layout)
    offset : float

    Raises
    ------
    FileFormatError
        Naming the field (and the term's position) that is missing or malformed.
    """
    obj, source = _load_json(path)
    if not isinstance(obj, dict):
        raise FileFormatError(f"{source}: expected a JSON object with 'Q' or 'terms'.")
    offset = obj.get("offset", 0.0)
    if isinstance(offset, bool) or not isinstance(offset, int | float) or not math.isfinite(offset):
        raise FileFormatError(f"{source}: field 'offset' must be a finite number, got {offset!r}.")
    if "Q" in obj:
        Q = _field_array(obj, "Q", 2, source)
        if Q.shape[0] != Q.shape[1] or Q.shape[0] == 0:
            raise FileFormatError(
                f"{source}: field 'Q' must be a non-empty square matrix, got shape {Q.shape}."
            )
        return Q, float(offset)
    if "terms" not in obj:
        raise FileFormatError(f"{source}: missing field 'Q' (dense) or 'terms' (with 'n').")
    n = obj.get("n")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise FileFormatError(f"{source}: field 'n' must be a positive integer, got {n!r}.")
    terms = obj["terms"]
    if not isinstance(terms, list):
        raise FileFormatError(f"{source}: field 'terms' must be a list of [i, j, w].")
    rows = np.empty(len(terms), dtype=np.int64)
    cols = np.empty(len(terms), dtype=np.int64)
    vals = np.empty(len(terms))
    for t, term in enumerate(terms):
        ok = isinstance(term, list) and len(term) == 3
        ok = ok and all(isinstance(v, int) and not isinstance(v, bool) for v in term[:2])
        ok = ok and isinstance(term[2], int | float) and not isinstance(term[2], bool)
        if not ok or not math.isfinite(term[2]):
            raise FileFormatError(
                f"{source}: field 'terms', term {t}: expected [i, j, w] with integer i, j "
                f"and a finite weight, got {term!r}."
            )
        i, j, w = term
        if not (0 <= i < n and 0 <= j < n):
            raise FileFormatError(
                f"{source}: field 'terms', term {t}: indices must lie in 0..{n - 1}, "
                f"got {i} and {j}."
            )
        rows[t], cols[t], vals[t] = i, j, w
    Q = sp.coo_array((vals, (rows, cols)), shape=(n, n)).tocsr()
    Q.sum_duplicates()
    return Q, float(offset)


class PortfolioProblem:
    """Choose exactly ``budget`` of ``n`` assets maximising ``μᵀx − q xᵀΣx``.

    Parameters
    ----------
    mu : array_like of shape (n,)
        Expected return of each asset per period (a fraction: 0.01 = 1 %).
    sigma : array_like of shape (n, n)
        Covariance of the assets' returns per period (return², symmetric positive
        semi-definite).
    budget : int
        Number ``k`` of assets to select, ``1 ≤ k ≤ n``.
    risk_aversion : float
        ``q ≥ 0`` in 1 / return: the weight of variance against expected return.
    penalty : float or None, default=None
        Weight ``P`` of the budget penalty ``P (Σx − k)²``; None uses
        :meth:`default_penalty`.

    Notes
    -----
    ``x_i = 1`` holds one unit (equal notional) of asset ``i``: ``μᵀx`` is the expected
    return and ``xᵀΣx`` the variance of that holding's total return per period (for
    exactly ``k`` assets, ``k`` times the equal-weight portfolio's return and ``k²`` times
    its variance). The QUBO minimised is

        ``E(x) = −μᵀx + q xᵀΣx + P (Σ_i x_i − k)²``
        ``     = xᵀ (qΣ − diag(μ) + P (11ᵀ − 2k I)) x + P k²``,

    so ``E(x) = −objective(x)`` on every selection that meets the budget.

    Examples
    --------
    >>> p = PortfolioProblem(mu=[0.1, 0.2], sigma=[[0.1, 0.0], [0.0, 0.1]], budget=1,
    ...                      risk_aversion=1.0)
    >>> p.evaluate([0, 1])["objective"]
    0.1
    """

    def __init__(
        self,
        mu: ArrayLike,
        sigma: ArrayLike,
        budget: int,
        risk_aversion: float,
        penalty: float | None = None,
    ) -> None:
        self.mu = mu
        self.sigma = sigma
        self.budget = budget
        self.risk_aversion = risk_aversion
        self.penalty = penalty

    def __repr__(self) -> str:
        n = np.shape(self.mu)[0] if np.ndim(self.mu) else "?"
        return (
            f"PortfolioProblem(n_assets={n}, budget={self.budget!r}, "
            f"risk_aversion={self.risk_aversion!r}, penalty={self.penalty!r})"
        )

    def _checked(self) -> tuple[NDArray[np.float64], NDArray[np.float64], int, float]:
        validate_params(
            "PortfolioProblem",
            {"budget": self.budget, "risk_aversion": self.risk_aversion, "penalty": self.penalty},
            {
                "budget": [Interval("int", 1, None)],
                "risk_aversion": [Interval("real", 0.0, None)],
                "penalty": [Interval("real", 0.0, None, closed="neither"), None],
            },
        )
        mu = check_finite_array(self.mu, name="mu", ndim=1)
        sigma = check_finite_array(self.sigma, name="sigma", ndim=2)
        n = mu.shape[0]
        if n == 0:
            raise InvalidInputError("mu must hold at least one asset.")
        if sigma.shape != (n, n):
            raise InvalidInputError(f"sigma has shape {sigma.shape}, mu has {n} assets.")
        scale = max(float(np.abs(sigma).max()), 1e-300)
        if np.abs(sigma - sigma.T).max() > 1e-10 * scale:
            raise InvalidInputError("sigma must be symmetric (a covariance matrix).")
        if np.linalg.eigvalsh(sigma).min() < -1e-10 * scale * n:
            raise InvalidInputError("sigma must be positive semi-definite (a covariance matrix).")
        if self.budget > n:
            raise InvalidInputError(f"budget={self.budget} exceeds the {n} assets.")
        return mu, sigma, int(self.budget), float(self.risk_aversion)

    @property
    def n_assets(self) -> int:
        """Number of assets ``n``."""
        return int(self._checked()[0].shape[0])

    def default_penalty(self) -> float:
        """``P = 1.1 D`` with ``D = max_i (|μ_i| + q (|Σ_ii| + 2 Σ_{j≠i} |Σ_ij|))``.

        ``D`` bounds the change of the cost ``f(x) = −μᵀx + q xᵀΣx`` when one ``x_i`` flips.
        Any ``P > D`` guarantees (i) every ground state of the QUBO meets the budget: a
        selection of ``m ≠ k`` assets is ``|m − k|`` flips from a feasible one, so
        ``f* ≤ f(x) + |m − k| D`` and ``E(x) ≥ f* + |m − k| (P |m − k| − D) > f*``; and
        (ii) every single-flip local minimum meets it: at ``m > k`` dropping any selected
        asset changes ``E`` by at most ``D − P (2(m − k) − 1) < 0`` (adding one at ``m < k``
        likewise), so greedy descent always ends on the budget. (1 when ``D = 0``.)
        """
        mu, sigma, _, q = self._checked()
        a = np.abs(sigma)
        d = np.abs(mu) + q * (2.0 * a.sum(axis=1) - np.diag(a))
        bound = float(d.max())
        return 1.1 * bound if bound > 0 else 1.0

    def penalty_value(self) -> float:
        """The penalty used: ``penalty`` if given, else :meth:`default_penalty`."""
        self._checked()
        return float(self.penalty) if self.penalty is not None else self.default_penalty()

    def to_qubo(self) -> tuple[NDArray[np.float64], float]:
        """``Q`` of shape (n, n) and ``offset`` with ``E(x) = xᵀQx + offset`` (see Notes)."""
        mu, sigma, k, q = self._checked()
        P = self.penalty_value()
        n = mu.shape[0]
        Q = q * sigma + P * np.ones((n, n))
        Q[np.diag_indices(n)] += -mu - 2.0 * k * P
        return Q, P * k * k

    def evaluate(self, x: ArrayLike) -> dict[str, Any]:
        """Figures of a selection ``x`` of shape (n,) in {0, 1}.

        Returns
        -------
        dict
            ``selected`` (sorted asset indices), ``n_selected``, ``expected_return``
            (``μᵀx``), ``risk`` (variance ``xᵀΣx``), ``objective`` (``μᵀx − q xᵀΣx``),
            ``budget_satisfied``.
        """
        mu, sigma, k, q = self._checked()
        xv = np.asarray(x)
        if xv.shape != mu.shape or not np.isin(xv, (0, 1)).all():
            raise InvalidInputError(f"x must have shape {mu.shape} with values in {{0, 1}}.")
        xf = xv.astype(np.float64)
        ret = float(mu @ xf)
        risk = float(xf @ sigma @ xf)
        sel = np.flatnonzero(xv).tolist()
        return {
            "selected": sel,
            "n_selected": len(sel),
            "expected_return": ret,
            "risk": risk,
            "objective": ret - q * risk,
            "budget_satisfied": len(sel) == k,
        }


def read_portfolio_json(path: str | PathLike[str]) -> PortfolioProblem:
    """Read ``{"mu": [...], "sigma": [[...]], "budget": k, "risk_aversion": q}`` (optional
    ``"penalty"``) into a validated :class:`PortfolioProblem`.

    Raises
    ------
    FileFormatError
        Naming the missing or malformed field.
    """
    obj, source = _load_json(path)
    if not isinstance(obj, dict):
        raise FileFormatError(
            f"{source}: expected a JSON object with 'mu', 'sigma', 'budget', 'risk_aversion'."
        )
    mu = _field_array(obj, "mu", 1, source)
    sigma = _field_array(obj, "sigma", 2, source)
    for key in ("budget", "risk_aversion"):
        if key not in obj:
            raise FileFormatError(f"{source}: missing field {key!r}.")
    budget, q, pen = obj["budget"], obj["risk_aversion"], obj.get("penalty")
    if isinstance(budget, bool) or not isinstance(budget, int):
        raise FileFormatError(f"{source}: field 'budget' must be an integer, got {budget!r}.")
    if isinstance(q, bool) or not isinstance(q, int | float):
        raise FileFormatError(f"{source}: field 'risk_aversion' must be a number, got {q!r}.")
    if pen is not None and (isinstance(pen, bool) or not isinstance(pen, int | float)):
        raise FileFormatError(f"{source}: field 'penalty' must be a number, got {pen!r}.")
    problem = PortfolioProblem(mu, sigma, budget, float(q), None if pen is None else float(pen))
    try:
        problem._checked()
    except ValueError as exc:
        field = next(
            (f for f in ("sigma", "budget", "risk_aversion", "penalty", "mu") if f in str(exc)),
            "?",
        )
        raise FileFormatError(f"{source}: field {field!r}: {exc}") from exc
    return problem
