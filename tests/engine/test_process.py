"""EngineHost: the platform behind a pipe gives exactly what the platform gives."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.config import Settings
from nqp.engine import Platform, ProcessItem
from nqp.engine.process import EngineHost, EngineUnavailableError
from nqp.exceptions import InvalidInputError

SMALL = {
    "neuromorphic": {"n_neurons": 48, "readout_dim": 16, "pattern_neurons": 16},
    "quantum": {"qubit_count": 3, "virtual_nodes": 2, "readout_dim": 8},
    "engine": {"warmup": 5},
}


def _items(rng: np.random.Generator, k: int) -> list[ProcessItem]:
    return [ProcessItem(f"t/s{i}", float(rng.normal()), 1000.0 + k, None) for i in range(3)]


@pytest.fixture(params=[False, True], ids=["child-process", "in-process"])
def host(request):
    engine = EngineHost(Settings(**SMALL), in_process=request.param)
    engine.start()
    yield engine
    engine.close()


def test_same_predictions_as_the_platform(host):
    reference = Platform(Settings(**SMALL))
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    for k in range(20):
        got = host.process_json(_items(rng_a, k))
        want = [
            [p.model_dump(mode="json") for p in preds]
            for preds in reference.process_many(_items(rng_b, k))
        ]
        for g, w in zip(got, want, strict=True):
            for gp, wp in zip(g, w, strict=True):
                gp.pop("processing_time_ms")
                wp.pop("processing_time_ms")
                assert gp == wp
    assert sorted(host.sources()) == ["t/s0", "t/s1", "t/s2"]
    assert host.known("t/s0")
    assert not host.known("t/nope")
    assert host.known_of(["t/s1", "t/nope"]) == ["t/s1"]
    assert host.summary("t/s0").points == 20
    rates = host.rolling_hit_rates(["t/s0", "t/nope"])
    assert set(rates) <= {"t/s0"}


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
    engine._proc.kill()
    engine._proc.join()
    assert not engine.alive
    with pytest.raises(EngineUnavailableError):
        engine.process_json([ProcessItem("t/a", 1.0, 1.0, None)])
    engine.close()
