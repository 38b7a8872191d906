"""Tests of direction probabilities and online Platt calibration against exact references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.stats
from scipy.special import expit

from nqp.calibration import (
    PROBABILITY_CLIP,
    CalibratorState,
    OnlineCalibrator,
    direction_probability,
    fit_platt,
    platt_map,
)
from nqp.exceptions import ConvergenceError, InvalidInputError, InvalidParameterError

# -- direction_probability ------------------------------------------------------------------


def test_direction_probability_matches_scipy_norm(rng) -> None:
    mean = rng.normal(scale=3.0, size=500)
    scale = rng.uniform(0.01, 5.0, size=500)
    band = rng.uniform(0.0, 2.0, size=500)
    up, down, hold = direction_probability(mean, scale, band)
    np.testing.assert_array_equal(up, scipy.stats.norm.sf(band, loc=mean, scale=scale))
    np.testing.assert_array_equal(down, scipy.stats.norm.cdf(-band, loc=mean, scale=scale))
    ref_hold = scipy.stats.norm.cdf(band, loc=mean, scale=scale) - down
    np.testing.assert_allclose(hold, ref_hold, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(up + down + hold, 1.0, rtol=0, atol=1e-15)


def test_direction_probability_hold_far_in_a_tail_keeps_relative_accuracy() -> None:
    # mean -+30, band 1: hold = P(29 <= |Z| <= 31) ~ 1e-185, where 1 - cdf would give 0
    for mean in (-30.0, 30.0):
        _, _, hold = direction_probability(mean, 1.0, 1.0)
        ref = scipy.stats.norm.sf(29.0) - scipy.stats.norm.sf(31.0)
        assert ref > 1e-190
        assert float(hold) == pytest.approx(ref, rel=1e-10)


def test_direction_probability_broadcasts_and_zero_band() -> None:
    up, down, hold = direction_probability([[0.5], [-0.5]], [1.0, 2.0, 4.0])
    assert up.shape == down.shape == hold.shape == (2, 3)
    np.testing.assert_array_equal(hold, 0.0)
    np.testing.assert_allclose(up + down, 1.0, atol=1e-15)
    np.testing.assert_array_equal(up[0], scipy.stats.norm.sf(0.0, loc=0.5, scale=[1, 2, 4]))


def test_direction_probability_point_mass_at_zero_scale() -> None:
    up, down, hold = direction_probability([2.0, -2.0, 0.3, 1.0, -1.0], 0.0, 1.0)
    assert up.tolist() == [1.0, 0.0, 0.0, 0.0, 0.0]
    assert down.tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert hold.tolist() == [0.0, 0.0, 1.0, 1.0, 1.0]  # the band's edges belong to hold


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.nan, 1.0, 0.0), "mean contains 1 non-finite"),
        ((0.0, -1.0, 0.0), "scale must be >= 0"),
        ((0.0, 1.0, -0.1), "dead_band must be >= 0"),
        ((np.zeros(3), np.ones(2), 0.0), r"mean \(3,\), scale \(2,\)"),
    ],
)
def test_direction_probability_rejects_bad_input(args: tuple, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        direction_probability(*args)


# -- platt_map / fit_platt -------------------------------------------------------------------


def test_platt_map_identity_clipping_and_monotonicity() -> None:
    p = np.linspace(0.0, 1.0, 1001)
    ident = platt_map(p, 1.0, 0.0)
    clipped = np.clip(p, PROBABILITY_CLIP, 1 - PROBABILITY_CLIP)
    np.testing.assert_allclose(ident, clipped, rtol=1e-12)
    out = platt_map(p, 0.3, -0.7)
    assert np.isfinite(out).all()
    assert np.all(np.diff(out) > 0)
    np.testing.assert_allclose(out[1:-1], expit(0.3 * np.log(p[1:-1] / (1 - p[1:-1])) - 0.7))


def make_stream(rng, n: int, distort, spread: float = 1.5):
    """True logits t, raw probabilities distort(t), outcomes ~ Bernoulli(sigmoid(t))."""
    t = rng.normal(scale=spread, size=n)
    return t, distort(t), (rng.random(n) < expit(t)).astype(float)


@pytest.mark.parametrize("kappa", [0.0, 3.0])
def test_fit_platt_matches_scipy_minimize(rng, kappa: float) -> None:
    _, p, y = make_stream(rng, 400, lambda t: expit(2 * t + 0.5))
    wts = rng.uniform(0.2, 2.0, size=400)
    z = np.log(p / (1 - p))

    def objective(theta):
        s = theta[0] * z + theta[1]
        nll = np.where(y > 0, np.logaddexp(0, -s), np.logaddexp(0, s))
        return 0.5 * kappa * ((theta[0] - 1) ** 2 + theta[1] ** 2) + wts @ nll

    def gradient(theta):
        r = wts * (expit(theta[0] * z + theta[1]) - y)
        return kappa * (theta - [1.0, 0.0]) + np.array([r @ z, r.sum()])

    ref = scipy.optimize.minimize(
        objective, [1.0, 0.0], jac=gradient, method="BFGS", options={"gtol": 1e-10}
    ).x
    a, b = fit_platt(p, y, sample_weight=wts, prior_precision=kappa)
    np.testing.assert_allclose([a, b], ref, atol=1e-7)
    np.testing.assert_allclose(gradient(np.array([a, b])), 0.0, atol=1e-9)
    assert a == pytest.approx(0.5, abs=0.15)  # recovers sigma(2t + 0.5) -> t


def test_fit_platt_separable_without_prior_does_not_converge() -> None:
    with pytest.raises(ConvergenceError, match="separable"):
        fit_platt([0.2, 0.3, 0.7, 0.8], [0, 0, 1, 1])
    a, _ = fit_platt([0.2, 0.3, 0.7, 0.8], [0, 0, 1, 1], prior_precision=1.0)
    assert np.isfinite(a)


def test_fit_platt_rejects_bad_input() -> None:
    with pytest.raises(InvalidInputError, match="outcome must be 0 or 1"):
        fit_platt([0.2, 0.3], [0, 0.5])
    with pytest.raises(InvalidInputError, match=r"p_raw must lie in \[0, 1\]"):
        fit_platt([0.2, 1.3], [0, 1])
    with pytest.raises(InvalidInputError, match="sample_weight must be non-negative"):
        fit_platt([0.2, 0.3], [0, 1], sample_weight=[1.0, -1.0])
    with pytest.raises(InvalidParameterError, match="'prior_precision' parameter of fit_platt"):
        fit_platt([0.2, 0.3], [0, 1], prior_precision=-1.0)


# -- OnlineCalibrator ------------------------------------------------------------------------


def run_calibrator(cal: OnlineCalibrator, p: np.ndarray, y: np.ndarray) -> CalibratorState:
    """Feed (n_sources, n_steps) raw probabilities and outcomes one step at a time."""
    state = cal.init_state(p.shape[0])
    for t in range(p.shape[1]):
        cal.learn(state, p[:, t], y[:, t])
    return state


def repeat(state: CalibratorState, k: int) -> CalibratorState:
    """Source 0's map, k times (to transform k probabilities with it)."""
    return state.take(np.zeros(k, dtype=int))


