"""Small numeric helpers of the pipeline against NumPy references."""

from __future__ import annotations

import warnings

import numpy as np

from nqp.engine.pipeline import _median_of_finite


def test_median_of_finite_is_nanmedian_with_zero_for_empty_rows():
    rng = np.random.default_rng(0)
    for k in (1, 2, 5, 16):
        v = rng.normal(size=(400, k))
        v[rng.random((400, k)) < 0.4] = np.nan
        v[0] = np.nan
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
            want = np.nan_to_num(np.nanmedian(v, axis=1), nan=0.0)
        np.testing.assert_array_equal(_median_of_finite(v), want)
