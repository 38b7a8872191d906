"""The ``nqp`` console script: version and help."""

from __future__ import annotations

from typer.testing import CliRunner

import nqp
from nqp.cli import app

runner = CliRunner()


def test_version_prints_package_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"nqp {nqp.__version__}"


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "Neuromorphic-Quantum Platform" in result.stdout
