"""Tests of the closed-form ridge readout against least-squares references."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError, InvalidParameterError, NotFittedError
from nqp.readout import RidgeReadout


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
