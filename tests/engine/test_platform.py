"""nqp.Platform: streaming predictions that are right where they can be and honest elsewhere."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest, spearmanr

from nqp import Platform, Settings
from nqp.exceptions import InvalidInputError
from nqp.types import Direction

SMALL = {
    "neuromorphic": {"n_neurons": 96, "readout_dim": 32, "pattern_neurons": 32},
    "quantum": {"qubit_count": 4, "virtual_nodes": 2},
}


def small_platform(**engine) -> Platform:
    return Platform(Settings(**SMALL, engine=engine))


def stream(platform: Platform, source: str, values, t0: float = 1000.0, dt: float = 1.0):
    ts = t0 + dt * np.arange(len(values))
    return platform.process_many([{"source": source, "data": list(values), "timestamp": ts}])[0]


def realised_hits(preds, values, warm: int):
    """Hits of non-hold, post-warm-up predictions against the realised next change."""
    hits = n = 0
    for k, p in enumerate(preds[:-1]):
        if k < warm or p.warming_up or p.direction is Direction.HOLD:
            continue
        change = values[k + 1] - values[k]
        if change == 0:
            continue
        n += 1
        hits += (change > 0) == (p.direction is Direction.UP)
    return hits, n


def _leaves(tree, prefix=""):
    """A nested prediction dict flattened to {dotted.key: leaf}."""
    if isinstance(tree, dict):
        return {
            k: v for key, sub in tree.items() for k, v in _leaves(sub, f"{prefix}{key}.").items()
        }
    return {prefix[:-1]: tree}


def _strip(pred):
    d = pred.model_dump()
    d.pop("prediction_id")
    d.pop("processing_time_ms")
    return d


def assert_same_predictions(got, want):
    """Equal predictions, point by point (floats to 1e-9: BLAS sums may differ in the last
    bits), ids and processing times aside."""
    assert len(got) == len(want)
    for p, q in zip(got, want, strict=True):
        a, b = _leaves(_strip(p)), _leaves(_strip(q))
        assert a.keys() == b.keys()
        for key, value in a.items():
            if isinstance(value, float):
                assert value == pytest.approx(b[key], rel=1e-9, abs=1e-9), key
            else:
                assert value == b[key], key


def test_noiseless_sine_is_predicted_after_warm_up():
    values = np.sin(2 * np.pi * np.arange(700) / 37.0)
    preds = stream(small_platform(), "sine", values)
    hits, n = realised_hits(preds, values, warm=200)
    assert n > 300
    assert hits / n > 0.95


def test_linear_trend_is_predicted_after_warm_up():
    values = 5.0 + 0.25 * np.arange(300)
    preds = stream(small_platform(), "trend", values)
    hits, n = realised_hits(preds, values, warm=60)
    assert n > 200
    assert hits / n > 0.95
    assert preds[-1].direction is Direction.UP
    assert preds[-1].magnitude == pytest.approx(0.25, rel=0.2)  # raw units of the series


def test_random_walk_is_a_coin_flip_and_says_so():
    """Pooled over 8 independent walks (~7,000 scored points): one walk alone is a noisy
    witness (a fair coin leaves a single walk outside the 99% region 1 time in 100)."""
    hits = n = 0
    confidences = []
    for seed in range(8):
        values = np.cumsum(np.random.default_rng(seed).standard_normal(1500))
        preds = stream(small_platform(), "walk", values)
        h, m = realised_hits(preds, values, warm=100)
        hits, n = hits + h, n + m
        confidences.extend(p.confidence for p in preds[100:])
    # within a two-sided binomial 99% acceptance region of a fair coin
    assert binomtest(hits, n, 0.5).pvalue > 0.01
    mean_confidence = float(np.mean(confidences))
    assert abs(mean_confidence - 0.5) < 0.05
    # calibration: stated confidence matches the realised hit rate
    assert abs(mean_confidence - hits / max(n, 1)) < 0.06


def test_confidence_grows_with_standardised_prediction():
    """Confidence is a monotone map of |ŷ|/σ (the calibrator changes slowly in between)."""
    rng = np.random.default_rng(3)
    t = np.arange(900)
    values = np.sin(2 * np.pi * t / 50.0) + 0.3 * rng.standard_normal(t.size)
    preds = stream(small_platform(), "noisy", values)
    late = [p for p in preds[300:] if p.direction is not Direction.HOLD]
    for direction in (Direction.UP, Direction.DOWN):
        group = [p for p in late if p.direction is direction]
        assert len(group) > 50
        z = [abs(p.expected_change) / p.uncertainty for p in group]
        rho = spearmanr(z, [p.confidence for p in group]).statistic
        assert rho > 0.9
    # the sign of the expected change is the stated direction
    assert all((p.expected_change > 0) == (p.direction is Direction.UP) for p in late)


def test_warming_up_until_enough_outcomes():
    platform = small_platform(warmup=10)
    preds = stream(platform, "w", np.sin(np.arange(20) / 3.0))
    for p in preds[:10]:
        assert p.warming_up
        assert p.direction is Direction.HOLD
        assert p.confidence == 0.5
    assert not preds[11].warming_up


def test_checkpoint_restore_gives_identical_next_prediction():
    values = np.sin(np.arange(120) / 4.0) + 0.01 * np.arange(120)
    a, b = small_platform(), small_platform()
    stream(a, "s", values[:100])
    b.restore("s", a.checkpoint("s"))
    next_a = stream(a, "s", values[100:], t0=1100.0)
    next_b = stream(b, "s", values[100:], t0=1100.0)
    assert [_strip(p) for p in next_a] == [_strip(p) for p in next_b]


def test_restore_refuses_other_settings():
    a = small_platform()
    stream(a, "s", [1.0, 2.0, 3.0])
    other = Platform(Settings(**SMALL, seed=1))
    with pytest.raises(InvalidInputError, match="different engine settings"):
        other.restore("s", a.checkpoint("s"))


def test_batched_sources_equal_each_alone():
    rng = np.random.default_rng(11)
    series = {f"s{i}": np.cumsum(rng.standard_normal(60)) for i in range(4)}
    together, alone = small_platform(), small_platform()
    batched = together.process_many(
        [
            {"source": s, "data": list(v), "timestamp": 10.0 + np.arange(60)}
            for s, v in series.items()
        ]
    )
    for (s, v), preds in zip(series.items(), batched, strict=True):
        single = stream(alone, s, v, t0=10.0)
        for p, q in zip(preds, single, strict=True):
            assert p.direction == q.direction
            assert p.confidence == pytest.approx(q.confidence, abs=1e-9)
            assert p.magnitude == pytest.approx(q.magnitude, abs=1e-9)


def test_waves_of_scattered_rows_equal_each_alone():
    # Random subsets in random order: a wave's state rows are sometimes one run (stepped in
    # place on views) and sometimes scattered (gathered copies); neither may change a thing.
    rng = np.random.default_rng(12)
    series = {f"s{i}": np.cumsum(rng.standard_normal(45)) for i in range(6)}
    mixed, alone = small_platform(), small_platform()
    got: dict[str, list] = {s: [] for s in series}
    while any(len(got[s]) < 45 for s in series):
        open_ = [s for s in series if len(got[s]) < 45]
        picked = rng.permutation(open_)[: rng.integers(1, len(open_) + 1)]
        items = [
            {"source": str(s), "data": [series[s][len(got[s])]], "timestamp": [10.0 + len(got[s])]}
            for s in picked
        ]
        for s, preds in zip(picked, mixed.process_many(items), strict=True):
            got[str(s)].extend(preds)
    for s, v in series.items():
        single = stream(alone, s, v, t0=10.0)
        assert_same_predictions(got[s], single)


def test_items_of_any_length_and_repeated_sources_equal_each_alone():
    """One call whose items have different lengths, name a source twice (its points go in
    item order) and switch engines per item: each source's predictions are those of its
    points streamed alone; an empty call predicts nothing."""
    rng = np.random.default_rng(13)
    series = {s: np.cumsum(rng.standard_normal(9)) for s in ("a", "b", "c")}
    off = {"quantum_enabled": False}
    items = [
        {"source": "a", "data": list(series["a"][:5]), "timestamp": 10.0 + np.arange(5)},
        {"source": "b", "data": list(series["b"][:2]), "timestamp": 10.0 + np.arange(2)},
        {"source": "c", "data": [series["c"][0]], "timestamp": [10.0], "config": off},
        {"source": "a", "data": list(series["a"][5:]), "timestamp": 15.0 + np.arange(4)},
    ]
    mixed, alone = small_platform(), small_platform()
    assert mixed.process_many([]) == []
    got = mixed.process_many(items)
    assert [len(preds) for preds in got] == [5, 2, 1, 4]
    want = {
        "a": stream(alone, "a", series["a"], t0=10.0),
        "b": stream(alone, "b", series["b"][:2], t0=10.0),
        "c": alone.process_many([items[2]])[0],
    }
    assert got[2][0].quantum_results is None
    assert got[0][0].quantum_results is not None
    for preds, want_preds in (
        (got[0] + got[3], want["a"]),
        (got[1], want["b"]),
        (got[2], want["c"]),
    ):
        assert_same_predictions(preds, want_preds)


def test_warm_up_leaves_no_trace():
    """After warm_up a platform holds no source and predicts exactly as a fresh one; a
    platform that already holds sources refuses it."""
    rng = np.random.default_rng(3)
    values = np.cumsum(rng.standard_normal(30))
    warmed, fresh = small_platform(), small_platform()
    warmed.warm_up()
    assert warmed.sources() == []
    got, want = stream(warmed, "a", values), stream(fresh, "a", values)
    for p, q in zip(got, want, strict=True):
        assert _strip(p) == _strip(q)
    with pytest.raises(RuntimeError, match="holds no sources"):
        warmed.warm_up()
    assert warmed.sources() == ["a"]
    one = small_platform(max_sources=1)  # one source at a time: nothing evicted
    one.warm_up()
    assert one.sources() == []
    assert one.store.sink.data == {}


_KERNELS_LOADED_AFTER_WARM_UP = """
import sys
import numba
from numba.core.registry import CPUDispatcher
from nqp import Platform
from nqp.engine.platform import ProcessItem


