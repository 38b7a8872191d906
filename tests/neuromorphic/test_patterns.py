"""Tests for nqp.neuromorphic.patterns: planted patterns fire, counter-examples do not."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.neuromorphic import patterns
from nqp.neuromorphic.patterns import (
    KINDS,
    EmergentState,
    PatternDetector,
    burst,
    burst_events,
    chaos_statistics,
    chaotic,
    emergent,
    poisson_burst_fraction,
    rhythmic,
    sparse,
    standing,
    synchronous,
    traveling,
)

THRESHOLD = 0.5  # the documented default threshold of every kind
SEEDS = (0, 1, 2)
RASTER_KINDS = {
    "synchronous": synchronous,
    "traveling": traveling,
    "standing": standing,
    "rhythmic": rhythmic,
    "sparse": sparse,
    "burst": burst,
}

# ---------------------------------------------------------------- seeded generators


def poisson(n_bins: int, n_neurons: int, p: float, seed: int) -> np.ndarray:
    """Independent Bernoulli(p) trains, of shape (n_bins, n_neurons)."""
    return np.random.default_rng(seed).random((n_bins, n_neurons)) < p


def volleys(n_bins: int, n_neurons: int, seed: int) -> np.ndarray:
    """Shared volleys at random times (5 %/bin), joined by 80 % of neurons, ±1 bin jitter."""
    rng = np.random.default_rng(seed)
    r = rng.random((n_bins, n_neurons)) < 0.01
    for t in np.flatnonzero(rng.random(n_bins) < 0.05):
        who = np.flatnonzero(rng.random(n_neurons) < 0.8)
        when = np.minimum(t + rng.integers(0, 2, who.size), n_bins - 1)
        r[when, who] = True
    return r


def traveling_wave(n_bins: int, n_neurons: int, seed: int, *, reverse: bool = False):
    """Rate wave moving along 8 ordered groups, 2 bins per group, period 16 bins."""
    group = np.arange(n_neurons) * 8 // n_neurons
    if reverse:
        group = 7 - group
    t = np.arange(n_bins)[:, None]
    rate = 0.6 * (1 + np.cos(2 * np.pi * (t - 2 * group[None, :]) / 16)) / 2
    return np.random.default_rng(seed).random((n_bins, n_neurons)) < rate


def standing_wave(n_bins: int, n_neurons: int, seed: int) -> np.ndarray:
    """Fixed profile sin(pi x / L) whose amplitude oscillates with period 16 bins."""
    profile = np.sin(np.pi * (np.arange(n_neurons) + 0.5) / n_neurons)
    t = np.arange(n_bins)[:, None]
    rate = 0.6 * profile[None, :] * (1 + np.cos(2 * np.pi * t / 16)) / 2
    return np.random.default_rng(seed).random((n_bins, n_neurons)) < rate


def periodic_bursts(n_bins: int, n_neurons: int, seed: int) -> np.ndarray:
    """Population bursts of 2 bins every 10 bins (participation 0.5), background 0.01."""
    on = (np.arange(n_bins) % 10) < 2
    p = np.where(on[:, None], 0.5, 0.01) * np.ones((1, n_neurons))
    return np.random.default_rng(seed).random((n_bins, n_neurons)) < p


def bursty(n_bins: int, n_neurons: int, seed: int, rate: float = 0.05) -> np.ndarray:
    """Bursts of 4 spikes in consecutive bins at random onsets; mean rate ``rate``/bin."""
    rng = np.random.default_rng(seed)
    r = np.zeros((n_bins, n_neurons), dtype=bool)
    onsets = rng.random((n_bins, n_neurons)) < rate / 4
    for k in range(4):
        r[k:] |= onsets[: n_bins - k]
    return r


def regular(n_bins: int, n_neurons: int, seed: int, period: int = 20) -> np.ndarray:
    """Clock-like spiking every ``period`` bins with random phases."""
    phase = np.random.default_rng(seed).integers(0, period, n_neurons)
    return (np.arange(n_bins)[:, None] - phase[None, :]) % period == 0


def logistic(n: int, seed: int, r: float = 4.0) -> np.ndarray:
    x = np.empty(n)
    x[0] = np.random.default_rng(seed).uniform(0.1, 0.9)
    for i in range(n - 1):
        x[i + 1] = r * x[i] * (1.0 - x[i])
    return x


# ---------------------------------------------------------------- synchronous


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_neurons", [4, 64])
def test_synchronous_fires_on_shared_volleys_not_on_independent_poisson(seed, n_neurons):
    assert synchronous(volleys(400, n_neurons, seed)) > THRESHOLD
    assert synchronous(poisson(400, n_neurons, 0.05, seed)) < 0.3


def test_synchronous_exact_cases():
    identical = np.repeat((np.arange(100) % 7 == 0)[:, None], 5, axis=1)
    assert synchronous(identical) == pytest.approx(1.0, abs=1e-12)
    # Two neurons in strict alternation are anti-correlated: below chance, strength 0.
    alternating = np.stack([np.arange(100) % 2 == 0, np.arange(100) % 2 == 1], axis=1)
    assert synchronous(alternating, smoothing=1) == 0.0
    # Silent neurons are ignored rather than diluting the measure.
    padded = np.concatenate([identical, np.zeros((100, 20), dtype=bool)], axis=1)
    assert synchronous(padded) == pytest.approx(1.0, abs=1e-12)


def test_synchronous_equals_sqrt_mean_pairwise_correlation_for_equal_variances():
    # Columns that are cyclic shifts of one train have equal variances, so the chance-
    # corrected chi^2 equals the mean pairwise correlation exactly.
    base = poisson(240, 1, 0.2, 7)[:, 0]
    cols = np.stack([np.roll(base, s) for s in (0, 1, 3, 6)], axis=1)
    c = np.corrcoef(cols.T.astype(float))
    mean_rho = c[np.triu_indices(4, 1)].mean()
    # Cyclic shifts keep each column's variance; smoothing=1 leaves traces unfiltered.
    assert synchronous(cols, smoothing=1) == pytest.approx(math.sqrt(max(mean_rho, 0)))


# ---------------------------------------------------------------- traveling / standing


@pytest.mark.parametrize("seed", SEEDS)
def test_traveling_wave_is_traveling_not_standing(seed):
    for reverse in (False, True):
        wave = traveling_wave(400, 64, seed, reverse=reverse)
        assert traveling(wave) > THRESHOLD
        assert standing(wave) < 0.2


@pytest.mark.parametrize("seed", SEEDS)
def test_standing_wave_is_standing_not_traveling(seed):
    wave = standing_wave(400, 64, seed)
    assert standing(wave) > THRESHOLD
    assert traveling(wave) < 0.2


@pytest.mark.parametrize("seed", SEEDS)
def test_waves_do_not_fire_on_poisson_or_aperiodic_volleys(seed):
    noise = poisson(400, 64, 0.05, seed)
    assert traveling(noise) < 0.2
    assert standing(noise) < 0.2
    shared = volleys(400, 64, seed)  # rank 1 in space-time, but not periodic
    assert traveling(shared) < 0.2
    assert standing(shared) < THRESHOLD


def test_traveling_needs_two_groups():
    with pytest.raises(InvalidParameterError, match="'n_groups' parameter of traveling"):
        traveling(np.zeros((50, 8)), n_groups=1)
    assert traveling(np.ones((50, 1))) == 0.0  # one neuron: one group, no lag to measure


# ---------------------------------------------------------------- chaotic


@pytest.mark.parametrize("seed", SEEDS)
def test_logistic_map_is_chaotic_sine_and_noise_are_not(seed):
    rng = np.random.default_rng(seed)
    assert chaotic(logistic(500, seed)) > THRESHOLD
    assert chaotic(np.sin(0.37 * np.arange(500) + seed)) < 0.1
    assert chaotic(rng.normal(size=500)) < 0.1
    assert chaotic(np.cumsum(rng.normal(size=500))) < 0.1  # random walk: no determinism


def test_chaos_statistics_recovers_logistic_lyapunov_exponent():
    lyap, det = chaos_statistics(logistic(1000, 3))
    assert lyap == pytest.approx(math.log(2.0), abs=0.03)  # exact value: ln 2
    assert det > 0.99
    lyap_sine, det_sine = chaos_statistics(np.sin(0.37 * np.arange(1000)))
    assert abs(lyap_sine) < 0.02
    assert det_sine > 0.99
    _, det_noise = chaos_statistics(np.random.default_rng(3).normal(size=1000))
    assert det_noise == 0.0  # sensitive-looking, but not deterministic


def test_chaotic_batched_matches_rows_and_rejects_nan():
    rows = np.stack([logistic(300, 0), np.sin(0.2 * np.arange(300))])
    np.testing.assert_array_equal(chaotic(rows), [chaotic(rows[0]), chaotic(rows[1])])
    bad = logistic(300, 0)
    bad[17] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        chaotic(bad)
    with pytest.raises(InvalidInputError, match="non-finite"):
        chaos_statistics(np.r_[bad, np.inf])
    assert chaotic(np.full(300, 2.5)) == 0.0  # constant
    assert chaotic(logistic(20, 0)) == 0.0  # too short for embedding + Theiler window


# ---------------------------------------------------------------- emergent


def _familiar_regime(n_steps: int, n_sources: int, seed: int) -> np.ndarray:
    """States cycling through 5 fixed patterns plus small noise: (n_steps, n_sources, 16)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, 16))
    noise = 0.1 * rng.normal(size=(n_steps, n_sources, 16))
    return centres[np.arange(n_steps) % 5][:, None, :] + noise


