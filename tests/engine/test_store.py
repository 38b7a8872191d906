"""SourceStore: rows handed out hold fresh state, growth, LRU eviction to checkpoints."""

from __future__ import annotations

import dataclasses
import io
import json
import struct

import numpy as np
import pytest

from nqp._state import BatchState
from nqp.engine import store as store_module
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
    array_id = id(store.states["toy"].v)  # no reference kept: it would block the resize
    rows = store.acquire([f"s{i}" for i in range(100)])
    assert store._capacity == 102  # one growth, to the rows the call needs (98 more)
    assert calls == []  # in place: no new state made, no row-by-row reset
    assert id(store.states["toy"].v) == array_id
    assert store.states["toy"].v.shape == (102, 2)
    assert len(set(rows.tolist())) == 100
    np.testing.assert_array_equal(store.states["toy"].v[rows], FRESH)
    np.testing.assert_array_equal(store.states["toy"].v[store.acquire(["a", "b"])][:, 0], [0, 1])


def test_growth_doubles_then_steps_so_the_slack_stays_bounded(monkeypatch):
    monkeypatch.setattr(store_module, "GROWTH_STEP_ROWS", 64)
    store, _ = _store(max_sources=300, initial_capacity=16)
    capacities = []
    for i in range(300):  # sources arriving one at a time
        rows = store.acquire([f"s{i}"])
        np.testing.assert_array_equal(store.states["toy"].v[rows], FRESH)
        if not capacities or capacities[-1] != store._capacity:
            capacities.append(store._capacity)
        assert store._capacity - len(store) < 64  # never more than a step of unused rows
    assert capacities == [16, 32, 64, 128, 192, 256, 300]  # doubling, then +64, capped
    assert len({int(store.row(f"s{i}")) for i in range(300)}) == 300


def test_growth_with_a_row_view_held_makes_new_arrays_and_keeps_every_row():
    store, calls = _store(initial_capacity=4)
    _scribble(store, ["a", "b", "c"])
    held = store.peek("b")["toy.v"]  # a view of the array: numpy may not reallocate it
    rows = store.acquire([f"s{i}" for i in range(10)])
    assert calls == [13]  # grown by a new state from the factory, rows copied in
    np.testing.assert_array_equal(store.states["toy"].v[rows], FRESH)
    np.testing.assert_array_equal(
        store.states["toy"].v[store.acquire(["a", "b", "c"])][:, 0], [0, 1, 2]
    )
    np.testing.assert_array_equal(held, [1.0, 1.0])  # the view still reads the old array


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


@dataclasses.dataclass
class Mixed(BatchState):
    """One field of each kind a checkpoint must carry exactly."""

    seq: np.ndarray  # (n,) int64: a 0-d array per row
    rho: np.ndarray  # (n, 2, 2) complex128
    spikes: np.ndarray  # (n, 3) bool
    trace: np.ndarray  # (n, 4) float32


def _mixed_store() -> SourceStore:
    def make(n: int) -> Mixed:
        return Mixed(
            seq=np.zeros(n, dtype=np.int64),
            rho=np.zeros((n, 2, 2), dtype=np.complex128),
            spikes=np.zeros((n, 3), dtype=bool),
            trace=np.zeros((n, 4), dtype=np.float32),
        )

    return SourceStore({"m": make}, max_sources=100, fingerprint="f")


def _fill(store: SourceStore, source: str, rng: np.random.Generator) -> None:
    row = store.acquire([source])[0]
    st = store.states["m"]
    st.seq[row] = rng.integers(-(2**62), 2**62)
    st.rho[row] = rng.standard_normal((2, 2)) + 1j * rng.standard_normal((2, 2))
    st.rho[row, 0, 0] = np.nan  # carried as it is, bit for bit
    st.spikes[row] = rng.random(3) < 0.5
    st.trace[row] = rng.standard_normal(4).astype(np.float32)


def _row_state(store: SourceStore, source: str) -> dict[str, np.ndarray]:
    row = store.acquire([source])[0]
    return {k: v[row].copy() for k, v in store.states["m"].arrays().items()}


def _assert_same_bits(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].dtype == b[k].dtype, k
        assert a[k].shape == b[k].shape, k
        assert a[k].tobytes() == b[k].tobytes(), k


def test_checkpoint_round_trip_is_exact_for_every_dtype(rng):
    src, dst = _mixed_store(), _mixed_store()
    _fill(src, "s", rng)
    data = src.checkpoint("s")
    assert data.startswith(b"NQPSTATE")
    dst.restore("s", data)
    _assert_same_bits(_row_state(src, "s"), _row_state(dst, "s"))


def test_format_1_checkpoints_are_still_read(rng):
    """An .npz archive as the first format wrote it (one member per array) restores."""
    src, dst = _mixed_store(), _mixed_store()
    _fill(src, "s", rng)
    arrays = {f"m.{k}": v for k, v in _row_state(src, "s").items()}
    header = {"version": 1, "source": "s", "fingerprint": "f"}
    buf = io.BytesIO()
    np.savez(buf, __header__=np.frombuffer(json.dumps(header).encode(), np.uint8), **arrays)
    dst.restore("s", buf.getvalue())
    _assert_same_bits(_row_state(src, "s"), _row_state(dst, "s"))


