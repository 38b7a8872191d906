"""The compiled pattern kernels against the numpy implementation they replaced.

``_patterns_reference.py`` is a frozen copy of the detectors as they were computed with
numpy reductions and a Python loop over sources. Every kind must agree with it to 1e-12
(absolute) on random rasters (rates 0.01-0.5, assorted shapes, degenerate windows) and on
planted patterns. On this machine they agree bit for bit, because the kernels add in
numpy's order; one test pins that for the engine's scan, except ``standing``, whose spatial
mode now comes from the eigendecomposition of the small Gram matrix instead of an SVD (equal
to rounding, 1e-15 here).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from nqp.neuromorphic._patterns import _kernels
from nqp.neuromorphic.patterns import (
    KINDS,
    PatternDetector,
    burst,
    chaos_statistics,
    chaotic,
    rhythmic,
    sparse,
    standing,
    synchronous,
    traveling,
)

_spec = importlib.util.spec_from_file_location(
    "_patterns_reference", Path(__file__).with_name("_patterns_reference.py")
)
assert _spec is not None
assert _spec.loader is not None
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

ATOL = 1e-12
SCAN_KINDS = tuple(k for k in KINDS if k != "emergent")
SHAPES = [
    (25, 200, 32),  # the engine's scan
    (3, 200, 32),
    (1, 200, 32),
    (4, 64, 16),
    (3, 50, 7),
    (2, 30, 12),
    (3, 100, 3),  # fewer neurons than groups
    (2, 60, 2),  # one pair of groups
    (2, 200, 1),  # one neuron
    (2, 12, 3),  # shorter than max_lag + 2 after smoothing
    (2, 3, 5),
    (2, 1, 4),
    (2, 0, 5),  # empty windows
    (2, 40, 0),
    (0, 50, 8),  # empty batch
]


def random_rasters(shape: tuple[int, int, int], seed: int) -> np.ndarray:
    """Bernoulli rasters, one rate in [0.01, 0.5] per window."""
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.01, 0.5, (shape[0], 1, 1))
    return rng.random(shape) < rates


def planted_rasters(seed: int, n_bins: int = 200, n_neurons: int = 32) -> np.ndarray:
    """One window per planted pattern, plus silent, saturated and constant windows."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_bins)[:, None]
    x = np.arange(n_neurons)[None, :]
    group = x * 8 // n_neurons
    profile = np.sin(np.pi * (x + 0.5) / n_neurons)
    windows = [
        rng.random((n_bins, n_neurons)) < 0.6 * (1 + np.cos(2 * np.pi * (t - 2 * group) / 16)) / 2,
        rng.random((n_bins, n_neurons)) < 0.6 * (1 + np.cos(2 * np.pi * (t + 2 * group) / 16)) / 2,
        rng.random((n_bins, n_neurons)) < 0.6 * profile * (1 + np.cos(2 * np.pi * t / 16)) / 2,
        (t - x // 4 * 2) % 16 < 3,  # deterministic wave: exact ties between lags
        np.repeat(t % 10 < 2, n_neurons, axis=1),  # periodic volleys
        np.zeros((n_bins, n_neurons), dtype=bool),
        np.ones((n_bins, n_neurons), dtype=bool),
        np.broadcast_to(x % 3 == 0, (n_bins, n_neurons)),  # constant in time
    ]
    volleys = rng.random((n_bins, n_neurons)) < 0.01
    for when in np.flatnonzero(rng.random(n_bins) < 0.05):
        volleys[min(when + 1, n_bins - 1), rng.random(n_neurons) < 0.8] = True
    bursty = np.zeros((n_bins, n_neurons), dtype=bool)
    for i in range(n_neurons):
        for start in rng.choice(n_bins - 4, 6, replace=False):
            bursty[start : start + 4, i] = True
    return np.stack([*windows, volleys, bursty])


def assert_matches(new: np.ndarray, old: np.ndarray, what: str) -> None:
    np.testing.assert_allclose(np.asarray(new), old, rtol=0, atol=ATOL, err_msg=what)


# ---------------------------------------------------------------- per kind


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("seed", [0, 1])
def test_raster_kinds_match_reference_on_random_rasters(shape, seed):
    raster = random_rasters(shape, seed)
    r3 = raster.astype(np.float64)
    assert_matches(synchronous(raster), ref.synchronous(r3), "synchronous")
    assert_matches(traveling(raster), ref.traveling(r3), "traveling")
    assert_matches(standing(raster), ref.standing(r3), "standing")
    assert_matches(rhythmic(raster), ref.rhythmic(r3), "rhythmic")
    assert_matches(sparse(raster), ref.sparse(r3), "sparse")
    assert_matches(burst(raster), ref.burst(r3), "burst")


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raster_kinds_match_reference_on_planted_patterns(seed):
    raster = planted_rasters(seed)
    r3 = raster.astype(np.float64)
    for name, fn in [
        ("synchronous", synchronous),
        ("traveling", traveling),
        ("standing", standing),
        ("burst", burst),
    ]:
        assert_matches(fn(raster), getattr(ref, name)(r3), name)
    # The planted patterns still fire.
    assert traveling(raster[0]) > 0.5
    assert traveling(raster[1]) > 0.5
    assert standing(raster[2]) > 0.5
    assert burst(raster[-1]) > 0.5


@pytest.mark.parametrize(
    ("n_groups", "max_lag", "smoothing"),
    [(8, 8, 3), (2, 3, 1), (3, 5, 2), (12, 1, 4), (32, 8, 1), (8, 40, 3)],
)
def test_wave_parameters_match_reference(n_groups, max_lag, smoothing):
    raster = np.concatenate([random_rasters((6, 120, 32), 3), planted_rasters(4, 120, 32)])
    r3 = raster.astype(np.float64)
    assert_matches(
        traveling(raster, n_groups=n_groups, max_lag=max_lag, smoothing=smoothing),
        ref.traveling(r3, n_groups, max_lag, smoothing),
        "traveling",
    )
    assert_matches(
        standing(raster, n_groups=n_groups, smoothing=smoothing),
        ref.standing(r3, n_groups, smoothing),
        "standing",
    )


@pytest.mark.parametrize("smoothing", [1, 2, 3, 7, 199, 200, 201])
def test_synchronous_smoothing_matches_reference(smoothing):
    raster = np.concatenate([random_rasters((5, 200, 16), 5), planted_rasters(6, 200, 16)])
    assert_matches(
        synchronous(raster, smoothing=smoothing),
        ref.synchronous(raster.astype(np.float64), smoothing),
        "synchronous",
    )


@pytest.mark.parametrize(("min_spikes", "isi_ratio"), [(3, 0.25), (2, 0.1), (4, 1.0), (5, 3.0)])
def test_burst_counts_and_parameters_match_reference(min_spikes, isi_ratio):
    rng = np.random.default_rng(7)
    counts = rng.poisson(rng.uniform(0.05, 1.0, (6, 1, 1)), (6, 150, 9)).astype(np.float64)
    counts[0] = rng.choice([0.0, 0.4, 0.5, 1.5, 2.5, 3.0], (150, 9))  # rint, half to even
    counts[1] = 0.0
    counts[1, ::37, 2] = 1.0  # too few spikes per neuron
    raster = np.concatenate([counts, planted_rasters(8, 150, 9).astype(np.float64)])
    assert_matches(
        burst(raster, min_spikes=min_spikes, isi_ratio=isi_ratio),
        ref.burst(raster, min_spikes, isi_ratio),
        "burst",
    )


# ---------------------------------------------------------------- chaotic


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"dim": 1},
        {"dim": 2, "delay": 3},
        {"dim": 9, "delay": 2, "theiler": 3},  # pairwise distance sums (dim >= 8)
        {"theiler": 0, "horizon": 2},
        {"horizon": 12},
        {"theiler": 95},  # too short for the Theiler window: 0
    ],
)
def test_chaotic_matches_reference(params):
    rng = np.random.default_rng(9)
    rates = random_rasters((8, 200, 32), 10).mean(axis=2)  # quantised: many equal distances
    x = np.empty(200)
    x[0] = 0.3
    for t in range(199):
        x[t + 1] = 4.0 * x[t] * (1.0 - x[t])
    series = np.concatenate(
        [
            rates,
            rng.normal(size=(3, 200)),
            np.cumsum(rng.normal(size=(1, 200)), axis=1),
            np.sin(0.3 * np.arange(200))[None],
            x[None],
            np.full((1, 200), 2.5),  # constant
            1e6 * rng.normal(size=(1, 200)),
        ]
    )
    kw = {"dim": 3, "delay": 1, "theiler": 10, "horizon": 6} | params
    assert_matches(chaotic(series, **params), ref.chaotic(series, **kw), "chaotic")
    for row in series[[0, 8, 13]]:
        assert_matches(chaos_statistics(row, **params), ref.chaos_statistics(row, **kw), "stats")