def assert_states_equal(a: CalibratorState, b: CalibratorState) -> None:
    for name, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, getattr(b, name), err_msg=name)


def test_calibrator_starts_as_identity_and_is_finite_at_0_and_1() -> None:
    cal = OnlineCalibrator()
    state = cal.init_state(5)
    p = np.array([0.0, 1e-9, 0.3, 0.999, 1.0])
    out = cal.transform(state, p)
    np.testing.assert_allclose(out, [1e-6, 1e-6, 0.3, 0.999, 1 - 1e-6], rtol=1e-12)
    cal.learn(state, p, [1, 0, 1, 0, 0])  # confident misses at the clip edges
    out = cal.transform(state, p)
    assert np.isfinite(out).all()
    assert np.isfinite(state.coef).all()
    assert (state.coef[:, 0] >= cal.min_slope).all()


def test_calibrator_corrects_over_confidence(rng) -> None:
    _, p, y = make_stream(rng, 4000, lambda t: expit(2 * t))
    cal = OnlineCalibrator()
    state = run_calibrator(cal, p[None], y[None])
    assert state.coef[0, 0] == pytest.approx(0.5, abs=0.1)
    assert state.coef[0, 1] == pytest.approx(0.0, abs=0.2)
    t_new, p_new, _ = make_stream(rng, 2000, lambda t: expit(2 * t))
    err_before = np.abs(p_new - expit(t_new)).mean()
    err_after = np.abs(cal.transform(repeat(state, 2000), p_new) - expit(t_new)).mean()
    assert err_before > 0.08
    assert err_after < 0.3 * err_before