def _corruptions(good: bytes) -> dict[str, bytes]:
    head_len = struct.unpack_from("<I", good, 8)[0]
    header = json.loads(good[12 : 12 + head_len])
    body = good[12 + head_len :]

    def with_header(h: dict) -> bytes:
        text = json.dumps(h).encode()
        return b"NQPSTATE" + struct.pack("<I", len(text)) + text + body

    pickled = json.loads(json.dumps(header))
    pickled["fields"][0][1] = "|O"
    renamed = json.loads(json.dumps(header))
    renamed["fields"][0][0] = "m.other"
    reshaped = json.loads(json.dumps(header))
    reshaped["fields"][1][2] = [4]  # same bytes, another shape
    return {
        "empty": b"",
        "magic only": b"NQPSTATE",
        "truncated header": good[: 12 + head_len // 2],
        "truncated data": good[:-1],
        "trailing bytes": good + b"\x00",
        "not JSON": b"NQPSTATE" + struct.pack("<I", 3) + b"{x}" + body,
        "no fields": with_header({k: v for k, v in header.items() if k != "fields"}),
        "object dtype": with_header(pickled),
        "unknown field": with_header(renamed),
        "wrong shape": with_header(reshaped),
        "other version": with_header(header | {"version": 3}),
        "not a zip either": b"PK\x03\x04 garbage",
        "npz without a JSON header": _npz({"__header__": np.frombuffer(b"{nope", np.uint8)}),
        "npz with a list for a header": _npz({"__header__": np.frombuffer(b"[1]", np.uint8)}),
    }


def _npz(arrays: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def test_damaged_checkpoints_are_refused_and_change_nothing(rng):
    src, dst = _mixed_store(), _mixed_store()
    _fill(src, "s", rng)
    _fill(dst, "s", rng)
    before = _row_state(dst, "s")
    for what, data in _corruptions(src.checkpoint("s")).items():
        with pytest.raises(InvalidInputError, match=r"[Cc]heckpoint") as refused:
            dst.restore("s", data)
        assert refused.value.args, what
        _assert_same_bits(before, _row_state(dst, "s"))


def test_restoring_a_new_source_into_a_full_store_grows_it_and_keeps_the_state(rng):
    src = _mixed_store()
    _fill(src, "s", rng)
    data = src.checkpoint("s")
    dst = SourceStore(
        {"m": _mixed_store().factories["m"]}, max_sources=100, fingerprint="f", initial_capacity=1
    )
    dst.acquire(["other"])  # the only row is taken: restoring "s" grows the arrays
    dst.restore("s", data)
    _assert_same_bits(_row_state(src, "s"), _row_state(dst, "s"))


def test_a_refused_checkpoint_of_an_unknown_source_creates_nothing(rng):
    src, dst = _mixed_store(), _mixed_store()
    _fill(src, "s", rng)
    damaged = _corruptions(src.checkpoint("s"))
    for what in ("unknown field", "wrong shape"):  # found wrong after the header is read
        with pytest.raises(InvalidInputError, match="Checkpoint"):
            dst.restore("s", damaged[what])
        assert not dst.known("s"), what


def test_peek_reads_a_source_without_restoring_or_evicting(rng):
    store = SourceStore(
        {"m": _mixed_store().factories["m"]}, max_sources=2, fingerprint="f", initial_capacity=2
    )
    for name in ("a", "b", "c"):  # c evicts a
        _fill(store, name, rng)
    assert store.row("a") is None
    assert store.sources() == ["b", "c"]
    evicted = store.peek("a")
    resident = store.peek("c")
    assert store.sources() == ["b", "c"]  # nothing restored, evicted or reordered
    assert store.row("a") is None
    with pytest.raises(ValueError, match="read-only"):
        resident["m.trace"][0] = 1.0
    want = {f"m.{k}": v for k, v in _row_state(store, "c").items()}
    _assert_same_bits(want, resident)
    back = {f"m.{k}": v for k, v in _row_state(store, "a").items()}  # now restored
    _assert_same_bits(back, evicted)
    with pytest.raises(KeyError):
        store.peek("nobody")


def test_a_format_2_checkpoint_with_its_fields_in_another_order_restores(rng):
    """Not this store's own layout: read field by field, by name."""
    src, dst = _mixed_store(), _mixed_store()
    _fill(src, "s", rng)
    good = src.checkpoint("s")
    head_len = struct.unpack_from("<I", good, 8)[0]
    header = json.loads(good[12 : 12 + head_len])
    offset, parts = 12 + head_len, []
    for name, dtype, shape in header["fields"]:
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        parts.append(([name, dtype, shape], good[offset : offset + size]))
        offset += size
    parts.reverse()
    header["fields"] = [field for field, _ in parts]
    text = json.dumps(header).encode()
    reordered = b"NQPSTATE" + struct.pack("<I", len(text)) + text + b"".join(b for _, b in parts)
    dst.restore("s", reordered)
    _assert_same_bits(_row_state(src, "s"), _row_state(dst, "s"))
