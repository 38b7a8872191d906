"""NQP, the Neuromorphic-Quantum Platform: predictions for numeric streams."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from nqp.config import Settings

try:
    __version__ = version("nqp")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["Settings", "__version__"]
