"""SourceStore: rows handed out hold fresh state, growth, LRU eviction to checkpoints."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from nqp._state import BatchState
from nqp.engine.store import SourceStore
from nqp.exceptions import InvalidInputError

FRESH = 7.0  # not zero: a row left as np.empty or zeroed would not pass for fresh


@dataclasses.dataclass
class Toy(BatchState):
    v: np.ndarray  # (n, 2) float64


def _store(max_sources: int = 1000, initial_capacity: int = 4) -> tuple[SourceStore, list[int]]:
    calls: list[int] = []

    def make(n: int) -> Toy:
        calls.append(n)
        return Toy(v=np.full((n, 2), FRESH))

    store = SourceStore(
        {"toy": make}, max_sources=max_sources, fingerprint="f", initial_capacity=initial_capacity
    )
    calls.clear()
    return store, calls


def _scribble(store: SourceStore, names: list[str]) -> None:
    """Give every source a state of its own: its index, in both columns."""
    rows = store.acquire(names)
    store.states["toy"].v[rows] = np.arange(len(names))[:, None]


def test_many_new_sources_grow_the_arrays_once_and_start_fresh():
    store, calls = _store(initial_capacity=4)
    _scribble(store, ["a", "b"])
    rows = store.acquire([f"s{i}" for i in range(100)])
    assert calls == [128]  # one growth to the next power of two, no row-by-row reset
    assert store._capacity == 128
    assert len(set(rows.tolist())) == 100
    np.testing.assert_array_equal(store.states["toy"].v[rows], FRESH)
    np.testing.assert_array_equal(store.states["toy"].v[store.acquire(["a", "b"])][:, 0], [0, 1])


def test_rows_of_dropped_and_evicted_sources_come_back_fresh():
    store, _ = _store()
    _scribble(store, ["a", "b", "c"])
    store.drop("a")
    store.evict("b")
    rows = store.acquire(["x", "y"])
    np.testing.assert_array_equal(store.states["toy"].v[rows], FRESH)
    assert store.row("c") is not None
    np.testing.assert_array_equal(store.states["toy"].v[store.row("c")], [2.0, 2.0])


def test_eviction_in_a_batch_resets_reused_rows_and_restores_exactly():
    store, _ = _store(max_sources=4, initial_capacity=4)
    _scribble(store, ["a", "b", "c", "d"])
    rows = store.acquire(["c", "x", "y"])  # evicts a and b (least recently used), keeps c
    assert sorted(store.sources()) == ["c", "d", "x", "y"]
    np.testing.assert_array_equal(store.states["toy"].v[rows[1:]], FRESH)
    np.testing.assert_array_equal(store.states["toy"].v[rows[0]], [2.0, 2.0])
    back = store.acquire(["a", "b"])  # restored from their checkpoints, evicting d, c
    np.testing.assert_array_equal(store.states["toy"].v[back][:, 0], [0.0, 1.0])
    assert store.known("c")
    assert store.known("d")
    assert store.row("c") is None


def test_a_batch_larger_than_max_sources_is_refused():
    store, _ = _store(max_sources=4, initial_capacity=2)
    with pytest.raises(InvalidInputError, match="max_sources=4"):
        store.acquire([f"s{i}" for i in range(5)])
