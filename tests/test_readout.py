"""Tests of the closed-form ridge readout and the online RLS readout against exact references."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError, InvalidParameterError, NotFittedError
from nqp.readout import RidgeReadout, RLSReadout, RLSState, _rls_update, _surely_finite


def augmented_lstsq(x: np.ndarray, y: np.ndarray, alpha: float, intercept: bool):
    """Ridge as least squares on [X 1; sqrt(alpha) I 0] [w; b] = [y; 0] (b unpenalised)."""
    n, d = x.shape
    y2 = y[:, None] if y.ndim == 1 else y
    a = np.hstack([x, np.ones((n, 1))]) if intercept else x
    pen = np.sqrt(alpha) * np.eye(d, a.shape[1])
    sol, *_ = np.linalg.lstsq(np.vstack([a, pen]), np.vstack([y2, np.zeros((d, y2.shape[1]))]))
    w = sol[:d]
    b = sol[d] if intercept else np.zeros(y2.shape[1])
    return w, b


@pytest.fixture
def data(rng):
    x = rng.normal(size=(60, 7)) + rng.normal(size=7)  # non-zero column means
    y = rng.normal(size=(60, 3))
    return x, y


@pytest.mark.parametrize("alpha", [0.0, 1e-3, 0.7, 50.0])
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_matches_augmented_lstsq(data, alpha: float, fit_intercept: bool) -> None:
    x, y = data
    r = RidgeReadout(alpha=alpha, fit_intercept=fit_intercept).fit(x, y)
    w, b = augmented_lstsq(x, y, alpha, fit_intercept)
    np.testing.assert_allclose(r.coef_, w.T, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(r.intercept_, b, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(r.predict(x), x @ w + b, rtol=1e-9, atol=1e-10)


def test_one_dimensional_target_and_multi_output_agree(data) -> None:
    x, y = data
    multi = RidgeReadout(alpha=0.1).fit(x, y)
    for k in range(3):
        one = RidgeReadout(alpha=0.1).fit(x, y[:, k])
        assert one.coef_.shape == (7,)
        assert isinstance(one.intercept_, float)
        np.testing.assert_allclose(one.coef_, multi.coef_[k], rtol=1e-12)
        np.testing.assert_allclose(one.predict(x), multi.predict(x)[:, k], rtol=1e-12)


def test_alpha_to_zero_is_ordinary_least_squares(data) -> None:
    x, y = data
    ols, *_ = np.linalg.lstsq(np.hstack([x, np.ones((60, 1))]), y)
    for alpha in (0.0, 1e-12):
        r = RidgeReadout(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(r.coef_, ols[:7].T, rtol=1e-8)
        np.testing.assert_allclose(r.intercept_, ols[7], rtol=1e-8)


def test_recovers_exact_linear_map_and_float32_features(rng) -> None:
    x = rng.normal(size=(200, 5)).astype(np.float32)
    w = rng.normal(size=(5, 2))
    y = x.astype(np.float64) @ w + np.array([0.5, -2.0])
    r = RidgeReadout(alpha=0.0).fit(x, y)
    np.testing.assert_allclose(r.coef_, w.T, atol=1e-10)
    np.testing.assert_allclose(r.intercept_, [0.5, -2.0], atol=1e-10)


def test_rank_deficient_features_fall_back_to_minimum_norm(rng) -> None:
    # Duplicated column: the Gram matrix is singular, Cholesky cannot be trusted.
    base = rng.normal(size=(40, 3))
    x = np.hstack([base, base[:, :1]])
    y = base @ np.array([1.0, 2.0, 3.0]) + 0.1 * rng.normal(size=40)
    r = RidgeReadout(alpha=0.0).fit(x, y)
    xc, yc = x - x.mean(0), y - y.mean()
    minimum_norm = np.linalg.pinv(xc) @ yc
    np.testing.assert_allclose(r.coef_, minimum_norm, atol=1e-8)
    assert r.coef_[0] == pytest.approx(r.coef_[3], abs=1e-8)


def test_predict_before_fit_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        RidgeReadout().predict(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": "x"}, "alpha"),
        ({"fit_intercept": 1}, "fit_intercept"),
    ],
)
def test_bad_parameters(kwargs: dict, name: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of RidgeReadout"):
        RidgeReadout(**kwargs).fit(np.zeros((3, 2)), np.zeros(3))


def test_bad_inputs_name_the_shapes(data) -> None:
    x, y = data
    with pytest.raises(InvalidInputError, match=r"n_samples=60 like X \(60, 7\); got \(59, 3\)"):
        RidgeReadout().fit(x, y[:59])
    with pytest.raises(InvalidInputError, match="non-finite"):
        RidgeReadout().fit(np.where(x > 1, np.nan, x), y)
    r = RidgeReadout().fit(x, y)
    with pytest.raises(InvalidInputError, match=r"got shape \(2, 6\)"):
        r.predict(np.zeros((2, 6)))


# -- RLSReadout ---------------------------------------------------------------------------


def weighted_ridge(x: np.ndarray, y: np.ndarray, lam: float, delta: float) -> np.ndarray:
    """argmin sum_i lam**(n-1-i) (y_i - w.x_i)**2 + delta lam**n |w|**2, by a direct solve."""
    n, d = x.shape
    wts = lam ** np.arange(n - 1, -1, -1, dtype=np.float64)
    gram = (x * wts[:, None]).T @ x + delta * lam**n * np.eye(d)
    return np.linalg.solve(gram, (x * wts[:, None]).T @ y)


def run_rls(rls: RLSReadout, x: np.ndarray, y: np.ndarray) -> RLSState:
    """Feed (n_sources, n_steps, d) features one step at a time."""
    state = rls.init_state(x.shape[0])
    for t in range(x.shape[1]):
        rls.learn(state, x[:, t], y[:, t])
    return state


def assert_states_equal(a: RLSState, b: RLSState) -> None:
    for name, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, getattr(b, name), err_msg=name)


@pytest.mark.parametrize("delta", [1e-2, 1.0, 25.0])
def test_rls_without_forgetting_equals_ridge(rng, delta: float) -> None:
    n_sources, n, d = 3, 120, 6
    x = rng.normal(size=(n_sources, n, d)) + rng.normal(size=d)
    y = rng.normal(size=(n_sources, n))
    rls = RLSReadout(n_features=d, forgetting=1.0, delta=delta)
    state = run_rls(rls, x, y)
    for s in range(n_sources):
        ref = np.linalg.solve(x[s].T @ x[s] + delta * np.eye(d), x[s].T @ y[s])
        np.testing.assert_allclose(state.w[s], ref, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(
            state.P[s], np.linalg.inv(x[s].T @ x[s] + delta * np.eye(d)), rtol=1e-8, atol=1e-12
        )
    # also after only a few updates (fewer outcomes than features)
    few = run_rls(rls, x[:, :3], y[:, :3])
    ref = np.linalg.solve(x[0, :3].T @ x[0, :3] + delta * np.eye(d), x[0, :3].T @ y[0, :3])
    np.testing.assert_allclose(few.w[0], ref, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize(("lam", "delta"), [(0.9, 1.0), (0.98, 0.1), (0.995, 3.0)])
def test_rls_with_forgetting_equals_weighted_ridge(rng, lam: float, delta: float) -> None:
    n_sources, n, d = 2, 150, 5
    x = rng.normal(size=(n_sources, n, d))
    y = x @ rng.normal(size=d) + 0.5 * rng.normal(size=(n_sources, n))
    state = run_rls(RLSReadout(n_features=d, forgetting=lam, delta=delta), x, y)
    for s in range(n_sources):
        np.testing.assert_allclose(
            state.w[s], weighted_ridge(x[s], y[s], lam, delta), rtol=1e-8, atol=1e-10
        )
    assert state.count.tolist() == [n, n]


def test_rls_batched_equals_per_source(rng) -> None:
    """Stepping random subsets of sources together (gather/step/scatter) is bitwise identical
    to stepping every source alone."""
    n_sources, n, d = 7, 60, 4
    x = rng.normal(size=(n_sources, n, d))
    y = rng.normal(size=(n_sources, n))
    rls = RLSReadout(n_features=d, forgetting=0.97, delta=0.5)
    alone = [run_rls(rls, x[s : s + 1], y[s : s + 1]) for s in range(n_sources)]
    store = rls.init_state(n_sources)
    steps = np.zeros(n_sources, dtype=int)
    while (steps < n).any():
        pending = np.flatnonzero(steps < n)
        rows = rng.choice(pending, size=rng.integers(1, pending.size + 1), replace=False)
        batch = store.take(rows)
        rls.learn(batch, x[rows, steps[rows]], y[rows, steps[rows]])
        store.put(rows, batch)
        steps[rows] += 1
    assert_states_equal(store, RLSState.concat(alone))
    xq = rng.normal(size=(n_sources, d))
    mean, scale = rls.predict(store, xq)
    for s in range(n_sources):
        m1, s1 = rls.predict(alone[s], xq[s : s + 1])
        assert (m1[0], s1[0]) == (mean[s], scale[s])


@pytest.mark.parametrize("chunk", [1, 2, 7, 50, 200])
def test_rls_learn_many_in_chunks_equals_sequential(rng, chunk: int) -> None:
    n_sources, n, d = 3, 50, 4
    x = rng.normal(size=(n_sources, n, d))
    y = rng.normal(size=(n_sources, n))
    rls = RLSReadout(n_features=d, forgetting=0.99)
    chunked = rls.init_state(n_sources)
    for start in range(0, n, chunk):
        rls.learn_many(chunked, x[:, start : start + chunk], y[:, start : start + chunk])
    assert_states_equal(chunked, run_rls(rls, x, y))


def test_rls_forgetting_tracks_a_drifting_coefficient(rng) -> None:
    n, d = 3000, 3
    t = np.arange(n)
    w_true = np.stack([np.sin(2 * np.pi * t / 600), np.ones(n), 0.5 * np.cos(2 * np.pi * t / 900)])
    x = rng.normal(size=(n, d))
    y = (x * w_true.T).sum(axis=1) + 0.1 * rng.normal(size=n)
    errors = {}
    for lam in (1.0, 0.97):
        rls = RLSReadout(n_features=d, forgetting=lam)
        state = rls.init_state(1)
        sq = []
        for i in range(n):
            mean, _ = rls.predict(state, x[i : i + 1])
            sq.append((y[i] - mean[0]) ** 2)
            rls.learn(state, x[i : i + 1], y[i : i + 1])
        errors[lam] = float(np.mean(sq[200:]))
    # the noise floor is 0.01; without forgetting the fit averages the sine away
    assert errors[0.97] < 0.25 * errors[1.0]
    assert errors[0.97] < 0.1


def test_rls_scale_matches_noise_std_and_intervals_cover(rng) -> None:
    n, d, sigma = 4000, 4, 0.3
    x = np.hstack([rng.normal(size=(n, d - 1)), np.ones((n, 1))])
    y = x @ np.array([0.8, -0.4, 0.2, 1.5]) + sigma * rng.normal(size=n)
    for lam, tol in ((1.0, 0.05), (0.995, 0.15)):
        rls = RLSReadout(n_features=d, forgetting=lam)
        state = rls.init_state(1)
        z = []
        for i in range(n):
            mean, scale = rls.predict(state, x[i : i + 1])
            z.append((y[i] - mean[0]) / scale[0])
            rls.learn(state, x[i : i + 1], y[i : i + 1])
        _, scale = rls.predict(state, x[:1])
        assert scale[0] == pytest.approx(sigma, rel=tol)
        inside = np.abs(np.array(z[500:])) < 1.959964
        assert 0.93 < inside.mean() < 0.97


def test_rls_prior_scale_before_and_during_warm_up() -> None:
    rls = RLSReadout(n_features=3, forgetting=0.9, delta=2.0, prior_scale=0.5, prior_weight=4.0)
    state = rls.init_state(2)
    x = np.array([[1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
    mean, scale = rls.predict(state, x)
    np.testing.assert_array_equal(mean, [0.0, 0.0])
    np.testing.assert_allclose(scale, 0.5 * np.sqrt(1 + np.array([9.0, 0.0]) / (2.0 * 0.9)))
    # a noiseless stream with zero targets: the residual estimate decays but never reaches 0
    for _ in range(20000):
        rls.learn(state, x, [0.0, 0.0])
    _, scale = rls.predict(state, x)
    assert np.all(np.isfinite(scale))
    assert np.all(scale > 0)
    # the residual weight follows W_t = mu W_{t-1} + 1 from W_0 = prior_weight
    np.testing.assert_allclose(state.resid_weight, 1 / (1 - 0.9), rtol=1e-12)


def test_rls_variance_cap_keeps_unexcited_directions_finite(rng) -> None:
    """With lambda = 0.9 the unexcited variance grows as 0.9**-t and overflows near
    t = 6700; the cap keeps P finite and the excited weight still converges."""
    n, d = 8000, 2
    x = np.zeros((1, n, d))
    x[0, :, 0] = rng.normal(size=n)  # feature 1 is never excited
    y = 3.0 * x[..., 0]
    capped = RLSReadout(n_features=d, forgetting=0.9, delta=1.0, variance_cap=100.0)
    state = capped.init_state(1)
    capped.learn_many(state, x, y)
    assert np.isfinite(state.P).all()
    assert state.P[0, 1, 1] == pytest.approx(100.0, rel=1e-12)  # variance_cap / delta
    assert state.w[0, 0] == pytest.approx(3.0, abs=1e-12)
    # the excited direction keeps forgetting: its variance is the uncapped one, ~(1-lam)/E[x^2]
    reference = RLSReadout(n_features=1, forgetting=0.9, delta=1.0, variance_cap=None)
    ref_state = reference.init_state(1)
    reference.learn_many(ref_state, x[:, :, :1], y)
    assert state.P[0, 0, 0] == pytest.approx(ref_state.P[0, 0, 0], rel=1e-6)
    np.testing.assert_array_equal(state.P[0], state.P[0].T)
    uncapped = RLSReadout(n_features=d, forgetting=0.9, delta=1.0, variance_cap=None)
    state = uncapped.init_state(1)
    before = state.copy()
    with pytest.raises(InvalidInputError, match="overflowed"):
        uncapped.learn_many(state, x, y)
    assert_states_equal(state, before)  # the whole block was rejected


@pytest.mark.parametrize("variance_cap", [1e4, 3.0])  # 3.0: the cap fixes P on most steps
def test_rls_learn_predict_is_bitwise_learn_then_predict(rng, variance_cap: float) -> None:
    n_sources, n, d = 5, 80, 6
    x = rng.normal(size=(n_sources, n + 1, d)) * np.array([1.0, 1e-3, 10.0, 1.0, 0.0, 1.0])
    y = rng.normal(size=(n_sources, n))
    rls = RLSReadout(n_features=d, forgetting=0.9, delta=0.5, variance_cap=variance_cap)
    fused, apart = rls.init_state(n_sources), rls.init_state(n_sources)
    for t in range(n):
        got = rls.learn_predict(fused, x[:, t], y[:, t], x[:, t + 1])
        rls.learn(apart, x[:, t], y[:, t])
        want = rls.predict(apart, x[:, t + 1])
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert_states_equal(fused, apart)
    if variance_cap == 3.0:  # the cap was engaged (the unexcited feature 4 sits at it)
        assert fused.P[0, 4, 4] == pytest.approx(variance_cap / 0.5, rel=1e-12)
    before = fused.copy()
    with pytest.raises(InvalidInputError, match="overflowed"):
        rls.learn_predict(fused, np.full((n_sources, d), 1e200), y[:, 0], x[:, 0])
    with pytest.raises(InvalidInputError, match=r"X has 5 features"):
        rls.learn_predict(fused, x[:, 0], y[:, 0], x[:, 0, :5])
    assert_states_equal(fused, before)


@pytest.mark.parametrize("variance_cap", [1e4, 3.0])
def test_rls_row_by_row_update_is_bitwise_the_checked_two_pass_update(
    rng, variance_cap: float
) -> None:
    """The fast order (each row prepared then applied) changes no bit of any row."""
    n_sources, n, d = 7, 60, 6
    x = rng.normal(size=(n, n_sources, d)) * np.array([1.0, 1e-3, 10.0, 1.0, 0.0, 1.0])
    y = rng.normal(size=(n, n_sources))
    rls = RLSReadout(n_features=d, forgetting=0.9, delta=0.5, variance_cap=variance_cap)
    fast, checked = rls.init_state(n_sources), rls.init_state(n_sources)
    p_max = variance_cap / 0.5
    every = np.arange(n_sources)
    for t in range(n - 1):
        assert _surely_finite(
            fast.w, fast.P, fast.resid_var, fast.resid_weight, x[t], y[t], 0.9, every
        )
        got = _rls_update(
            fast.w,
            fast.P,
            fast.resid_var,
            fast.resid_weight,
            x[t],
            y[t],
            0.9,
            0.9,
            p_max,
            x[t + 1],
            every,
        )
        want = _rls_update(
            checked.w,
            checked.P,
            checked.resid_var,
            checked.resid_weight,
            x[t],
            y[t],
            0.9,
            0.9,
            p_max,
            x[t + 1],
            every,
            row_by_row=False,
        )
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    for name in ("w", "P", "resid_var", "resid_weight"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(checked, name))


def test_rls_huge_but_finite_inputs_take_the_checked_order(rng) -> None:
    """Inputs past the cheap bounds still update (checked first), and the same way."""
    rls = RLSReadout(n_features=3, forgetting=0.99)
    state = rls.init_state(2)
    x = np.array([[1e55, 0.0, 1.0], [1.0, 2.0, 3.0]])
    y = np.array([1.0, -1.0])
    both = np.arange(2)
    assert not _surely_finite(
        state.w, state.P, state.resid_var, state.resid_weight, x, y, 0.99, both
    )
    reference = state.copy()
    rls.learn(state, x, y)
    _rls_update(
        reference.w,
        reference.P,
        reference.resid_var,
        reference.resid_weight,
        x,
        y,
        0.99,
        0.99,
        1e4,
        np.empty((0, 3)),
        both,
        row_by_row=False,
    )
    assert np.isfinite(state.P).all()
    assert np.isfinite(state.w).all()
    for name in ("w", "P", "resid_var", "resid_weight"):
        np.testing.assert_array_equal(getattr(state, name), getattr(reference, name))


def test_rls_rows_update_in_place_exactly_as_gathered_rows(rng) -> None:
    """learn / predict / learn_predict on state rows equal gather, step, scatter back."""
    n_state, d = 9, 5
    rls = RLSReadout(n_features=d, forgetting=0.95, variance_cap=50.0)
    in_place, gathered = rls.init_state(n_state), rls.init_state(n_state)
    for t in range(40):
        rows = rng.permutation(n_state)[: rng.integers(1, n_state + 1)]
        x, x_next = rng.normal(size=(2, rows.size, d))
        y = rng.normal(size=rows.size)
        sub = gathered.take(rows)
        if t % 3 == 0:
            got = rls.learn_predict(in_place, x, y, x_next, rows=rows)
            want = rls.learn_predict(sub, x, y, x_next)
        elif t % 3 == 1:
            rls.learn(in_place, x, y, rows=rows)
            rls.learn(sub, x, y)
            got, want = rls.predict(in_place, x_next, rows=rows), rls.predict(sub, x_next)
        else:
            got, want = rls.predict(in_place, x, rows=rows), rls.predict(sub, x)
        gathered.put(rows, sub)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    assert_states_equal(in_place, gathered)
    before = in_place.copy()
    with pytest.raises(InvalidInputError, match="distinct"):
        rls.learn(in_place, np.ones((2, d)), np.ones(2), rows=[3, 3])
    with pytest.raises(InvalidInputError, match=r"rows must lie in \[0, 9\)"):
        rls.learn(in_place, np.ones((1, d)), np.ones(1), rows=[9])
    with pytest.raises(InvalidInputError, match="rows must be 2 integer indices"):
        rls.predict(in_place, np.ones((2, d)), rows=[0.0, 1.0])
    with pytest.raises(InvalidInputError, match="gather the state rows"):
        rls.predict(in_place, np.ones((2, d)))
    with pytest.raises(InvalidInputError, match=r"X must have the shape of X_learn \(2, 5\)"):
        rls.learn_predict(in_place, np.ones((2, d)), np.ones(2), np.ones((3, d)), rows=[0, 1])
    assert_states_equal(in_place, before)


def test_rls_P_stays_exactly_symmetric(rng) -> None:
    x = rng.normal(size=(2, 300, 5)) * np.array([1.0, 1e-3, 10.0, 1.0, 1e2])
    state = run_rls(
        RLSReadout(n_features=5, forgetting=0.95, delta=1e-3), x, rng.normal(size=(2, 300))
    )
    np.testing.assert_array_equal(state.P, state.P.transpose(0, 2, 1))
    assert np.all(np.linalg.eigvalsh(state.P) > 0)


def test_rls_rejects_non_finite_and_leaves_state_unchanged(rng) -> None:
    rls = RLSReadout(n_features=3)
    state = rls.init_state(2)
    rls.learn(state, rng.normal(size=(2, 3)), rng.normal(size=2))
    before = state.copy()
    x_bad = rng.normal(size=(2, 3))
    x_bad[1, 2] = np.nan
    with pytest.raises(InvalidInputError, match=r"X contains 1 non-finite.*\(1, 2\)"):
        rls.learn(state, x_bad, [0.0, 1.0])
    with pytest.raises(InvalidInputError, match="y contains 1 non-finite"):
        rls.learn(state, np.ones((2, 3)), [np.inf, 1.0])
    with pytest.raises(InvalidInputError, match="non-finite"):
        rls.learn_many(state, np.ones((2, 4, 3)), np.where(np.eye(2, 4) > 0, np.nan, 0.0))
    with pytest.raises(InvalidInputError, match="non-finite"):
        rls.predict(state, x_bad)
    with pytest.raises(InvalidInputError, match="overflowed"):  # finite but overflowing
        rls.learn(state, np.full((2, 3), 1e200), [0.0, 0.0])
    assert_states_equal(state, before)


def test_rls_shape_errors_name_the_shapes() -> None:
    rls = RLSReadout(n_features=3)
    state = rls.init_state(2)
    with pytest.raises(InvalidInputError, match=r"n_features=3; got shape \(2, 4\)"):
        rls.learn(state, np.zeros((2, 4)), np.zeros(2))
    with pytest.raises(InvalidInputError, match=r"y must have shape \(2,\) .* got \(3,\)"):
        rls.learn(state, np.zeros((2, 3)), np.zeros(3))
    with pytest.raises(InvalidInputError, match=r"shape \(2, 3\).*X has shape \(5, 3\)"):
        rls.predict(state, np.zeros((5, 3)))
    with pytest.raises(InvalidInputError, match=r"2 dimensions, got shape \(3,\)"):
        rls.predict(state, np.zeros(3))
    with pytest.raises(InvalidInputError, match=r"y must have shape \(2, 4\)"):
        rls.learn_many(state, np.zeros((2, 4, 3)), np.zeros((2, 5)))
    with pytest.raises(InvalidInputError, match="RLSState"):
        rls.predict({"w": 1}, np.zeros((2, 3)))


def test_rls_init_state_layout_and_take_put() -> None:
    rls = RLSReadout(n_features=4, delta=2.0, prior_scale=0.3)
    state = rls.init_state(5)
    assert state.w.shape == (5, 4)
    assert state.w.dtype == np.float64
    assert state.P.shape == (5, 4, 4)
    np.testing.assert_array_equal(state.P[3], np.eye(4) / 2.0)
    np.testing.assert_allclose(state.resid_var, 0.09)
    assert state.count.dtype == np.int64
    assert len(state) == 5
    assert len(rls.init_state(0)) == 0
    assert "RLSReadout(n_features=4, forgetting=0.995, delta=2.0" in repr(rls)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_features": 0}, "n_features"),
        ({"n_features": 2.0}, "n_features"),
        ({"forgetting": 0.0}, "forgetting"),
        ({"forgetting": 1.01}, "forgetting"),
        ({"delta": 0.0}, "delta"),
        ({"prior_scale": -1.0}, "prior_scale"),
        ({"prior_weight": 0.0}, "prior_weight"),
        ({"scale_forgetting": 2.0}, "scale_forgetting"),
        ({"variance_cap": 0.5}, "variance_cap"),
    ],
)
def test_rls_bad_parameters(kwargs: dict, name: str) -> None:
    params = {"n_features": 2, **kwargs}
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of RLSReadout"):
        RLSReadout(**params).init_state(1)
