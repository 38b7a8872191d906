"""The ``nqp`` command line.

``nqp --version``, ``nqp demo`` (streams a generated series through the engines and
prints what they see) and ``nqp optimize maxcut|qubo|portfolio FILE``. Later issues
add ``serve``, ``worker``, ``validate``, ``keys`` and ``migrate``.
"""

from __future__ import annotations

import typer

import nqp
from nqp._cli_optimize import optimize_app

__all__ = ["app"]

app = typer.Typer(
    name="nqp",
    help="NQP, the Neuromorphic-Quantum Platform: predictions for numeric streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


app.add_typer(optimize_app, name="optimize")


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


@app.command()
def demo(
    points: int = typer.Option(600, min=200, help="Points to stream."),
    every: int = typer.Option(50, min=1, help="Print one line every N points."),
    reservoir: str | None = typer.Option(None, help="lif or esn (default: settings)."),
    encoding: str | None = typer.Option(
        None, help="rate, temporal, population, phase or delta (default: settings)."
    ),
) -> None:
    """Stream a generated series through the engines and print what they see."""
    from nqp.config import Settings
    from nqp.demo import run_stream_demo

    overrides = {k: v for k, v in {"reservoir": reservoir, "encoding": encoding}.items() if v}
    base = Settings()
    try:
        settings = base.model_copy(
            update={
                "neuromorphic": base.neuromorphic.model_validate(
                    {**base.neuromorphic.model_dump(), **overrides}
                )
            }
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    run_stream_demo(settings, n_points=points, every=every, echo=typer.echo)
