"""EngineHost: the platform behind a pipe gives exactly what the platform gives."""

from __future__ import annotations

import threading

import numpy as np
import orjson
import pytest

from nqp.config import Settings
from nqp.engine import Platform, ProcessItem
from nqp.engine.process import (
    EngineHost,
    EngineUnavailableError,
    PredictionBatch,
    _encode,
    shard_of,
)
from nqp.exceptions import InvalidInputError

SMALL = {
    "neuromorphic": {"n_neurons": 48, "readout_dim": 16, "pattern_neurons": 16},
    "quantum": {"qubit_count": 3, "virtual_nodes": 2, "readout_dim": 8},
    "engine": {"warmup": 5},
}


def assert_same(got: dict, want: dict) -> None:
    """Equal predictions: exact but for float rounding (a different batch width changes
    the summation order of the engine's matrix products, hence the last bits)."""
    got, want = dict(got, processing_time_ms=0.0), dict(want, processing_time_ms=0.0)
    assert got.keys() == want.keys()
    for key, value in want.items():
        if isinstance(value, dict):
            assert_same(got[key], value)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key
        else:
            assert got[key] == value, key


def _items(rng: np.random.Generator, k: int) -> list[ProcessItem]:
    return [ProcessItem(f"t/s{i}", float(rng.normal()), 1000.0 + k, None) for i in range(3)]


@pytest.fixture(
    params=[(False, 1), (True, 1), (False, 3)], ids=["child-process", "in-process", "sharded"]
)
def host(request):
    in_process, processes = request.param
    engine = EngineHost(Settings(**SMALL), in_process=in_process, processes=processes)
    engine.start()
    yield engine
    engine.close()


def test_same_predictions_as_the_platform(host):
    reference = Platform(Settings(**SMALL))
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    for k in range(20):
        items = _items(rng_a, k)
        got = host.process_json(items)
        want = [
            [p.model_dump(mode="json") for p in preds]
            for preds in reference.process_many(_items(rng_b, k))
        ]
        for item, g, w in zip(items, got, want, strict=True):
            assert isinstance(g, PredictionBatch)
            assert g.source == item.source
            for gp, wp in zip(g.dicts(), w, strict=True):
                assert_same(gp, wp)
    assert sorted(host.sources()) == ["t/s0", "t/s1", "t/s2"]
    assert host.known("t/s0")
    assert not host.known("t/nope")
    assert host.known_of(["t/s1", "t/nope"]) == ["t/s1"]
    assert host.summary("t/s0").points == 20
    rates = host.rolling_hit_rates(["t/s0", "t/nope"])
    assert set(rates) <= {"t/s0"}


def test_batches_carry_their_sources_rolling_hit_rate(host):
    """Each batch brings the hit rate the platform reports once the call has run: none
    before any scored outcome, then the same number ``rolling_hit_rates`` gives."""
    first = host.process_json([ProcessItem("t/up", 1.0, 1.0, None)])
    assert first[0].hit_rate is None
    trend = np.arange(2.0, 62.0) + np.sin(np.arange(60))  # scored outcomes past warm-up
    items = [
        ProcessItem("t/up", trend[:30].tolist(), (2.0 + np.arange(30)).tolist(), None),
        ProcessItem("t/other", 1.0, 1.0, None),
        ProcessItem("t/up", trend[30:].tolist(), (32.0 + np.arange(30)).tolist(), None),
    ]
    got = host.process_json(items)
    rate = host.rolling_hit_rates(["t/up"])["t/up"]
    assert 0.0 <= rate <= 1.0
    assert got[0].hit_rate == got[2].hit_rate == rate  # the state after the whole call
    assert got[1].hit_rate is None


def test_errors_cross_the_pipe_and_change_nothing(host):
    host.process_json([ProcessItem("t/a", 1.0, 1.0, None)])
    with pytest.raises(InvalidInputError, match="finite"):
        host.process_json([ProcessItem("t/a", float("nan"), 2.0, None)])
    assert host.summary("t/a").points == 1


def test_checkpoint_restore_forget(host):
    host.process_json([ProcessItem("t/a", [1.0, 2.0, 3.0], [1.0, 2.0, 3.0], None)])
    blobs = host.checkpoints(["t/a", "t/gone"])
    assert set(blobs) == {"t/a"}
    assert host.forget("t/a") is True
    assert not host.known("t/a")
    host.restore("t/a", blobs["t/a"])
    assert host.summary("t/a").points == 3


def test_closed_engine_is_unavailable():
    engine = EngineHost(Settings(**SMALL))
    engine.start()
    assert engine.alive
    engine.close()
    assert not engine.alive
    with pytest.raises(EngineUnavailableError):
        engine.sources()


def test_a_dead_engine_process_is_reported():
    engine = EngineHost(Settings(**SMALL))
    engine.start()
    engine._procs[0].kill()
    engine._procs[0].join()
    assert not engine.alive
    with pytest.raises(EngineUnavailableError):
        engine.process_json([ProcessItem("t/a", 1.0, 1.0, None)])
    engine.close()