def test_calibrator_corrects_bias(rng) -> None:
    _, p, y = make_stream(rng, 4000, lambda t: expit(t + 1.0))
    cal = OnlineCalibrator(forgetting=1.0)
    state = run_calibrator(cal, p[None], y[None])
    assert state.coef[0, 0] == pytest.approx(1.0, abs=0.1)
    assert state.coef[0, 1] == pytest.approx(-1.0, abs=0.15)
    t_new, p_new, _ = make_stream(rng, 2000, lambda t: expit(t + 1.0))
    err_before = np.abs(p_new - expit(t_new)).mean()
    err_after = np.abs(cal.transform(repeat(state, 2000), p_new) - expit(t_new)).mean()
    assert err_after < 0.2 * err_before


def test_calibrator_stays_near_identity_on_calibrated_data(rng) -> None:
    _, p, y = make_stream(rng, 4000, expit)
    state = run_calibrator(OnlineCalibrator(forgetting=1.0), p[None], y[None])
    assert state.coef[0, 0] == pytest.approx(1.0, abs=0.08)
    assert state.coef[0, 1] == pytest.approx(0.0, abs=0.08)


@pytest.mark.parametrize(("lam", "kappa"), [(1.0, 10.0), (0.995, 2.0)])
def test_calibrator_tracks_the_exact_weighted_penalised_fit(rng, lam: float, kappa: float) -> None:
    """The online Laplace update approximates argmin of prior + sum lam**(n-1-i) logloss_i."""
    n = 3000
    _, p, y = make_stream(rng, n, lambda t: expit(1.6 * t - 0.4))
    state = run_calibrator(
        OnlineCalibrator(forgetting=lam, prior_precision=kappa), p[None], y[None]
    )
    wts = lam ** np.arange(n - 1, -1, -1, dtype=np.float64)
    a, b = fit_platt(p, y, sample_weight=wts, prior_precision=kappa)
    np.testing.assert_allclose(state.coef[0], [a, b], atol=0.02)


def test_calibrator_few_outcomes_barely_move_the_map(rng) -> None:
    _, p, y = make_stream(rng, 3, lambda t: expit(3 * t))
    cal = OnlineCalibrator(prior_precision=10.0)
    state = run_calibrator(cal, p[None], y[None])
    grid = np.linspace(0.05, 0.95, 19)
    moved = np.abs(cal.transform(repeat(state, 19), grid) - grid).max()
    assert moved < 0.1


def test_calibrator_batched_equals_per_source(rng) -> None:
    n_sources, n = 6, 80
    p = expit(rng.normal(scale=2.0, size=(n_sources, n)))
    y = (rng.random((n_sources, n)) < 0.5).astype(float)
    cal = OnlineCalibrator(forgetting=0.98, prior_precision=1.0)
    alone = [run_calibrator(cal, p[s : s + 1], y[s : s + 1]) for s in range(n_sources)]
    store = cal.init_state(n_sources)
    steps = np.zeros(n_sources, dtype=int)
    while (steps < n).any():
        pending = np.flatnonzero(steps < n)
        rows = rng.choice(pending, size=rng.integers(1, pending.size + 1), replace=False)
        batch = store.take(rows)
        cal.learn(batch, p[rows, steps[rows]], y[rows, steps[rows]])
        store.put(rows, batch)
        steps[rows] += 1
    assert_states_equal(store, CalibratorState.concat(alone))
    q = rng.random(n_sources)
    together = cal.transform(store, q)
    for s in range(n_sources):
        assert cal.transform(alone[s], q[s : s + 1])[0] == together[s]


