"""BatchState: gather and scatter of per-source rows, copies for index arrays, views for slices."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nqp._state import BatchState


@dataclasses.dataclass
class Pair(BatchState):
    a: np.ndarray
    b: np.ndarray


def fresh() -> Pair:
    return Pair(a=np.arange(10.0).reshape(5, 2), b=np.arange(5))


def test_index_rows_are_copies_and_put_writes_them_back():
    s = fresh()
    sub = s.take([3, 1])
    sub.a += 100.0
    assert s.a[3].tolist() == [6.0, 7.0]  # a copy: the store is untouched
    s.put([3, 1], sub)
    assert s.a[[3, 1]].tolist() == [[106.0, 107.0], [102.0, 103.0]]


def test_slice_rows_are_views_written_in_place():
    s = fresh()
    sub = s.take(slice(1, 4))
    sub.a *= -1.0
    assert s.a[1:4].tolist() == [[-2.0, -3.0], [-4.0, -5.0], [-6.0, -7.0]]
    s.put(slice(1, 4), sub)  # nothing to copy; the result is the same
    assert s.a[1:4].tolist() == [[-2.0, -3.0], [-4.0, -5.0], [-6.0, -7.0]]


def test_a_replaced_field_of_a_view_is_written_back():
    s = fresh()
    sub = s.take(slice(0, 2))
    sub.b = np.array([70, 80])  # a new array, not the view: must be copied in
    s.put(slice(0, 2), sub)
    assert s.b.tolist() == [70, 80, 2, 3, 4]


def test_views_put_into_other_rows_or_states_are_copied():
    s, t = fresh(), fresh()
    sub = s.take(slice(0, 2))
    s.put(slice(3, 5), sub)  # other rows of the same state
    assert s.a[3:].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    t.a[:] = 0.0
    t.put(slice(0, 2), sub)  # same rows of another state
    assert t.a[:2].tolist() == [[0.0, 1.0], [2.0, 3.0]]


def owned() -> Pair:
    """:func:`fresh` with arrays that own their data (a reshape is a view: not resizable)."""
    return Pair(a=np.arange(10.0).reshape(5, 2).copy(), b=np.arange(5))


def test_grow_enlarges_in_place_and_fills_new_rows_from_the_template():
    s = owned()
    ids = id(s.a), id(s.b)  # no reference kept: numpy refuses to resize a shared array
    template = Pair(a=np.array([[-1.0, -2.0]]), b=np.array([9]))
    assert s.grow(8, template)
    assert (id(s.a), id(s.b)) == ids  # the same arrays, reallocated
    assert (
        s.a.tolist()
        == [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0], [8.0, 9.0]] + [[-1.0, -2.0]] * 3
    )
    assert s.b.tolist() == [0, 1, 2, 3, 4, 9, 9, 9]
    assert len(s) == 8


def test_grow_refused_when_an_array_is_shared_changes_nothing():
    s = owned()
    view = s.b[1:3]  # the second field is shared: the first one is enlarged, then undone
    template = Pair(a=np.zeros((1, 2)), b=np.zeros(1, dtype=s.b.dtype))
    assert not s.grow(8, template)
    assert s.a.shape == (5, 2)
    assert s.b.shape == (5,)
    assert s.a.tolist() == fresh().a.tolist()
    assert view.tolist() == [1, 2]
    other = owned()
    alias = other.a  # another reference (not a view) is refused as well
    assert not other.grow(6, template)
    assert alias.shape == (5, 2)
    assert not fresh().grow(6, template)  # a view of another array (reshape) is refused


def test_grow_cannot_drop_rows():
    s = fresh()
    with pytest.raises(ValueError, match="n_rows must be at least the 5 rows held"):
        s.grow(4, fresh())
