"""Every public module declares ``__all__`` and every name in it exists (httpx's habit)."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import nqp

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(nqp.__path__, prefix="nqp.")
    if not any(part.startswith("_") for part in m.name.split(".")[1:])
)


@pytest.mark.parametrize("name", MODULES)
def test_module_all_is_declared_and_resolves(name):
    module = importlib.import_module(name)
    if not hasattr(module, "__all__"):
        # only a package with no public names of its own may omit it, and it must say what it is
        assert hasattr(module, "__path__"), f"module {name} must declare __all__"
        assert module.__doc__, f"package {name} needs a docstring"
        return
    for public in module.__all__:
        assert hasattr(module, public), f"{name}.__all__ lists missing {public!r}"


def test_top_level_all():
    assert set(nqp.__all__) >= {"Platform", "Settings", "__version__"}
    assert nqp.Platform is importlib.import_module("nqp.engine").Platform