def loaded():
    return {
        (name, attr): len(value.overloads)
        for name, module in list(sys.modules.items())
        if name.startswith("nqp.")
        for attr, value in list(vars(module).items())
        if isinstance(value, CPUDispatcher)
    }


platform = Platform()
platform.warm_up()
before = loaded()
assert sum(before.values()) > 0, before
walk = [100.0 + 0.1 * k for k in range(40)]
platform.process_many_encoded([ProcessItem(f"t/s{k}", walk) for k in range(5)])
platform.process_many_encoded(
    [ProcessItem("t/s1", [1.0], config={"quantum_enabled": False}),
     ProcessItem("t/s3", [2.0], config={"neuromorphic_enabled": False}),
     ProcessItem("t/new", [3.0, 4.0])]
)
platform.process_many_encoded([ProcessItem(f"t/s{k}", [5.0]) for k in (0, 2, 4)])
after = loaded()
print(sorted(key for key, n in after.items() if n != before.get(key, 0)))
"""


def test_warm_up_loads_every_kernel_the_engine_calls():
    """In a fresh process, nothing the engine then processes (multi-point items, single
    points, scattered rows, engines switched off, a new source) loads another kernel."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-c", _KERNELS_LOADED_AFTER_WARM_UP],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_eviction_to_checkpoint_is_invisible():
    rng = np.random.default_rng(5)
    data = {s: np.cumsum(rng.standard_normal(40)) for s in "abc"}
    bounded, unbounded = small_platform(max_sources=2), small_platform()
    for k in range(0, 40, 5):  # interleave the three sources in chunks
        for s, v in data.items():
            chunk = list(v[k : k + 5])
            ts = 100.0 + 10 * k + np.arange(5)
            p = bounded.process(s, chunk, timestamp=ts)
            q = unbounded.process(s, chunk, timestamp=ts)
            assert _strip(p) == _strip(q)
    assert len(bounded.sources()) == 2
    assert bounded.summary("a").points == 40