@pytest.mark.parametrize("seed", SEEDS)
def test_emergent_fires_on_novel_state_not_on_familiar_regime(seed):
    states = _familiar_regime(300, 3, seed)
    state = EmergentState.zeros(3, 16)
    strengths = np.array([emergent(x, state) for x in states])
    assert strengths[:20].max() == 0.0  # warm-up: no history yet
    assert strengths[20:].max() < THRESHOLD
    novel = states[0].copy()
    novel[1] += 5.0  # a jump to a never-seen state in source 1 only
    s = emergent(novel, state)
    assert s[1] > THRESHOLD
    assert s[0] < THRESHOLD
    assert s[2] < THRESHOLD


def test_emergent_novelty_fades_when_the_new_state_persists():
    state = EmergentState.zeros(1, 4)
    for t in range(100):
        state.update(np.full((1, 4), float(t % 3)))
    first = state.update(np.full((1, 4), 30.0))[0]
    later = [state.update(np.full((1, 4), 30.0))[0] for _ in range(300)]
    assert first > THRESHOLD
    assert later[-1] < 0.1


def test_emergent_rows_gather_scatter_equals_separate_states():
    states = _familiar_regime(60, 4, 5)
    whole = EmergentState.zeros(4, 16)
    parts = [EmergentState.zeros(1, 16) for _ in range(4)]
    for t, x in enumerate(states):
        rows = np.array([3, 1]) if t % 2 else np.array([0, 2, 1, 3])
        got = whole.update(x[rows], rows)
        want = [parts[r].update(x[r : r + 1])[0] for r in rows]
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-15)
    for r in range(4):
        np.testing.assert_allclose(whole.take([r]).mean, parts[r].mean, atol=1e-15)
        np.testing.assert_allclose(whole.take([r]).var, parts[r].var, atol=1e-15)


