"""IoT telemetry and machine degradation: planted anomalies, noise laws, failure time."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

from nqp.datasets.sensors import (
    ANOMALY_KINDS,
    DEFAULT_NOISE_STD,
    SPIKE_MIN_SIGMA,
    AnomalySpec,
    iot_sensors,
    machine_degradation,
)
from nqp.exceptions import InvalidParameterError

ALPHA = 1e-6
Z = stats.norm.ppf(1 - ALPHA / 2)
DAY = 86_400.0


def _chi2_ok(x, var):
    stat = (x.size - 1) * x.var(ddof=1) / var
    lo, hi = stats.chi2.ppf([ALPHA / 2, 1 - ALPHA / 2], x.size - 1)
    return lo < stat < hi


@pytest.fixture(scope="module")
def busy():
    return iot_sensors(20_000, anomaly_rate=0.003, seed=1)


def test_labels_are_exactly_the_planted_windows(busy):
    s = busy
    assert {a.kind for a in s.anomalies} == set(ANOMALY_KINDS)
    expected = np.zeros_like(s.labels)
    for a in s.anomalies:
        assert not expected[a.start : a.end, a.channel].any()  # no overlaps on a sensor
        expected[a.start : a.end, a.channel] = True
        assert s.sensors[a.channel] == a.sensor
        assert a.end - a.start == 1 if a.kind == "spike" else 20 <= a.end - a.start <= 120
    np.testing.assert_array_equal(s.labels, expected)
    # values differ from the clean signal on every labelled sample and nowhere else
    np.testing.assert_array_equal(s.values[~s.labels], s.clean[~s.labels])
    assert np.all(s.values[s.labels] != s.clean[s.labels])
    assert s.labels.dtype == np.bool_
    assert s.values.shape == s.clean.shape == (20_000, 3)


def test_random_anomalies_keep_clear_of_each_other_and_the_ends(busy):
    for c in range(3):
        spans = sorted((a.start, a.end) for a in busy.anomalies if a.channel == c)
        assert spans[0][0] >= 10
        assert spans[-1][1] <= 20_000 - 10
        for (_, e0), (s1, _) in itertools.pairwise(spans):
            assert s1 - e0 >= 10


def test_spikes_stand_out_from_the_local_median(busy):
    spikes = [a for a in busy.anomalies if a.kind == "spike"]
    assert len(spikes) > 10
    for a in spikes:
        x = busy.values[:, a.channel]
        neighbours = np.r_[x[a.start - 5 : a.start], x[a.start + 1 : a.start + 6]]
        deviation = x[a.start] - np.median(neighbours)
        sigma = busy.noise_std[a.channel]
        assert abs(deviation) >= SPIKE_MIN_SIGMA * sigma
        assert deviation == pytest.approx(a.magnitude, rel=1e-12, abs=1e-12)


def test_random_anomaly_sizes_follow_the_documented_ranges(busy):
    for a in busy.anomalies:
        m = abs(a.magnitude) / busy.noise_std[a.channel]
        if a.kind == "spike":
            assert 6.0 <= m <= 10.0
        elif a.kind == "level_shift":
            assert 3.0 <= m <= 6.0
        elif a.kind == "drift":
            assert 4.0 <= m <= 8.0


def test_explicit_anomalies_are_planted_as_specified():
    specs = [
        AnomalySpec("level_shift", "vibration", 1000, 2000, 5.0),
        AnomalySpec("drift", "temperature", 500, 100, -8.0),
        AnomalySpec("stuck", "pressure", 300, 50),
        AnomalySpec("spike", "pressure", 3000, 1, 7.0),
    ]
    s = iot_sensors(4000, anomalies=specs, seed=2)
    assert [(a.kind, a.start, a.end) for a in s.anomalies] == [
        ("stuck", 300, 350),
        ("drift", 500, 600),
        ("level_shift", 1000, 3000),
        ("spike", 3000, 3001),
    ]
    assert s.labels.sum() == 50 + 100 + 2000 + 1
    diff = s.values - s.clean
    # level shift: the full offset on every sample of the window, gone after it
    np.testing.assert_allclose(diff[1000:3000, 2], 5.0 * 0.1, rtol=1e-12)
    assert np.all(diff[3000:, 2] == 0)
    # ... and visible in the data: window mean minus surrounding mean, t-interval
    x = s.values[:, 2]
    gap = x[1000:3000].mean() - np.r_[x[:1000], x[3000:]].mean()
    assert abs(gap - 0.5) < Z * 0.1 * np.sqrt(1 / 2000 + 1 / 2000)
    # drift: linear ramp reaching the magnitude at the last sample
    np.testing.assert_allclose(diff[500:600, 0], -8.0 * 0.2 * np.arange(1, 101) / 100)
    # stuck: the clean reading before the window, repeated
    np.testing.assert_array_equal(s.values[300:350, 1], s.clean[299, 1])
    assert s.anomalies[0].magnitude == s.clean[299, 1]
    # spike on an AR(1) sensor: 7 sigma from the median of its neighbours
    p = s.values[:, 1]
    med = np.median(np.r_[p[2995:3000], p[3001:3006]])
    assert p[3000] - med == pytest.approx(7.0 * 0.5)


def test_clean_series_has_the_documented_noise():
    n = 100_000
    s = iot_sensors(n, anomaly_rate=0.0, seed=3)
    assert s.anomalies == ()
    assert not s.labels.any()
    np.testing.assert_array_equal(s.values, s.clean)
    t = s.timestamps
    np.testing.assert_array_equal(t, 60.0 * np.arange(n))

    # temperature: white Gaussian noise around the documented daily cycle and drift
    mean = 20.0 + 5.0 * np.sin(2 * np.pi * (t - 9 * 3600) / DAY) + 0.1 * t / DAY
    r = s.values[:, 0] - mean
    assert abs(r.mean()) < Z * 0.2 / np.sqrt(n)
    assert _chi2_ok(r, 0.2**2)

    # pressure: AR(1) with phi = 0.95 and stationary std 0.5 around 101.3 kPa
    x = s.values[:, 1] - 101.3
    innovations = x[1:] - 0.95 * x[:-1]
    assert _chi2_ok(innovations, 0.5**2 * (1 - 0.95**2))
    phi_hat = np.dot(x[1:], x[:-1]) / np.dot(x[:-1], x[:-1])
    assert abs(phi_hat - 0.95) < Z * np.sqrt((1 - 0.95**2) / n)
    assert abs(x.std() - 0.5) < 0.02  # stationary from the first sample

    # vibration: unit-variance Student-t(5) noise, std 0.1: variance interval for a
    # heavy-tailed law (excess kurtosis 6), and its tail mass against the exact t law
    v = (s.values[:, 2] - 2.0) / 0.1
    se_var = np.sqrt(2 / (n - 1) + 6 / n)
    assert abs(v.var(ddof=1) - 1.0) < Z * se_var
    p_tail = 2 * stats.t.sf(4 / np.sqrt(3 / 5), 5)
    lo, hi = stats.binom.interval(1 - ALPHA, n, p_tail)
    assert lo <= np.sum(np.abs(v) > 4) <= hi
    assert np.sum(np.abs(v) > 4) > 20 * n * 2 * stats.norm.sf(4)  # far heavier than Gaussian


def test_noise_std_override_and_sensor_subset():
    s = iot_sensors(50_000, sensors=("vibration", "temperature"), noise_std={"temperature": 1.0},
                    anomaly_rate=0.0, drift_per_day=0.0, seed=4)  # fmt: skip
    assert s.sensors == ("vibration", "temperature")
    assert s.noise_std == (DEFAULT_NOISE_STD["vibration"], 1.0)
    t = s.timestamps
    r = s.values[:, 1] - 20.0 - 5.0 * np.sin(2 * np.pi * (t - 9 * 3600) / DAY)
    assert _chi2_ok(r, 1.0)


def test_seeded_determinism_and_independent_streams():
    a = iot_sensors(3000, seed=7)
    b = iot_sensors(3000, seed=7)
    np.testing.assert_array_equal(a.values, b.values)
    assert a.anomalies == b.anomalies
    assert not np.array_equal(a.values, iot_sensors(3000, seed=8).values)
    # the clean signal does not depend on the anomaly settings
    np.testing.assert_array_equal(a.clean, iot_sensors(3000, seed=7, anomaly_rate=0.0).clean)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_steps": 1}, "n_steps"),
        ({"sensors": ("temperature", "humidity")}, "sensors"),
        ({"sensors": ("pressure", "pressure")}, "sensors"),
        ({"sensors": ()}, "sensors"),
        ({"anomaly_rate": 1.5}, "anomaly_rate"),
        ({"sample_interval": 0.0}, "sample_interval"),
        ({"noise_std": {"temperature": -1.0}}, "noise_std"),
        ({"noise_std": {"humidity": 1.0}}, "noise_std"),
        ({"anomaly_kinds": ("spike", "glitch")}, "anomaly_kinds"),
        ({"anomaly_duration": (50, 20)}, "anomaly_duration"),
        ({"anomaly_duration": 5}, "anomaly_duration"),
        ({"anomalies": [AnomalySpec("glitch", "pressure", 5)]}, "anomalies"),
        ({"anomalies": [AnomalySpec("spike", "humidity", 5)]}, "anomalies"),
        ({"anomalies": [AnomalySpec("spike", "pressure", 5, 2)]}, "anomalies"),
        ({"anomalies": [AnomalySpec("spike", "pressure", 5, 1, 3.0)]}, "anomalies"),
        ({"anomalies": [AnomalySpec("stuck", "pressure", 0, 5)]}, "anomalies"),
        ({"anomalies": [AnomalySpec("drift", "pressure", 90, 20)]}, "anomalies"),
        ({"anomalies": [("spike", "pressure", 5)]}, "anomalies"),
        (
            {
                "anomalies": [
                    AnomalySpec("drift", "pressure", 10, 20),
                    AnomalySpec("spike", "pressure", 25),
                ]
            },
            "anomalies",
        ),
    ],
)
def test_iot_bad_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(InvalidParameterError, match=f"'{param}'"):
        iot_sensors(**{"n_steps": 100, **kwargs})


def test_degradation_reaches_the_threshold_at_the_failure_time():
    d = machine_degradation(2000, failure_time=1500, seed=5)
    assert d.health[1500] == 1.0
    assert np.all(d.health[:1500] < 1.0)
    assert np.all(d.health[1501:] > 1.0)
    assert np.all(np.diff(d.health) > 0)
    np.testing.assert_allclose(d.health[0], 0.05)
    # exponential: constant log-increments
    np.testing.assert_allclose(np.diff(np.log(d.health)), np.log(20) / 1500)
    np.testing.assert_array_equal(d.rul, np.maximum(1500 - np.arange(2000), 0))
    np.testing.assert_array_equal(d.failed, np.arange(2000) >= 1500)
    np.testing.assert_array_equal(d.timestamps, 3600.0 * np.arange(2000))
    assert d.values.shape == (2000, 3)


def test_degradation_windowed_means_increase_and_follow_the_health_index():
    d = machine_degradation(2000, seed=6)
    assert d.failure_time == 1999
    assert d.health[-1] == 1.0
    windows = d.values.reshape(10, 200, 3).mean(axis=1)
    assert np.all(np.diff(windows, axis=0) > 0)
    # channels are linear in the health index with the documented coefficients
    design = np.column_stack([np.ones(2000), d.health])
    for c, (a, b, sd) in enumerate([(1.0, 4.0, None), (45.0, 20.0, 0.5), (10.0, 3.0, 0.1)]):
        y = d.values[:, c]
        if sd is None:  # heteroscedastic vibration: weight by its known noise std
            w = 1.0 / (0.05 * (1.0 + d.health))
            coef, *_ = np.linalg.lstsq(design * w[:, None], y * w, rcond=None)
            cov = np.linalg.inv((design * w[:, None]).T @ (design * w[:, None]))
        else:
            coef, *_ = np.linalg.lstsq(design, y, rcond=None)
            cov = sd**2 * np.linalg.inv(design.T @ design)
        assert np.all(np.abs(coef - [a, b]) < Z * np.sqrt(np.diag(cov))), (c, coef)


def test_degradation_noise_free_and_censored_runs():
    d = machine_degradation(100, failure_time=300, noise_level=0.0)
    np.testing.assert_allclose(d.values[:, 2], 10.0 + 3.0 * d.health)
    assert np.all(d.health < 1.0)
    assert not d.failed.any()
    assert d.rul[-1] == 201
    a = machine_degradation(500, seed=9)
    np.testing.assert_array_equal(a.values, machine_degradation(500, seed=9).values)
    assert not np.array_equal(a.values, machine_degradation(500, seed=10).values)


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"n_steps": 1}, "n_steps"),
        ({"failure_time": 0}, "failure_time"),
        ({"initial_health": 1.0}, "initial_health"),
        ({"initial_health": 0.0}, "initial_health"),
        ({"threshold": -1.0}, "threshold"),
        ({"noise_level": -0.1}, "noise_level"),
        ({"sample_interval": 0}, "sample_interval"),
    ],
)
def test_degradation_bad_parameters_name_the_parameter(kwargs, param):
    with pytest.raises(InvalidParameterError, match=f"'{param}'"):
        machine_degradation(**{"n_steps": 100, **kwargs})
