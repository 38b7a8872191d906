"""Time-series generators and loaders for tests, benchmarks and validation."""

from __future__ import annotations

from nqp.datasets.generators import lorenz, mackey_glass

__all__ = ["lorenz", "mackey_glass"]