@pytest.mark.parametrize("n_points", [0, 1, 2, 3, 20, 28, 29, 30, 2100])
def test_chaotic_lengths_match_reference(n_points):
    """Too short for the embedding -> 0, and the k-d tree beyond 2048 reference points."""
    rng = np.random.default_rng(n_points)
    series = np.stack([rng.normal(size=n_points), np.sin(0.3 * np.arange(n_points))])
    assert_matches(chaotic(series), ref.chaotic(series), "chaotic")
    assert_matches(chaos_statistics(series[0]), ref.chaos_statistics(series[0]), "stats")


def test_nearest_neighbours_equal_the_full_scan_including_ties():
    rng = np.random.default_rng(11)
    z = np.round(rng.normal(size=(6, 300)) * 2) / 2  # few distinct values: many ties
    for dim, delay, theiler in [(3, 1, 10), (1, 1, 0), (2, 4, 3), (8, 1, 5)]:
        n_ref = 300 - (dim - 1) * delay - 6
        got = _kernels.nearest_outside(z, n_ref, dim, delay, theiler)
        for b in range(z.shape[0]):
            emb = np.stack([z[b, c * delay : c * delay + n_ref] for c in range(dim)], axis=1)
            want = ref.nearest_outside(np.ascontiguousarray(emb), theiler)
            np.testing.assert_array_equal(got[b], want)


