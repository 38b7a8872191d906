"""IoT scenario: the labels mark exactly the planted anomalies, and the chunks join seamlessly."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest

from nqp.exceptions import InvalidParameterError
from nqp.scenarios import IoTScenario

Z = 4.5
DAY = 86_400.0


def _collect(s: IoTScenario, n: int):
    values: dict[str, list[float]] = defaultdict(list)
    labels: dict[str, list[bool]] = defaultdict(list)
    for _ in range(n):
        for p in next(s):
            values[p.source].append(p.data)
            labels[p.source].append(p.anomaly)
    return {k: np.array(v) for k, v in values.items()}, {k: np.array(v) for k, v in labels.items()}


def test_labels_are_exactly_the_windows_of_the_planted_anomalies():
    s = IoTScenario(devices=2, anomaly_rate=0.01, chunk_steps=300, seed=4)
    n = 3000
    _, labels = _collect(s, n)
    windows: dict[str, np.ndarray] = {src: np.zeros(n, dtype=bool) for src in s.sources}
    for e in s.anomalies_:
        if e.start < n:
            assert not windows[e.source][e.start : e.end].any()  # no overlaps
            windows[e.source][e.start : min(e.end, n)] = True
    assert {e.kind for e in s.anomalies_} == {"spike", "level_shift", "drift", "stuck"}
    for src in s.sources:
        np.testing.assert_array_equal(labels[src], windows[src], err_msg=src)
    assert sum(w.sum() for w in windows.values()) > 100


def test_temperature_is_the_clean_model_off_the_labels_and_anomalous_on_them():
    sigma, interval = 0.2, 60.0
    s = IoTScenario(
        devices=1,
        sensors=("temperature",),
        anomaly_kinds=("spike", "level_shift"),
        anomaly_rate=0.004,
        chunk_steps=200,  # the daily cycle and drift must run on across chunk seams
        seed=9,
    )
    n = 6000
    values, labels = _collect(s, n)
    x, lab = values["iot.dev1.temperature"], labels["iot.dev1.temperature"]
    t = interval * np.arange(n)
    model = 20.0 + 5.0 * np.sin(2 * np.pi * (t - 9 * 3600.0) / DAY) + 0.1 * t / DAY
    r = x - model
    normal = r[~lab]
    assert np.abs(normal).max() < 5.5 * sigma  # nothing anomalous where no label says so
    assert abs(normal.mean()) < Z * sigma / math.sqrt(normal.size)
    assert abs(normal.std() / sigma - 1.0) < Z / math.sqrt(2 * normal.size)
    events = [e for e in s.anomalies_ if e.start < n]
    assert {e.kind for e in events} == {"spike", "level_shift"}
    for e in events:
        window = r[e.start : e.end]
        if e.kind == "spike":  # the median of its clean neighbours plus the magnitude
            assert abs(e.magnitude) >= 6 * sigma
            assert abs(window[0] - e.magnitude) < 2 * sigma
        else:
            se = sigma / math.sqrt(window.size)
            assert abs(window.mean() - e.magnitude) < Z * se
            assert abs(e.magnitude) >= 3 * sigma


def test_pressure_continues_as_one_ar1_across_chunk_seams():
    sigma, phi = 0.5, 0.95
    chunk = 50
    s = IoTScenario(devices=1, sensors=("pressure",), anomaly_rate=0.0, chunk_steps=chunk, seed=12)
    n = 20_000
    values, labels = _collect(s, n)
    x = values["iot.dev1.pressure"] - 101.3
    assert not labels["iot.dev1.pressure"].any()
    innovations = x[1:] - phi * x[:-1]
    seams = innovations[chunk - 1 :: chunk]  # x[k] - phi x[k-1] for k = chunk, 2 chunk, ...
    scale = sigma * math.sqrt(1 - phi**2)
    assert abs(seams.std() / scale - 1.0) < Z / math.sqrt(2 * seams.size)
    assert abs(innovations.std() / scale - 1.0) < Z / math.sqrt(2 * innovations.size)
    lag1 = np.corrcoef(x[:-1], x[1:])[0, 1]
    assert abs(lag1 - phi) < Z * math.sqrt((1 - phi**2) / n)


def test_same_seed_same_stream():
    def run(seed: int) -> list:
        s = IoTScenario(chunk_steps=64, anomaly_rate=0.02, seed=seed, start_time=5.0, interval=2.0)
        return [p for _ in range(200) for p in next(s)]

    a, b, c = run(1), run(1), run(2)
    assert a == b
    assert [p.data for p in a] != [p.data for p in c]
    assert a[-1].timestamp == 5.0 + 199 * 2.0
    assert len({p.source for p in a}) == 6


def test_bad_parameters_are_named():
    with pytest.raises(InvalidParameterError, match="'sensors' parameter of IoTScenario"):
        next(IoTScenario(sensors=("humidity",)))
    with pytest.raises(InvalidParameterError, match="'devices' parameter of IoTScenario"):
        next(IoTScenario(devices=0))
    with pytest.raises(InvalidParameterError, match="'chunk_steps' parameter of IoTScenario"):
        next(IoTScenario(chunk_steps=10))
    with pytest.raises(InvalidParameterError, match="'anomaly_rate' parameter of iot_sensors"):
        next(IoTScenario(anomaly_rate=2.0))
