"""The ``nqp`` command line.

``nqp --version``, ``nqp demo`` (streams a generated series through the engines and
prints what they see) and ``nqp optimize maxcut|qubo|portfolio FILE``. Later issues
add ``serve``, ``worker``, ``validate``, ``keys`` and ``migrate``.
"""

from __future__ import annotations

import typer

import nqp

__all__ = ["app"]

app = typer.Typer(
    name="nqp",
    help="NQP, the Neuromorphic-Quantum Platform: predictions for numeric streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"nqp {nqp.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_version_callback,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """NQP, the Neuromorphic-Quantum Platform."""