def test_emergent_exact_running_moments_before_halflife():
    x = np.random.default_rng(0).normal(size=(10, 1, 3))
    state = EmergentState.zeros(1, 3)
    for row in x:
        state.update(row, halflife=1e9)
    np.testing.assert_allclose(state.mean[0], x[:, 0].mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state.var[0], x[:, 0].var(axis=0), rtol=1e-12)
    assert state.count.tolist() == [10]


def test_emergent_rejects_bad_input_without_touching_state():
    state = EmergentState.zeros(3, 2)
    state.update(np.ones((3, 2)))
    before = state.copy()
    bad_calls = [
        (np.ones((2, 2)), [0, 0]),  # repeated rows
        (np.ones((2, 2)), [0, 3]),  # out of range
        (np.ones((2, 3)), [0, 1]),  # wrong feature count
        (np.ones((2, 2)), None),  # batch != n_sources without rows
        (np.array([[1.0, np.nan], [0.0, 0.0]]), [0, 1]),
    ]
    for features, rows in bad_calls:
        with pytest.raises(InvalidInputError):
            state.update(features, rows)
        for name, arr in before.arrays().items():
            np.testing.assert_array_equal(getattr(state, name), arr)
    with pytest.raises(InvalidInputError, match="EmergentState"):
        emergent(np.ones((3, 2)), state={"mean": 0})


# ---------------------------------------------------------------- rhythmic


