"""Mackey-Glass and Lorenz generators against exact properties."""

from __future__ import annotations

import numpy as np
import pytest

from nqp.datasets import lorenz, mackey_glass
from nqp.exceptions import InvalidParameterError


def test_mackey_glass_fixed_point_is_exact():
    # beta / (1 + 1^n) = gamma at x = 1 for the classic parameters
    np.testing.assert_allclose(mackey_glass(300, x0=1.0), 1.0, atol=1e-14)


def test_mackey_glass_delay_does_not_depend_on_sampling():
    # same integration step h = 0.1, sampled every 1.0 vs every 0.5
    coarse = mackey_glass(400, sample_every=1.0, integration_steps=10)
    fine = mackey_glass(800, sample_every=0.5, integration_steps=5)
    np.testing.assert_allclose(fine[1::2], coarse, atol=1e-12)


def test_mackey_glass_rk4_converges_with_step():
    a = mackey_glass(300, integration_steps=10)
    b = mackey_glass(300, integration_steps=20)
    c = mackey_glass(300, integration_steps=40)
    # the linearly interpolated delayed half step makes the scheme second order: the
    # error shrinks ~4x per halving of h
    assert np.abs(b - c).max() < np.abs(a - b).max() / 3.5
    assert np.abs(a - c).max() < 5e-4


def test_mackey_glass_tau17_is_aperiodic_and_bounded():
    x = mackey_glass(3000, discard=500)
    assert 0.2 < x.min() < x.max() < 1.5
    assert x.std() > 0.15


def test_mackey_glass_rejects_incommensurate_tau():
    with pytest.raises(ValueError, match="multiple"):
        mackey_glass(10, tau=17.05)
    with pytest.raises(InvalidParameterError, match="n_samples"):
        mackey_glass(0)


def test_lorenz_is_seeded_and_on_attractor():
    a, b = lorenz(500, seed=1), lorenz(500, seed=1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, lorenz(500, seed=2))
    assert a[:, 2].min() > 0
    assert a[:, 2].max() < 60