@pytest.mark.parametrize(
    ("item", "match"),
    [
        ({"source": "s", "data": [1.0, float("nan")]}, "non-finite"),
        ({"source": "s", "data": [[1.0, 2.0]]}, "channel"),
        ({"source": "", "data": [1.0]}, "source"),
        ({"source": "s", "data": []}, "at least one point"),
        ({"source": "s", "data": [True]}, "booleans"),
        ({"source": "s", "data": "1.0"}, "number"),
        ({"source": "s", "data": [1.0], "timestamp": 5.0}, "earlier"),
        ({"source": "s", "data": [1.0], "config": {"horizon": 3}}, "horizon"),
        ({"source": "s", "data": [1.0], "config": {"quantum": True}}, "config"),
        ({"source": "s", "data": [1.0, 2.0], "timestamp": [30.0, 20.0]}, "non-decreasing"),
    ],
)
def test_invalid_input_is_rejected_without_touching_state(item, match):
    platform = small_platform()
    stream(platform, "s", [1.0, 2.0, 1.5], t0=10.0)
    before = platform.checkpoint("s")
    with pytest.raises(InvalidInputError, match=match):
        platform.process_many([{"source": "ok", "data": [1.0], "timestamp": 50.0}, item])
    assert platform.checkpoint("s") == before
    assert "ok" not in platform.sources()


