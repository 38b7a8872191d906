"""Declarative parameter and input validation shared by every engine.

Parameters are checked once, on first use, against constraints declared next to
the class (the scikit-learn ``_parameter_constraints`` habit); messages read like
"The 'leak' parameter of LIFReservoir must be in (0, 1]. Got 1.5 instead."
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp.exceptions import InvalidInputError, InvalidParameterError

__all__ = [
    "Interval",
    "Options",
    "check_finite_array",
    "check_rows",
    "validate_params",
]


@dataclass(frozen=True)
class Interval:
    """A real (or integer) interval constraint.

    Parameters
    ----------
    kind : {"real", "int"}
        ``"int"`` also rejects non-integral values (bool is never accepted).
    low, high : float or None
        Bounds; ``None`` means unbounded on that side.
    closed : {"both", "left", "right", "neither"}
        Which bounds are included.
    """

    kind: str
    low: float | None
    high: float | None
    closed: str = "both"

    def accepts(self, value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if self.kind == "int":
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
            return False
        v = float(value)
        if self.low is not None:
            if self.closed in ("both", "left"):
                if v < self.low:
                    return False
            elif v <= self.low:
                return False
        if self.high is not None:
            if self.closed in ("both", "right"):
                if v > self.high:
                    return False
            elif v >= self.high:
                return False
        return True

    def __str__(self) -> str:
        left = "[" if self.closed in ("both", "left") and self.low is not None else "("
        right = "]" if self.closed in ("both", "right") and self.high is not None else ")"
        low = "-inf" if self.low is None else f"{self.low:g}"
        high = "inf" if self.high is None else f"{self.high:g}"
        what = "an int" if self.kind == "int" else "a float"
        return f"{what} in {left}{low}, {high}{right}"


@dataclass(frozen=True)
class Options:
    """The parameter must be one of a fixed set of values."""

    values: tuple[Any, ...]

    def accepts(self, value: Any) -> bool:
        return any(value == v and type(value) is type(v) for v in self.values)

    def __str__(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


Constraint = Interval | Options | type | None


def _accepts(constraint: Constraint, value: Any) -> bool:
    if constraint is None:
        return value is None
    if isinstance(constraint, type):
        return isinstance(value, constraint) and not (
            isinstance(value, bool) and constraint is not bool
        )
    return constraint.accepts(value)


def _describe(constraint: Constraint) -> str:
    if constraint is None:
        return "None"
    if isinstance(constraint, type):
        return f"an instance of {constraint.__name__}"
    return str(constraint)


def validate_params(
    owner: str, params: Mapping[str, Any], constraints: Mapping[str, Iterable[Constraint]]
) -> None:
    """Check every parameter in ``constraints`` against its list of accepted constraints.

    Raises
    ------
    InvalidParameterError
        Naming the parameter, its owner, what is allowed and what was given.
    """
    for name, allowed in constraints.items():
        allowed = list(allowed)
        value = params[name]
        if any(_accepts(c, value) for c in allowed):
            continue
        described = " or ".join(_describe(c) for c in allowed)
        raise InvalidParameterError(
            f"The {name!r} parameter of {owner} must be {described}. Got {value!r} instead."
        )


def check_finite_array(
    x: ArrayLike, *, name: str, ndim: int | None = None, dtype: type = np.float64
) -> NDArray[Any]:
    """Convert ``x`` to a float array, checking its rank and that every value is finite.

    Raises
    ------
    InvalidInputError
        If ``x`` is not numeric, has the wrong number of dimensions, or holds NaN/inf
        (the message gives the count and first position of the offending values).
    """
    try:
        arr: NDArray[Any] = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be numeric: {exc}") from exc
    if ndim is not None and arr.ndim != ndim:
        raise InvalidInputError(
            f"{name} must have {ndim} dimensions, got shape {arr.shape} ({arr.ndim} dimensions)."
        )
    finite = np.isfinite(arr)
    if not finite.all():
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        raise InvalidInputError(
            f"{name} contains {len(bad)} non-finite value(s) (NaN or inf); first at index {first}."
        )
    return arr


def check_rows(rows: ArrayLike, *, batch: int, n_rows: int, what: str) -> NDArray[np.intp]:
    """Check ``rows``: ``batch`` distinct integer indices into a state of ``n_rows`` rows.

    ``what`` names the batch's sources in the message (e.g. ``"one per source in X"``).
    Components that step scattered sources where they are (no gather, no scatter) take
    such rows.

    Raises
    ------
    InvalidInputError
        Wrong shape or dtype, an index out of range, or a repeated index.
    """
    r = np.asarray(rows)
    if r.shape != (batch,) or (r.size and not np.issubdtype(r.dtype, np.integer)):
        raise InvalidInputError(
            f"rows must be {batch} integer indices ({what}); got an array "
            f"of shape {r.shape} and dtype {r.dtype}."
        )
    r = r.astype(np.intp, copy=False)
    if r.size and (r.min() < 0 or r.max() >= n_rows):
        raise InvalidInputError(f"rows must lie in [0, {n_rows}) (the state's sources).")
    if np.unique(r).size != r.size:
        raise InvalidInputError("rows must be distinct: one state row per source.")
    return r