# ---------------------------------------------------------------- detector and helpers


@pytest.mark.parametrize("batch", [1, 25, 100])
def test_detector_matches_reference_on_the_engine_scan(batch):
    raster = random_rasters((batch, 200, 32), batch)
    raster[: min(batch, 10)] = planted_rasters(batch)[: min(batch, 10)]
    got = PatternDetector(kinds=SCAN_KINDS).detect(raster)
    want = ref.detect(raster)
    for kind in SCAN_KINDS:
        assert_matches(got.strength[kind], want[kind], kind)


def test_detector_is_bit_for_bit_the_reference_on_the_engine_scan():
    """The engine feeds these strengths on; equal bits keep its predictions unchanged."""
    raster = random_rasters((40, 200, 32), 99)
    raster[:10] = planted_rasters(98)
    got = PatternDetector(kinds=SCAN_KINDS).detect(raster)
    want = ref.detect(raster)
    for kind in SCAN_KINDS:
        if kind == "standing":  # Gram eigenpairs, not an SVD: equal to rounding
            assert_matches(got.strength[kind], want[kind], kind)
        else:
            np.testing.assert_array_equal(got.strength[kind], want[kind], err_msg=kind)


def test_detector_parameters_window_and_series_match_reference():
    raster = np.concatenate([random_rasters((5, 300, 24), 12), planted_rasters(13, 300, 24)])
    series = np.random.default_rng(14).normal(size=(raster.shape[0], 300))
    params = {
        "n_groups": 6,
        "smoothing": 2,
        "max_lag": 5,
        "min_spikes": 4,
        "isi_ratio": 0.5,
        "lyapunov_scale": 0.05,
    }
    for window, s in [(None, None), (150, None), (150, series), (None, series)]:
        got = PatternDetector(kinds=SCAN_KINDS, window=window, **params).detect(raster, s)
        want = ref.detect(raster, s, window=window, **params)
        for kind in SCAN_KINDS:
            assert_matches(got.strength[kind], want[kind], kind)


def test_pairwise_sum_is_numpys_summation_order():
    """The kernels' bit-for-bit agreement rests on this copy of numpy's pairwise sum."""
    rng = np.random.default_rng(15)
    for n in [*range(40), 127, 128, 129, 200, 255, 256, 257, 1000, 4097]:
        a = rng.normal(size=n + 3) * 10.0 ** rng.uniform(-8, 8, n + 3)
        assert 0.0 + _kernels.pairwise_sum(a, 3, n) == a[3:].sum(), n


def test_boxcar_kernel_equals_numpy_cumsum_formula():
    x = np.random.default_rng(16).random((4, 50, 6)) * 3
    for width in (2, 3, 50):
        c = np.concatenate([np.zeros((4, 1, 6)), np.cumsum(x, axis=1)], axis=1)
        want = (c[:, width:] - c[:, :-width]) / width
        np.testing.assert_array_equal(_kernels.running_mean(x, width), want)


@pytest.mark.parametrize("shape", [(3, 200, 32), (2, 1, 1), (4, 7, 130)])
def test_spike_sums_equal_numpy_sums_of_a_bool_raster(shape):
    raster = np.random.default_rng(17).random(shape) < 0.3
    r3 = raster.astype(np.float64)
    per_bin, per_neuron = _kernels.spike_sums(r3)
    np.testing.assert_array_equal(per_bin, r3.sum(axis=2))
    np.testing.assert_array_equal(per_neuron, r3.sum(axis=1))
    np.testing.assert_array_equal(per_bin / shape[2], r3.mean(axis=2))


@pytest.mark.parametrize("few", [1, 2, 3])
def test_lagged_correlations_of_few_windows_equal_them_within_a_batch(few):
    """Below four windows the kernel takes them one at a time: the same sums in the same
    order, so each window's correlations equal, bit for bit, those it gets in a batch."""
    rng = np.random.default_rng(few)
    g = rng.random((8, 196, 6))
    g[:, :, 1] = 0.25  # a flat window: undefined correlations stay 0
    batch = _kernels.lagged_correlations(np.ascontiguousarray(g), 8)
    alone = _kernels.lagged_correlations(np.ascontiguousarray(g[:, :, :few]), 8)
    np.testing.assert_array_equal(alone, batch[:few])
    assert np.any(batch[:few] != 0.0)
