"""Per-source state held as arrays whose first axis is the source.

Engines keep the state of many sources in one array per quantity and step them
together: *gather* the rows of the sources in a batch, step, *scatter* them back.
Every stateful component describes its state as a dataclass deriving from
:class:`BatchState`, whose fields are all NumPy arrays of shape ``(n_sources, ...)``.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Self

import numpy as np
from numpy.typing import NDArray

__all__ = ["BatchState"]


@dataclasses.dataclass
class BatchState:
    """Base class for dataclasses of arrays sharing a leading ``n_sources`` axis.

    Examples
    --------
    >>> @dataclasses.dataclass
    ... class Demo(BatchState):
    ...     v: np.ndarray
    >>> s = Demo(v=np.arange(6.0).reshape(3, 2))
    >>> s.take([2, 0]).v.tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    >>> s.put([1], Demo(v=np.zeros((1, 2)))); s.v[1].tolist()
    [0.0, 0.0]
    >>> len(s), len(Demo.concat([s, s]))
    (3, 6)
    """

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The state's arrays by field name."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def __len__(self) -> int:
        first = next(iter(self.arrays().values()))
        return int(first.shape[0])

    def take(self, rows: Any) -> Self:
        """A copy holding only ``rows`` (gather), in the given order."""
        idx = np.asarray(rows, dtype=np.intp)
        return type(self)(**{k: v[idx].copy() for k, v in self.arrays().items()})

    def put(self, rows: Any, other: Self) -> None:
        """Write ``other``'s rows into ``rows`` of this state (scatter), in place."""
        idx = np.asarray(rows, dtype=np.intp)
        for k, v in self.arrays().items():
            v[idx] = getattr(other, k)

    def copy(self) -> Self:
        """A deep copy."""
        return type(self)(**{k: v.copy() for k, v in self.arrays().items()})

    @classmethod
    def concat(cls, states: list[Self]) -> Self:
        """Stack several states along the source axis."""
        names = [f.name for f in dataclasses.fields(cls)]
        return cls(**{k: np.concatenate([getattr(s, k) for s in states]) for k in names})