@pytest.mark.parametrize("seed", SEEDS)
def test_periodic_bursts_are_rhythmic_poisson_is_not(seed):
    assert rhythmic(periodic_bursts(400, 64, seed)) > THRESHOLD
    # Poisson at the same mean rate (0.2 * 0.5 + 0.8 * 0.01 = 0.108 per bin).
    assert rhythmic(poisson(400, 64, 0.108, seed)) < 0.3


def test_rhythmic_sinusoidal_rate_scores_one_and_constant_scores_zero():
    t = np.arange(256)
    counts = np.rint(10 * (1 + np.sin(2 * np.pi * t / 16)))[:, None]
    assert rhythmic(counts) > 0.99
    assert rhythmic(np.ones((256, 8))) == 0.0


def test_a_windows_score_does_not_depend_on_the_windows_beside_it():
    """The no-variance tolerance scales with each window's own values, not the batch's."""
    t = np.arange(256)
    rate = (1 + np.sin(2 * np.pi * t / 16))[:, None]
    small, huge = 1e-6 * rate, 1e12 * rate
    alone = rhythmic(small)
    assert alone > 0.99
    together = rhythmic(np.stack([small, huge]))  # batched products: equal to rounding
    assert together[0] == pytest.approx(alone, rel=1e-12)  # it was 0 beside the huge window
    assert together[1] == pytest.approx(rhythmic(huge), rel=1e-12)
    wide_small, wide_huge = np.tile(small, (1, 16)), np.tile(huge, (1, 16))
    assert standing(wide_small) > 0.5
    assert standing(np.stack([wide_small, wide_huge]))[0] == pytest.approx(
        standing(wide_small), rel=1e-12
    )


# ---------------------------------------------------------------- sparse


@pytest.mark.parametrize("seed", SEEDS)
def test_few_active_neurons_are_sparse_dense_activity_is_not(seed):
    few = np.zeros((400, 100), dtype=bool)
    few[:, :5] = poisson(400, 5, 0.3, seed)
    assert sparse(few) > THRESHOLD
    assert sparse(poisson(400, 100, 0.3, seed)) < 0.05


@pytest.mark.parametrize(("n_neurons", "k"), [(16, 1), (16, 4), (100, 9), (7, 7)])
def test_sparse_matches_hoyer_closed_form(n_neurons, k):
    r = np.zeros((50, n_neurons))
    r[:, :k] = 1.0
    expected = (math.sqrt(n_neurons) - math.sqrt(k)) / (math.sqrt(n_neurons) - 1.0)
    assert sparse(r) == pytest.approx(expected, abs=1e-12)


# ---------------------------------------------------------------- burst


@pytest.mark.parametrize("seed", SEEDS)
def test_planted_bursts_fire_regular_and_poisson_at_same_rate_do_not(seed):
    planted = bursty(1000, 32, seed)
    rate = planted.mean()
    assert 0.035 < rate < 0.065
    assert burst(planted) > THRESHOLD
    assert burst(poisson(1000, 32, float(rate), seed)) < 0.2
    assert burst(regular(1000, 32, seed)) == 0.0


def test_burst_events_order_does_not_matter():
    r = bursty(500, 12, 4) | poisson(500, 12, 0.02, 4)
    t, n = np.nonzero(r)
    times, ids = t.astype(float), n
    expected = burst_events(times, ids)
    assert expected == burst(r)
    assert expected > 0.0
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(times.size)
        assert burst_events(times[perm], ids[perm]) == expected
    # Continuous times in another unit, also shuffled.
    jitter = np.random.default_rng(1).uniform(0.0, 0.1, times.size)
    ms = (times + jitter) * 2.5
    perm = rng.permutation(times.size)
    assert burst_events(ms[perm], ids[perm]) == burst_events(ms, ids)


def test_poisson_burst_fraction_closed_form_and_simulation():
    k, ratio = 3, 0.25
    q = 1.0 - math.exp(-ratio)
    lengths = np.arange(1, 2000)
    pmf = q ** (lengths - 1) * (1 - q)
    series = (lengths * pmf)[lengths >= k].sum() / (lengths * pmf).sum()
    assert poisson_burst_fraction(k, ratio) == pytest.approx(series, rel=1e-12)
    # A long Poisson train: the measured burst fraction sits at the chance level.
    isi = np.random.default_rng(2).exponential(1.0, 200_000)
    times = np.cumsum(isi)
    assert burst_events(times, np.zeros(times.size, dtype=int)) < 0.01


