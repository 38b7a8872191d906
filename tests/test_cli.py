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


def test_migrate_refuses_a_schema_newer_than_this_build(tmp_path):
    import sqlite3

    data = tmp_path / "data"
    assert runner.invoke(app, ["migrate", "--data-dir", str(data)]).exit_code == 0
    with sqlite3.connect(data / "nqp.db") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999'")
    result = runner.invoke(app, ["migrate", "--data-dir", str(data)])
    assert result.exit_code == 1
    assert "revision 9999, newer than this build knows" in result.stderr


def test_migrate_to_an_earlier_revision_downgrades(tmp_path):
    """Before rolling back to an older build: ``--revision`` takes the schema back (and
    forward again); an unknown revision is an error that changes nothing."""
    import sqlite3

    data = tmp_path / "data"

    def state() -> tuple[list, set]:
        with sqlite3.connect(data / "nqp.db") as conn:
            version = conn.execute("SELECT version_num FROM alembic_version").fetchall()
            indexes = {r[1] for r in conn.execute("PRAGMA index_list('predictions')")}
        return version, indexes

    assert runner.invoke(app, ["migrate", "--data-dir", str(data)]).exit_code == 0
    version, indexes = state()
    assert version == [("0005",)]
    assert "uq_predictions_tenant_source_ts_sequence" in indexes
    result = runner.invoke(app, ["migrate", "--data-dir", str(data), "--revision", "0003"])
    assert result.exit_code == 0, result.output
    version, indexes = state()
    assert version == [("0003",)]
    assert "ix_predictions_tenant_source_ts" in indexes
    assert "uq_predictions_tenant_source_ts_sequence" not in indexes
    result = runner.invoke(app, ["migrate", "--data-dir", str(data), "--revision", "nope"])
    assert result.exit_code == 1
    assert "nope" in result.stderr
    assert state()[0] == [("0003",)]
    assert runner.invoke(app, ["migrate", "--data-dir", str(data)]).exit_code == 0
    assert state()[0] == [("0005",)]
