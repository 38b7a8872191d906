"""NQP, the Neuromorphic-Quantum Platform: predictions for numeric streams.

>>> from nqp import Platform, Settings
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from nqp.config import Settings

if TYPE_CHECKING:
    from nqp.engine import Platform

try:
    __version__ = version("nqp")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = ["Platform", "Settings", "__version__"]


def __getattr__(name: str) -> Any:
    # The engine pulls in numba-compiled kernels: import it on first use only, so that
    # `import nqp` (and the CLI's --help) stay fast.
    if name == "Platform":
        from nqp.engine import Platform

        return Platform
    raise AttributeError(f"module 'nqp' has no attribute {name!r}")
