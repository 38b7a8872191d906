"""The dataset registry: shapes of every dataset, errors listing options, CSV round trip."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import nqp.datasets as ds
from nqp.datasets import (
    DATASET_NAMES,
    Dataset,
    available_datasets,
    dataset_from_csv,
    load_dataset,
)
from nqp.exceptions import InvalidParameterError

GENERATED = ["mackey_glass", "lorenz", "market", "iot", "maintenance"]


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("mackey_glass", (2000,)),
        ("lorenz", (2000, 3)),
        ("market", (2000,)),
        ("iot", (2000, 3)),
        ("maintenance", (2000, 3)),
    ],
)
def test_generated_datasets_have_documented_shapes(name, shape):
    d = load_dataset(name)
    assert isinstance(d, Dataset)
    assert d.name == name
    assert d.values.shape == shape
    assert d.values.dtype == np.float64
    assert np.all(np.isfinite(d.values))
    assert len(d.channel_names) == (1 if len(shape) == 1 else shape[1])
    assert d.target.shape == (2000,)
    assert d.description
    if d.timestamps is not None:
        assert d.timestamps.shape == (2000,)
        assert np.all(np.diff(d.timestamps) > 0)
    if d.regimes is not None:
        assert d.regimes.shape == (2000,)
        assert set(np.unique(d.regimes)) <= set(range(len(d.regime_names)))
    if d.anomalies is not None:
        assert d.anomalies.dtype == np.bool_


def test_generated_datasets_carry_their_ground_truth():
    m = load_dataset("market", n_samples=800, seed=3, vol_spikes=[(100, 50, 3.0)], reversals=[400])
    assert m.regime_names == ("bull", "bear", "crisis")
    np.testing.assert_array_equal(np.flatnonzero(m.anomalies), np.r_[np.arange(100, 150), 400])
    np.testing.assert_allclose(m.values, 100 * np.exp(np.cumsum(m.extras["log_returns"][:, 0])))
    assert load_dataset("market").anomalies is None  # no events planted
    i = load_dataset("iot", n_samples=5000, seed=1)
    assert i.anomalies.any()
    assert i.channel_names == ("temperature", "pressure", "vibration")
    np.testing.assert_array_equal(i.anomalies, i.values != i.extras["clean"])
    mt = load_dataset("maintenance", n_samples=500, failure_time=400)
    assert mt.extras["health"][400] == 1.0
    assert mt.extras["rul"][0] == 400
    np.testing.assert_array_equal(mt.regimes, np.arange(500) >= 400)
    assert mt.regime_names == ("operating", "failed")
    assert load_dataset("lorenz", n_samples=10, seed=4).values.shape == (10, 3)


def test_seeded_datasets_are_reproducible():
    for name in ("lorenz", "market", "iot", "maintenance"):
        a = load_dataset(name, n_samples=300, seed=5)
        b = load_dataset(name, n_samples=300, seed=5)
        np.testing.assert_array_equal(a.values, b.values)


def test_unknown_name_lists_the_options():
    with pytest.raises(InvalidParameterError, match="Unknown dataset 'sp500'") as info:
        load_dataset("sp500")
    for name in DATASET_NAMES:
        assert name in str(info.value)


def test_unknown_keyword_lists_the_accepted_ones():
    with pytest.raises(InvalidParameterError, match=r"'market' does not take 'colour'.*n_assets"):
        load_dataset("market", colour="red")
    with pytest.raises(InvalidParameterError, match="'seed'"):
        load_dataset("mackey_glass", seed=1)  # deterministic: no seed to take
    with pytest.raises(InvalidParameterError, match="no parameters"):
        load_dataset("sunspots", n_samples=10)
    with pytest.raises(InvalidParameterError, match="'n_steps'"):
        load_dataset("iot", n_samples=1)  # forwarded to the generator's own validation


def test_available_datasets_reflect_installed_packages():
    names = available_datasets()
    assert names[:5] == GENERATED
    assert ("santa_fe_laser" in names) == (importlib.util.find_spec("reservoirpy") is not None)
    has_sm = importlib.util.find_spec("statsmodels") is not None
    assert ("sunspots" in names) == has_sm
    assert ("co2" in names) == has_sm
    assert set(names) <= set(DATASET_NAMES)


@pytest.mark.skipif(importlib.util.find_spec("statsmodels") is None, reason="needs statsmodels")
def test_packaged_statsmodels_datasets_load():
    assert load_dataset("sunspots").values.shape == (309,)
    assert load_dataset("co2").values.shape == (2284,)
    assert load_dataset("co2", missing="drop").values.shape == (2225,)


@pytest.mark.skipif(importlib.util.find_spec("reservoirpy") is None, reason="needs reservoirpy")
def test_packaged_laser_loads():
    d = load_dataset("santa_fe_laser")
    assert d.values.shape == (10093,)
    assert d.timestamps is None


def test_csv_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 2))
    t = 1_700_000_000.0 + 60.0 * np.arange(50)
    p = tmp_path / "sensors.csv"
    np.savetxt(
        p, np.column_stack([t, x]), delimiter=",", header="time,a,b", comments="", fmt="%.17g"
    )
    d = dataset_from_csv(p, time_column="time", target_channel=1)
    assert d.name == "sensors"
    np.testing.assert_array_equal(d.values, x)
    np.testing.assert_array_equal(d.timestamps, t)
    np.testing.assert_array_equal(d.target, x[:, 1])
    assert d.channel_names == ("a", "b")
    assert d.regimes is None
    assert d.anomalies is None
    one = dataset_from_csv(p, column="b", name="b-only", description="just b")
    np.testing.assert_array_equal(one.target, x[:, 1])
    assert (one.name, one.description, one.timestamps) == ("b-only", "just b", None)
    with pytest.raises(InvalidParameterError, match="'target_channel'"):
        dataset_from_csv(p, time_column="time", target_channel=2)
    with pytest.raises(InvalidParameterError, match="'target_channel'"):
        dataset_from_csv(p, target_channel=-1)


def test_package_exports_resolve():
    for public in ds.__all__:
        assert hasattr(ds, public)
    assert {"lorenz", "mackey_glass", "load_dataset", "regime_switching_gbm"} <= set(ds.__all__)