def test_burst_event_input_errors():
    with pytest.raises(InvalidInputError, match="shape of times"):
        burst_events([1.0, 2.0], [0])
    with pytest.raises(InvalidInputError, match="integers"):
        burst_events([1.0, 2.0], [0.0, 1.0])
    with pytest.raises(InvalidInputError, match="non-finite"):
        burst_events([1.0, np.nan], [0, 0])
    assert burst_events([], np.array([], dtype=int)) == 0.0


# ---------------------------------------------------------------- all kinds


@settings(max_examples=60, deadline=None)
@given(
    hnp.arrays(
        dtype=bool,
        shape=st.tuples(st.integers(1, 3), st.integers(0, 70), st.integers(0, 12)),
        elements=st.booleans(),
    )
)
def test_strengths_are_finite_and_within_unit_interval(raster):
    for kind, fn in RASTER_KINDS.items():
        s = fn(raster)
        assert s.shape == (raster.shape[0],), kind
        assert np.all(np.isfinite(s)), kind
        assert np.all((s >= 0.0) & (s <= 1.0)), kind
    series = raster.sum(axis=2).astype(float)
    c = chaotic(series)
    assert np.all((c >= 0.0) & (c <= 1.0))


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(dtype=np.float64, shape=st.integers(0, 200), elements=st.floats(-1e6, 1e6)))
def test_chaotic_within_unit_interval_for_any_finite_series(series):
    assert 0.0 <= chaotic(series) <= 1.0


@pytest.mark.parametrize("shape", [(100, 16), (0, 16), (50, 0), (1, 1)])
def test_empty_raster_gives_zero_everywhere(shape):
    empty = np.zeros(shape, dtype=bool)
    for kind, fn in RASTER_KINDS.items():
        assert fn(empty) == 0.0, kind
    det = PatternDetector()
    state = det.new_state(1, shape[1]) if shape[1] else None
    if state is None:
        det = PatternDetector(kinds=[k for k in KINDS if k != "emergent"])
    report = det.detect(empty[None], state=state)
    for kind in report.kinds:
        assert report.strength[kind].tolist() == [0.0], kind
        assert not report.detected[kind][0]


def test_batched_equals_per_window_and_calls_are_deterministic():
    batch = np.stack(
        [
            volleys(300, 32, 0),
            traveling_wave(300, 32, 1),
            bursty(300, 32, 2),
            poisson(300, 32, 0.1, 3),
        ]
    )
    for kind, fn in RASTER_KINDS.items():
        together = fn(batch)
        alone = [fn(w) for w in batch]
        np.testing.assert_allclose(together, alone, rtol=0, atol=1e-12, err_msg=kind)
        np.testing.assert_array_equal(fn(batch), together, err_msg=kind)


def test_raster_input_errors():
    with pytest.raises(InvalidInputError, match="shape"):
        synchronous(np.zeros(10))
    with pytest.raises(InvalidInputError, match=">= 0"):
        sparse(-np.ones((5, 3)))
    with pytest.raises(InvalidInputError, match="non-finite"):
        rhythmic(np.full((5, 3), np.nan))


# ---------------------------------------------------------------- PatternDetector


def _mixed_batch() -> tuple[np.ndarray, np.ndarray]:
    raster = np.stack([poisson(400, 64, 0.05, 0), volleys(400, 64, 1)])
    series = np.stack([np.random.default_rng(2).normal(size=400), logistic(400, 3)])
    return raster, series


def test_detector_reports_every_kind_with_default_threshold():
    raster, series = _mixed_batch()
    det = PatternDetector()
    state = det.new_state(2, 64)
    report = det.detect(raster, series, state=state)
    assert report.kinds == KINDS
    assert det.thresholds_ == dict.fromkeys(KINDS, 0.5)
    assert report.to_array().shape == (2, 8)
    for kind in KINDS:
        np.testing.assert_array_equal(report.detected[kind], report.strength[kind] >= 0.5)
    assert report.detected["synchronous"].tolist() == [False, True]
    assert report.detected["chaotic"].tolist() == [False, True]
    assert report.strength["emergent"].tolist() == [0.0, 0.0]  # warming up
    assert state.count.tolist() == [1, 1]
    np.testing.assert_array_equal(report.strength["sparse"], sparse(raster))


