"""Shared test configuration: BLAS pinned to one thread for every test."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture
def rng():
    """A seeded generator; tests never use numpy's global random state."""
    import numpy as np

    return np.random.default_rng(12345)
