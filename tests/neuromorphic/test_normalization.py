"""OnlineNormalizer against offline NumPy references (plain and exponentially weighted)."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.neuromorphic.normalization import NormalizerState, OnlineNormalizer


def _offline_z(samples: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """z_t = (v_t - m_t) / s_t with m_t, s_t the weighted mean/std (ddof=0) of v_0..v_t.

    Computed from the whole history in extended precision (np.longdouble), so that its own
    rounding error is negligible next to the float64 online update's.
    """
    samples = samples.astype(np.longdouble)
    n = samples.shape[0]
    z = np.zeros_like(samples)
    for t in range(n):
        w = np.longdouble(lam) ** np.arange(t, -1, -1.0, dtype=np.longdouble)  # lam**(t - i)
        hist = samples[: t + 1]
        if lam == 1.0:
            m, s = hist.mean(axis=0), hist.std(axis=0)
        else:
            m = (w[:, None] * hist).sum(axis=0) / w.sum()
            s = np.sqrt((w[:, None] * (hist - m) ** 2).sum(axis=0) / w.sum())
        z[t] = np.where(s > 0, (samples[t] - m) / np.where(s > 0, s, 1.0), 0.0)
    return z.astype(np.float64)


# z of a level 100 with spread ~0.01 (channel 1) is conditioned ~1e4-1e5 (level / spread):
# float64 rounding alone allows absolute errors near 1e-11 there, hence atol=1e-9 on z.
ATOL_Z = 1e-9


def _series(rng: np.random.Generator, n: int = 120, channels: int = 3) -> np.ndarray:
    # A random walk far from zero with very different scales per channel.
    steps = rng.normal(size=(n, channels)) * np.array([1.0, 1e-2, 50.0])
    return 100.0 + np.cumsum(steps, axis=0)


def _run(norm: OnlineNormalizer, series: np.ndarray) -> tuple[np.ndarray, NormalizerState]:
    state = norm.init_state(1, series.shape[1])
    z = np.stack([norm.update_transform(state, row[None, :])[0] for row in series])
    return z, state


def test_levels_match_offline_mean_and_std(rng):
    x = _series(rng)
    z, state = _run(OnlineNormalizer(mode="levels", clip=None), x)
    np.testing.assert_allclose(z, _offline_z(x), rtol=1e-9, atol=ATOL_Z)
    np.testing.assert_allclose(state.mean[0], x.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(state.var[0], x.var(axis=0), rtol=1e-9)
    assert state.count[0].tolist() == [len(x)] * 3
    np.testing.assert_array_equal(state.last[0], x[-1])


def test_returns_match_offline_statistics_of_changes(rng):
    x = _series(rng)
    z, state = _run(OnlineNormalizer(mode="returns", clip=None), x)
    d = np.diff(x, axis=0)
    assert (z[0] == 0).all()  # first point of a source: no change yet
    np.testing.assert_allclose(z[1:], _offline_z(d), rtol=1e-9, atol=ATOL_Z)
    np.testing.assert_allclose(state.mean[0], d.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(state.var[0], d.var(axis=0), rtol=1e-9)
    np.testing.assert_array_equal(state.weight[0], [len(d)] * 3)


@pytest.mark.parametrize("mode", ["levels", "returns"])
@pytest.mark.parametrize("halflife", [1.0, 7.5, 40.0])
def test_halflife_matches_exponentially_weighted_reference(rng, mode, halflife):
    x = _series(rng, n=150)
    z, state = _run(OnlineNormalizer(mode=mode, halflife=halflife, clip=None), x)
    lam = 0.5 ** (1.0 / halflife)
    samples = x if mode == "levels" else np.diff(x, axis=0)
    ref = _offline_z(samples, lam)
    got = z if mode == "levels" else z[1:]
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=ATOL_Z)
    w = lam ** np.arange(len(samples) - 1, -1, -1.0)
    np.testing.assert_allclose(state.weight[0], w.sum(), rtol=1e-12)
    m = (w[:, None] * samples).sum(axis=0) / w.sum()
    np.testing.assert_allclose(state.mean[0], m, rtol=1e-10)


def test_warm_up_is_finite_and_bounded_by_samuelson():
    norm = OnlineNormalizer(mode="levels", clip=None)
    state = norm.init_state(3, 1)
    # source 0: constant; source 1: constant then a jump; source 2: alternating
    rows = [[5.0, 1.0, 1.0], [5.0, 1.0, -1.0], [5.0, 1.0, 1.0], [5.0, 1e6, -1.0]]
    z = np.array([norm.update_transform(state, np.array(r)[:, None])[:, 0] for r in rows])
    assert np.isfinite(z).all()
    assert (z[:, 0] == 0).all()  # no spread: 0, never NaN
    assert z[0].tolist() == [0.0, 0.0, 0.0]  # first point is its own mean
    assert z[1, 2] == -1.0  # second distinct point: exactly -1
    n = np.arange(1, len(rows) + 1)
    assert (np.abs(z) <= np.sqrt(n - 1)[:, None] + 1e-12).all()
    np.testing.assert_allclose(z[3, 1], np.sqrt(3.0))  # the bound is attained by one outlier


def test_returns_first_point_then_zero_spread():
    norm = OnlineNormalizer(mode="returns")
    state = norm.init_state(1, 2)
    out = [norm.update_transform(state, np.array([[v, 2 * v]]))[0] for v in (3.0, 4.0, 5.0, 7.0)]
    assert out[0].tolist() == [0.0, 0.0]  # no change yet
    assert out[1].tolist() == [0.0, 0.0]  # one change: its own mean
    assert out[2].tolist() == [0.0, 0.0]  # equal changes: no spread
    np.testing.assert_allclose(out[3], [np.sqrt(2.0)] * 2)  # changes 1, 1, 2


def test_clip_bounds_the_scores():
    norm = OnlineNormalizer(mode="levels", clip=1.5)
    state = norm.init_state(1, 1)
    for v in [0.0] * 20 + [100.0]:
        z = norm.update_transform(state, np.array([[v]]))
    assert z[0, 0] == 1.5


@pytest.mark.parametrize("mode", ["levels", "returns"])
@pytest.mark.parametrize("halflife", [None, 5.0])
def test_chunked_updates_equal_one_pass(rng, mode, halflife):
    X = rng.normal(size=(4, 101, 2)).cumsum(axis=1)
    norm = OnlineNormalizer(mode=mode, halflife=halflife)
    one = norm.init_state(4, 2)
    ref = norm.update_transform_many(one, X)
    stepped = norm.init_state(4, 2)
    by_step = np.stack([norm.update_transform(stepped, X[:, t]) for t in range(101)], axis=1)
    np.testing.assert_array_equal(by_step, ref)
    for chunk in (1, 2, 50, 101, 143):
        state = norm.init_state(4, 2)
        parts = [
            norm.update_transform_many(state, X[:, i : i + chunk]) for i in range(0, 101, chunk)
        ]
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), ref)
        for name, arr in one.arrays().items():
            np.testing.assert_array_equal(getattr(state, name), arr, err_msg=name)


@pytest.mark.parametrize("mode", ["levels", "returns"])
def test_batched_sources_equal_each_alone(rng, mode):
    n_sources, n_steps = 6, 60
    X = rng.normal(size=(n_sources, n_steps, 2)) * rng.uniform(0.01, 100, size=(n_sources, 1, 2))
    norm = OnlineNormalizer(mode=mode, halflife=10.0)
    alone = []
    for s in range(n_sources):
        st = norm.init_state(1, 2)
        alone.append(norm.update_transform_many(st, X[s : s + 1])[0])
    alone = np.stack(alone)
    # Engine-style: each step only a random subset of sources arrives (gather, step, scatter).
    store = norm.init_state(n_sources, 2)
    pos = np.zeros(n_sources, dtype=int)
    got = np.full_like(X, np.nan)
    while (pos < n_steps).any():
        ready = np.flatnonzero(pos < n_steps)
        rows = rng.permutation(ready)[: rng.integers(1, len(ready) + 1)]
        sub = store.take(rows)
        got[rows, pos[rows]] = norm.update_transform(sub, X[rows, pos[rows]])
        store.put(rows, sub)
        pos[rows] += 1
    np.testing.assert_array_equal(got, alone)


def _snapshot(state: NormalizerState) -> dict[str, np.ndarray]:
    return {k: v.copy() for k, v in state.arrays().items()}


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected_and_state_unchanged(rng, bad):
    norm = OnlineNormalizer()
    state = norm.init_state(3, 2)
    norm.update_transform_many(state, rng.normal(size=(3, 5, 2)))
    before = _snapshot(state)
    x = rng.normal(size=(3, 2))
    x[1, 0] = bad
    x[2, 1] = bad
    with pytest.raises(
        InvalidInputError, match=r"2 non-finite value\(s\).*first at index \(1, 0\)"
    ):
        norm.update_transform(state, x)
    X = rng.normal(size=(3, 4, 2))
    X[0, 3, 1] = bad  # the last step: nothing before it may be applied either
    with pytest.raises(InvalidInputError, match=r"1 non-finite.*\(0, 3, 1\)"):
        norm.update_transform_many(state, X)
    for k, v in _snapshot(state).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)


def test_shape_mismatch_names_the_shapes():
    norm = OnlineNormalizer()
    state = norm.init_state(2, 3)
    with pytest.raises(InvalidInputError, match=r"\(2, 3\).*\(4, 3\)"):
        norm.update_transform(state, np.zeros((4, 3)))
    with pytest.raises(InvalidInputError, match="2 dimensions, got shape \\(3,\\)"):
        norm.update_transform(state, np.zeros(3))
    assert (state.count == 0).all()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "log"}, r"The 'mode' parameter of OnlineNormalizer must be one of 'returns', "),
        ({"halflife": 0.0}, r"'halflife' parameter .* Got 0.0 instead"),
        ({"clip": -1.0}, r"'clip' parameter"),
        ({"eps": -1e-3}, r"'eps' parameter"),
    ],
)
def test_invalid_parameters(kwargs, message):
    norm = OnlineNormalizer(**kwargs)
    assert all(getattr(norm, k) == v for k, v in kwargs.items())  # __init__ stores unchanged
    with pytest.raises(InvalidParameterError, match=message):
        norm.init_state(1, 1)


def test_parameters_set_after_use_are_validated_again():
    """Validation is cached per setting, not once for good: a bad value set later fails."""
    norm = OnlineNormalizer()
    state = norm.init_state(1, 1)
    norm.update_transform(state, np.ones((1, 1)))
    norm.clip = -1.0
    with pytest.raises(InvalidParameterError, match="'clip' parameter"):
        norm.update_transform(state, np.ones((1, 1)))
    assert state.count[0, 0] == 1  # the refused call changed nothing