def test_sources_spread_over_the_shards():
    shards = {shard_of(f"t/s{i}", 3) for i in range(30)}
    assert shards == {0, 1, 2}
    assert shard_of("t/s7", 3) == shard_of("t/s7", 3)  # stable (crc32, not hash())
    assert shard_of("anything", 1) == 0


@pytest.fixture
def sharded():
    engine = EngineHost(Settings(**SMALL), processes=3)
    engine.start()
    yield engine
    engine.close()


def _on_other_shards(n: int) -> list[str]:
    """Sources on pairwise different shards of 3."""
    names, used = [], set()
    for i in range(100):
        name = f"t/x{i}"
        if shard_of(name, 3) not in used:
            used.add(shard_of(name, 3))
            names.append(name)
        if len(names) == n:
            return names
    raise AssertionError("no spread")


def test_a_busy_shard_does_not_hold_up_calls_to_another(sharded):
    """Each engine process has its own lock: while one shard's pipe is in use (its lock
    held, as during a long batch), a call to another shard goes through."""
    a, b, _ = _on_other_shards(3)
    sharded.process_json([ProcessItem(s, 1.0, 1.0, None) for s in (a, b)])
    busy = sharded._locks[shard_of(a, 3)]
    outcome: dict[str, object] = {}

    def call_other_shard() -> None:
        outcome["b"] = sharded.process_json([ProcessItem(b, 2.0, 2.0, None)])[0].dicts()

    with busy:
        worker = threading.Thread(target=call_other_shard)
        worker.start()
        worker.join(10)
        assert not worker.is_alive(), "a call to an idle shard waited for a busy one"
        # a call that needs the busy shard waits for it
        blocked = threading.Thread(target=lambda: sharded.known_of([a, b]))
        blocked.start()
        blocked.join(0.2)
        assert blocked.is_alive()
    blocked.join(10)
    assert not blocked.is_alive()
    assert [p["sequence"] for p in outcome["b"]] == [2]


def test_sharded_request_with_one_bad_item_runs_no_part(sharded):
    a, b, c = _on_other_shards(3)
    sharded.process_json([ProcessItem(s, 1.0, 1.0, None) for s in (a, b, c)])
    before = sharded.checkpoints([a, b, c])
    items = [
        ProcessItem(a, 2.0, 2.0, None),
        ProcessItem(b, 2.0, 2.0, None),
        ProcessItem(a, 3.0, 3.0, None),
        ProcessItem(c, float("nan"), 2.0, None),  # request index 3, index 0 on its shard
    ]
    with pytest.raises(InvalidInputError, match=r"^items\[3\]\.data.*finite"):
        sharded.process_json(items)
    assert sharded.checkpoints([a, b, c]) == before
    # two invalid items on different shards: the lower request index is reported
    items[1] = ProcessItem(b, [[1.0, 2.0]], 2.0, None)  # 2 channels on a 1-channel source
    with pytest.raises(InvalidInputError, match=r"^items\[1\]\.data has 2 channel"):
        sharded.process_json(items)
    assert sharded.checkpoints([a, b, c]) == before
    # the engine still works afterwards and keeps per-source order across items
    items[1] = ProcessItem(b, 2.0, 2.0, None)
    out = sharded.process_json(items[:3])
    assert [p["sequence"] for r in out for p in r.dicts()] == [2, 2, 3]
    assert [p["value"] for r in out for p in r.dicts()] == [2.0, 2.0, 3.0]
    assert [r.source for r in out] == [a, b, a]


def test_sharded_equals_one_engine():
    one = EngineHost(Settings(**SMALL), in_process=True)
    one.start()
    many = EngineHost(Settings(**SMALL), processes=2)
    many.start()
    try:
        rng = np.random.default_rng(5)
        for k in range(12):
            items = [ProcessItem(f"t/s{i}", float(rng.normal()), 10.0 + k, None) for i in range(7)]
            items.append(ProcessItem("t/s0", [0.5, 0.25], [10.5 + k, 10.5 + k], None))
            got, want = many.process_json(items), one.process_json(items)
            for g, w in zip(got, want, strict=True):
                assert len(g) == len(w)
                for gp, wp in zip(g.dicts(), w.dicts(), strict=True):
                    assert_same(gp, wp)
        assert sorted(many.sources()) == sorted(one.sources())
        assert many.known_of(["t/s3", "t/no", "t/s1"]) == ["t/s3", "t/s1"]
    finally:
        one.close()
        many.close()


def test_a_dead_shard_makes_the_engine_unavailable(sharded):
    sharded._procs[1].kill()
    sharded._procs[1].join()
    assert not sharded.alive
    with pytest.raises(EngineUnavailableError):
        sharded.sources()