def test_engine_switches_and_time_horizon():
    platform = small_platform()
    pred = platform.process(
        "x", [1.0, 2.0, 3.0], timestamp=[0.0, 0.5, 1.0], config={"quantum_enabled": False}
    )
    assert pred.quantum_results is None
    assert pred.neuromorphic_results is not None
    assert pred.time_horizon_ms == pytest.approx(500.0)
    pred = platform.process("x", 2.5, timestamp=1.5, config={"neuromorphic_enabled": False})
    assert pred.neuromorphic_results is None
    assert pred.quantum_results is not None
    assert pred.sequence == 4


def test_multivariate_target_channel():
    platform = small_platform()
    rows = [[float(k), 100.0 - 2.0 * k] for k in range(80)]
    preds = platform.process_many(
        [
            {
                "source": "m",
                "data": rows,
                "timestamp": np.arange(80.0),
                "config": {"target_channel": 1},
            }
        ]
    )[0]
    assert preds[-1].direction is Direction.DOWN


def test_anomaly_score_flags_planted_spikes_and_level_shift():
    rng = np.random.default_rng(2)
    n = 600
    values = 20.0 + 0.5 * np.sin(np.arange(n) / 30.0) + 0.05 * rng.standard_normal(n)
    spikes = [250, 400]
    values[spikes] += 2.0
    shift = 500
    values[shift:] += 1.5
    preds = stream(small_platform(), "sensor", values)
    score = np.array([p.anomaly_score for p in preds])
    for k in [*spikes, shift]:
        assert score[k] > 0.6, k
    ordinary = np.setdiff1d(
        np.arange(150, n), [k + d for k in [*spikes, shift] for d in range(-1, 4)]
    )
    assert np.median(score[ordinary]) < 0.2
    assert np.mean(score[ordinary] > 0.6) < 0.02


def test_values_too_large_for_running_statistics_are_rejected():
    """Regression (fuzzing): |x| near 1.8e308 overflowed the running variance for good."""
    platform = small_platform()
    stream(platform, "big", [1.0, 2.0, 3.0])
    before = platform.checkpoint("big")
    with pytest.raises(InvalidInputError, match="beyond"):
        platform.process("big", [1.0, 1.79e308, -1.79e308], timestamp=1e9)
    assert platform.checkpoint("big") == before


def test_json_predictions_are_the_models_dumped():
    """process_many_json (the service's and workers' path) equals process_many, dumped."""
    rng = np.random.default_rng(3)
    a, b = small_platform(warmup=5), small_platform(warmup=5)
    walk = np.cumsum(rng.standard_normal((40, 2)), axis=0)
    for k in range(40):
        items = [
            {"source": "uni", "data": [float(walk[k, 0])], "timestamp": [100.0 + 10 * k]},
            {"source": "int", "data": [k % 3, 1], "timestamp": 100.0 + 10 * k},
            {"source": "multi", "data": [walk[k].tolist()], "timestamp": 100.0 + 10 * k},
            {"source": "neuro", "data": [float(walk[k, 1])], "timestamp": 100.0 + 10 * k},
            {"source": "quant", "data": float(walk[k, 0]), "timestamp": 100.0 + 10 * k},
        ]
        items[2]["config"] = {"target_channel": 1}
        items[3]["config"] = {"quantum_enabled": False}
        items[4]["config"] = {"neuromorphic_enabled": 0}
        if k % 4 == 0:
            t = 100.0 + 10 * k
            items.append({"source": "uni", "data": [1.0, 2.0], "timestamp": [t + 1, t + 1]})
            items.append({"source": "uni", "data": [3.0], "timestamp": [t + 2]})
        got = b.process_many_json(items)
        want = a.process_many(items)
        assert [len(r) for r in got] == [len(r) for r in want]
        for g_row, w_row in zip(got, want, strict=True):
            for g, w in zip(g_row, w_row, strict=True):
                g = dict(g, processing_time_ms=0.0)
                assert g == w.model_dump(mode="json") | {"processing_time_ms": 0.0}
                assert all(type(g[k]) is type(v) for k, v in w.model_dump(mode="json").items())


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ([1.0, float("nan")], "non-finite"),
        ([float("inf")], "non-finite"),
        ([2e100], "beyond"),
        ([1.0, True], "booleans"),
    ],
)
def test_fast_parse_path_still_rejects(data, match):
    p = small_platform()
    with pytest.raises(InvalidInputError, match=match):
        p.process("s", data)
    assert p.sources() == []