def test_calibrator_slope_stays_positive_so_the_map_is_monotone(rng) -> None:
    """An anti-predictive source pushes a toward 0 but never below min_slope."""
    _, p, y = make_stream(rng, 2000, lambda t: expit(-2 * t))
    cal = OnlineCalibrator(forgetting=0.99, min_slope=0.05)
    state = run_calibrator(cal, p[None], y[None])
    assert state.coef[0, 0] == pytest.approx(0.05)
    grid = np.linspace(0.0, 1.0, 2001)
    out = cal.transform(repeat(state, grid.size), grid)
    assert np.all(np.diff(out) >= 0)
    inner = (grid >= PROBABILITY_CLIP) & (grid <= 1 - PROBABILITY_CLIP)
    assert np.all(np.diff(out[inner]) > 0)


def test_calibrator_precision_stays_symmetric_positive_definite(rng) -> None:
    _, p, y = make_stream(rng, 500, lambda t: expit(4 * t))
    state = run_calibrator(OnlineCalibrator(forgetting=0.9), p[None], y[None])
    np.testing.assert_array_equal(state.precision, state.precision.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(state.precision) > 0)
    assert state.count.tolist() == [500]


def test_calibrator_rejects_bad_input_and_leaves_state_unchanged(rng) -> None:
    cal = OnlineCalibrator()
    state = cal.init_state(3)
    cal.learn(state, [0.2, 0.6, 0.9], [0, 1, 1])
    before = state.copy()
    with pytest.raises(InvalidInputError, match="p_raw contains 1 non-finite"):
        cal.learn(state, [0.2, np.nan, 0.9], [0, 1, 1])
    with pytest.raises(InvalidInputError, match="outcome contains 1 non-finite"):
        cal.learn(state, [0.2, 0.6, 0.9], [0, np.inf, 1])
    with pytest.raises(InvalidInputError, match="outcome must be 0 or 1"):
        cal.learn(state, [0.2, 0.6, 0.9], [0, 2, 1])
    with pytest.raises(InvalidInputError, match=r"p_raw must lie in \[0, 1\]"):
        cal.learn(state, [0.2, -0.1, 0.9], [0, 1, 1])
    with pytest.raises(InvalidInputError, match=r"outcome must have shape \(3,\); got \(2,\)"):
        cal.learn(state, [0.2, 0.6, 0.9], [0, 1])
    with pytest.raises(InvalidInputError, match=r"coef of shape \(3, 2\).*got \(2,\)"):
        cal.transform(state, [0.2, 0.6])
    with pytest.raises(InvalidInputError, match="CalibratorState"):
        cal.transform(object(), [0.2, 0.6, 0.9])
    assert_states_equal(state, before)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"forgetting": 0.0}, "forgetting"),
        ({"forgetting": 1.5}, "forgetting"),
        ({"prior_precision": 0.0}, "prior_precision"),
        ({"min_slope": 0.0}, "min_slope"),
        ({"min_slope": 2.0}, "min_slope"),
    ],
)
def test_calibrator_bad_parameters(kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=f"'{name}' parameter of OnlineCalibrator"):
        OnlineCalibrator(**kwargs).init_state(1)


def test_calibrator_init_state_layout() -> None:
    cal = OnlineCalibrator(prior_precision=4.0)
    state = cal.init_state(3)
    np.testing.assert_array_equal(state.coef, [[1.0, 0.0]] * 3)
    np.testing.assert_array_equal(state.precision[1], 4.0 * np.eye(2))
    assert state.count.dtype == np.int64
    assert len(cal.init_state(0)) == 0
    assert repr(cal) == "OnlineCalibrator(forgetting=0.999, prior_precision=4.0, min_slope=0.01)"