def test_prediction_batch_is_the_dicts_json_byte_for_byte():
    """PredictionBatch (what crosses the pipe) keeps each prediction exactly: its payloads
    are orjson.dumps of the platform's dicts with the source renamed, its columns the
    dicts' values."""
    platform = Platform(Settings(**SMALL))
    items = [
        ProcessItem("t/uni", [1.0, 1.5, 0.5], [1.0, 2.0, 3.0], None),
        ProcessItem('t/odd "name" 100%', [[1.0, 2.0]], 1.0, {"quantum_enabled": False}),
        ProcessItem("t/uni", 2.0, 4.0, {"neuromorphic_enabled": False}),
        ProcessItem("t/température ✓ \\", [3.0], [5.0], None),  # multi-byte UTF-8, "\\"
    ]
    dicts = platform.process_many_json(items)
    for item, preds in zip(items, dicts, strict=True):
        batch = PredictionBatch.from_dicts(item.source, preds).renamed("public")
        want = [p | {"source": "public"} for p in preds]
        assert batch.payloads() == [orjson.dumps(p).decode() for p in want]
        assert batch.dicts() == want
        assert len(batch) == len(preds)
        assert batch.prediction_ids == [p["prediction_id"] for p in preds]
        assert batch.sequences == [p["sequence"] for p in preds]
        assert batch.timestamps == [p["timestamp"] for p in preds]
        assert batch.directions == [p["direction"] for p in preds]
        assert batch.confidences == [p["confidence"] for p in preds]
    renamed = PredictionBatch.from_dicts("x", dicts[0]).renamed('a "quoted" 50% name')
    assert [orjson.loads(t)["source"] for t in renamed.payloads()] == ['a "quoted" 50% name'] * 3


def test_encoded_predictions_are_the_dicts_json_byte_for_byte():
    """What the engine process sends (Platform.process_many_encoded, no dict per point)
    equals PredictionBatch.from_dicts of Platform.process_many_json on a twin platform,
    but for the measured processing time: the same columns, and each body the dict's
    JSON after its head."""
    twins = [Platform(Settings(**SMALL)), Platform(Settings(**SMALL))]
    items = [
        ProcessItem("t/uni", [1.0, 1.5, 0.5], [1.0, 2.0, 3.0], None),
        ProcessItem('t/odd "name" 100%', [[1.0, 2.0]], 1.0, {"quantum_enabled": False}),
        ProcessItem("t/uni", 2.0, 4.0, {"neuromorphic_enabled": False}),
        ProcessItem("t/température ✓ \\", [3.0], [5.0], None),
    ]
    for _ in range(3):  # fresh, then warm sources
        got = _encode(twins[0], items, twins[0].process_many_encoded(items))
        dicts = twins[1].process_many_json(items)
        rates = twins[1].rolling_hit_rates({item.source for item in items})
        want = [
            PredictionBatch.from_dicts(item.source, preds, hit_rate=rates.get(item.source))
            for item, preds in zip(items, dicts, strict=True)
        ]
        for g, w in zip(got, want, strict=True):
            assert (g.source, g.hit_rate, len(g)) == (w.source, w.hit_rate, len(w))
            assert g.prediction_ids == w.prediction_ids
            assert (g.sequences, g.timestamps) == (w.sequences, w.timestamps)
            assert (g.directions, g.confidences) == (w.directions, w.confidences)
            assert g.payloads() == [orjson.dumps(d).decode() for d in g.dicts()]
            timeless = [dict(d, processing_time_ms=0.0) for d in g.dicts()]
            assert timeless == [dict(d, processing_time_ms=0.0) for d in w.dicts()]
        items = [
            ProcessItem(i.source, i.data, np.add(i.timestamp, 10.0).tolist(), None) for i in items
        ]


def test_prediction_batch_refuses_what_it_cannot_write_back():
    good = {"prediction_id": "ab12", "source": "s", "sequence": 1, "timestamp": 1.0}
    good |= {"direction": "up", "confidence": 0.5}
    PredictionBatch.from_dicts("s", [good])
    with pytest.raises(ValueError, match="alphanumeric"):
        PredictionBatch.from_dicts("s", [good | {"prediction_id": 'a"b'}])
    with pytest.raises(ValueError, match="first members"):
        PredictionBatch.from_dicts("s", [{"source": "s", **good}])


_BLAS_PROBE = """
import json
from nqp.config import Settings
from nqp.engine.process import EngineHost
from nqp.engine.threads import blas_threads

host = EngineHost(Settings(), processes=2)
before = blas_threads()  # this process: as the environment says
host.start()
try:
    print(json.dumps({"parent": before, "children": host.blas_threads()}))
finally:
    host.close()
"""


def test_engine_processes_use_one_blas_thread_whatever_the_environment():
    """With ``OPENBLAS_NUM_THREADS=2`` (as on a 2-core machine without it), the engine's
    child processes still use one BLAS thread each: measured, two spinning BLAS threads
    per engine process tripled a batch job's engine CPU."""
    import json
    import os
    import subprocess
    import sys

    env = dict(os.environ, OPENBLAS_NUM_THREADS="2", OMP_NUM_THREADS="2", MKL_NUM_THREADS="2")
    out = subprocess.run(
        [sys.executable, "-c", _BLAS_PROBE], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    threads = json.loads(out.stdout.strip().splitlines()[-1])
    if threads["parent"] < 2:
        pytest.skip("this BLAS build or machine gives one thread even when asked for two")
    assert threads["children"] == [1, 1]
