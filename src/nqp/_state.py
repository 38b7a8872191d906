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
    >>> view = s.take(slice(0, 2)); view.v += 1.0; s.v[:2].tolist()  # a slice: views
    [[1.0, 2.0], [1.0, 1.0]]
    >>> len(s), len(Demo.concat([s, s]))
    (3, 6)
    """

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The names of the state's arrays, in field order (looked up once per class).

        ``dataclasses.fields`` walks the class on every call, which the engine would pay
        several times per component per wave; the names never change.
        """
        names = cls.__dict__.get("_field_names")
        if names is None:
            names = tuple(f.name for f in dataclasses.fields(cls))
            cls._field_names = names  # type: ignore[attr-defined]  # per class, not a field
        return names

    def arrays(self) -> dict[str, NDArray[Any]]:
        """The state's arrays by field name."""
        return {name: getattr(self, name) for name in self.field_names()}

    def __len__(self) -> int:
        first = next(iter(self.arrays().values()))
        return int(first.shape[0])

    def take(self, rows: Any) -> Self:
        """The state of ``rows`` (gather), in the given order.

        An index array gives a copy; a ``slice`` gives views, so that a step working in
        place on them writes straight into this state (and :meth:`put` then skips them).
        """
        if isinstance(rows, slice):
            views = {k: v[rows] for k, v in self.arrays().items()}
            out = type(self)(**views)
            out.__dict__["_view_of"] = (self, rows, views)  # not a field: put() reads it
            return out
        idx = np.asarray(rows, dtype=np.intp)
        return type(self)(**{k: v[idx] for k, v in self.arrays().items()})  # fancy index: copies

    def put(self, rows: Any, other: Self) -> None:
        """Write ``other``'s rows into ``rows`` of this state (scatter), in place.

        Fields of ``other`` that still are the views ``self.take(rows)`` returned for the
        same slice are already in place and are not copied.
        """
        origin = getattr(other, "_view_of", None)
        in_place: dict[str, NDArray[Any]] = {}
        if isinstance(rows, slice) and origin is not None:
            owner, taken, views = origin
            if owner is self and taken == rows:
                in_place = views
        sel = rows if isinstance(rows, slice) else np.asarray(rows, dtype=np.intp)
        for k, v in self.arrays().items():
            src = getattr(other, k)
            if in_place.get(k) is not src:
                v[sel] = src

    def grow(self, n_rows: int, fill: Self) -> bool:
        """Enlarge every array to ``n_rows`` rows in place, each new row a copy of
        ``fill``'s first row; True if done, False (nothing changed) if NumPy refused.

        In place means reallocated (``ndarray.resize``; ``realloc`` remaps a large block's
        pages rather than copying them): no second full-size array exists meanwhile, so the
        engine's store peaks at its new size when it grows (not at its old size plus its new
        one), and only the new rows are mapped. Measured with ``bench/engine.py``
        (``store_growth``, default engine, 1,024 to 2,048 sources, 2-core VM): 79-95 ms in
        place; copying into new arrays took 38-41 ms when the kernel had huge pages at hand
        and 376-508 ms when it had to make them (a process's first growth).

        NumPy refuses when an array is shared (a view of it or another reference to it
        exists) or does not own its data; the arrays already enlarged are then shrunk back.
        """
        held = len(self)
        if n_rows < held:
            raise ValueError(f"n_rows must be at least the {held} rows held, got {n_rows}.")
        names = self.field_names()
        for done, name in enumerate(names):
            try:
                # no local name for the array: numpy counts references (refcheck)
                getattr(self, name).resize((n_rows, *getattr(self, name).shape[1:]))
            except ValueError:
                for back in names[:done]:
                    getattr(self, back).resize((held, *getattr(self, back).shape[1:]))
                return False
        for name in names:
            getattr(self, name)[held:] = getattr(fill, name)[0]
        return True

    def copy(self) -> Self:
        """A deep copy."""
        return type(self)(**{k: v.copy() for k, v in self.arrays().items()})

    @classmethod
    def concat(cls, states: list[Self]) -> Self:
        """Stack several states along the source axis."""
        return cls(
            **{k: np.concatenate([getattr(s, k) for s in states]) for k in cls.field_names()}
        )