def test_detector_is_deterministic_and_matches_functions():
    raster, series = _mixed_batch()
    kinds = ["burst", "traveling", "chaotic"]
    a = PatternDetector(kinds=kinds, max_lag=5).detect(raster, series)
    b = PatternDetector(kinds=kinds, max_lag=5).detect(raster, series)
    np.testing.assert_array_equal(a.to_array(), b.to_array())
    np.testing.assert_array_equal(a.strength["traveling"], traveling(raster, max_lag=5))
    np.testing.assert_array_equal(a.strength["chaotic"], chaotic(series))
    assert a.kinds == tuple(kinds)


def test_detector_window_thresholds_and_population_rate_default():
    raster, _ = _mixed_batch()
    det = PatternDetector(
        kinds=["synchronous", "chaotic"], thresholds={"synchronous": 0.99}, window=100
    )
    report = det.detect(raster)
    np.testing.assert_array_equal(report.strength["synchronous"], synchronous(raster[:, -100:]))
    np.testing.assert_array_equal(
        report.strength["chaotic"], chaotic(raster[:, -100:].mean(axis=2))
    )
    assert not report.detected["synchronous"].any()


def test_detector_emergent_uses_rows_and_features():
    det = PatternDetector(kinds=["emergent"], warmup=5)
    state = det.new_state(3, 2)
    raster = np.zeros((2, 10, 4), dtype=bool)
    for t in range(20):
        feats = np.array([[t % 2, 0.0], [0.0, t % 2]])
        report = det.detect(raster, state=state, rows=[2, 0], features=feats)
    assert state.count.tolist() == [20, 0, 20]
    assert report.strength["emergent"].max() < 0.5
    jump = det.detect(raster, state=state, rows=[2, 0], features=[[9.0, 9.0], [0.0, 1.0]])
    assert jump.detected["emergent"].tolist() == [True, False]


def test_detector_input_and_parameter_errors():
    raster, series = _mixed_batch()
    with pytest.raises(InvalidInputError, match="emergent"):
        PatternDetector().detect(raster, series)
    with pytest.raises(InvalidInputError, match="batch, n_bins, n_neurons"):
        PatternDetector(kinds=["sparse"]).detect(raster[0])
    bad_series = series.copy()
    bad_series[1, 5] = np.nan
    with pytest.raises(InvalidInputError, match="non-finite"):
        PatternDetector(kinds=["chaotic"]).detect(raster, bad_series)
    with pytest.raises(InvalidInputError, match="one row per raster window"):
        PatternDetector(kinds=["chaotic"]).detect(raster, series[:1])
    state = EmergentState.zeros(2, 64)
    before = state.copy()
    with pytest.raises(InvalidInputError, match="non-finite"):
        PatternDetector().detect(raster, bad_series, state=state)
    np.testing.assert_array_equal(state.count, before.count)  # rejected: state untouched
    with pytest.raises(InvalidParameterError, match="'kinds' parameter of PatternDetector"):
        PatternDetector(kinds=["synchronous", "telepathic"]).detect(raster)
    with pytest.raises(InvalidParameterError, match="'kinds' parameter"):
        PatternDetector(kinds=["sparse", "sparse"]).detect(raster)
    with pytest.raises(InvalidParameterError, match="'thresholds' parameter"):
        PatternDetector(kinds=["sparse"], thresholds={"sparse": 1.5}).detect(raster)
    with pytest.raises(InvalidParameterError, match="'window' parameter of PatternDetector"):
        PatternDetector(window=0).detect(raster)


def test_detector_init_stores_parameters_unchanged():
    kinds = ["sparse"]
    det = PatternDetector(kinds=kinds, thresholds=None, window=7)
    assert det.kinds is kinds
    assert det.get_params()["window"] == 7
    assert not hasattr(det, "kinds_")
    assert set(det.get_params()) == set(PatternDetector.__init__.__code__.co_varnames[1:12])


def test_public_names():
    assert set(patterns.__all__) == {
        "KINDS",
        "EmergentState",
        "PatternDetector",
        "PatternReport",
        "burst",
        "burst_events",
        "chaos_statistics",
        "chaotic",
        "emergent",
        "poisson_burst_fraction",
        "rhythmic",
        "sparse",
        "standing",
        "synchronous",
        "traveling",
    }
    for name in patterns.__all__:
        assert hasattr(patterns, name)
