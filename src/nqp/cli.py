"""The ``nqp`` command line.

``nqp --version``, ``nqp demo`` (streams a generated series through the engines and
prints what they see) and ``nqp optimize maxcut|qubo|portfolio FILE``. Later issues
add ``serve``, ``worker``, ``validate``, ``keys`` and ``migrate``.
"""

from __future__ import annotations

import sys
from pathlib import Path

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
    points: int = typer.Option(600, min=100, help="Points to stream per source."),
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


@app.command()
def validate(
    dataset: str | None = typer.Option(
        None, "--dataset", help="Dataset name (see --list); mutually exclusive with --csv."
    ),
    csv: Path | None = typer.Option(None, "--csv", help="CSV file of the series.", dir_okay=False),
    column: str | None = typer.Option(None, help="CSV column to predict (name or index)."),
    time_column: str | None = typer.Option(None, help="CSV column of timestamps."),
    points: int | None = typer.Option(None, min=50, help="Generated datasets: series length."),
    horizon: int = typer.Option(1, min=1, help="Steps ahead predicted."),
    seed: int = typer.Option(0, min=0, help="Engine seed."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    report: Path | None = typer.Option(None, "--report", help="Write an HTML report here."),
    list_datasets: bool = typer.Option(False, "--list", help="List the datasets and exit."),
) -> None:
    """Walk-forward validation of the platform on a dataset or CSV, with real statistics."""
    import json

    from nqp.config import Settings
    from nqp.datasets import available_datasets, dataset_from_csv, load_dataset
    from nqp.exceptions import NQPError
    from nqp.validation import walk_forward, write_report

    if list_datasets:
        typer.echo("\n".join(available_datasets()))
        raise typer.Exit()
    if (dataset is None) == (csv is None):
        raise typer.BadParameter("give exactly one of --dataset NAME or --csv FILE")
    try:
        if csv is not None:
            col: str | int | None = int(column) if column and column.isdigit() else column
            ds = dataset_from_csv(csv, column=col, time_column=time_column)
        else:
            assert dataset is not None
            kwargs = {"n_samples": points} if points is not None else {}
            ds = load_dataset(dataset, **kwargs)
        settings = Settings(seed=seed)
        n = len(ds.values)
        with typer.progressbar(length=n, label=f"validating {ds.name}", file=sys.stderr) as bar:
            run = walk_forward(ds, settings=settings, horizon=horizon, progress=bar.update)
    except (NQPError, ModuleNotFoundError, OSError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    result = run.result
    if report is not None:
        index = write_report(result, report, predictions=run.predictions, baselines=run.baselines)
        typer.echo(f"report written to {index}", err=True)
    summary = _validation_summary(result)
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        typer.echo(_format_summary(summary))


def _validation_summary(result: dict) -> dict:
    """The headline figures of a validation result (the ``--json`` object)."""
    both = result["variants"]["both"]
    hit = both["hit_rate"]
    mag = both["magnitude"]
    return {
        "dataset": result["metadata"]["dataset"],
        "points": result["metadata"]["points"],
        "scored": both["n"],
        "horizon": result["horizon"],
        "score": result["score"]["score"],
        "score_components": result["score"]["components"],
        "hit_rate": hit["hit_rate"],
        "hit_rate_p_value": hit["p_value_vs_half"],
        "majority_rate": hit["majority_rate"],
        "hit_rate_p_value_vs_majority": hit["p_value_vs_majority"],
        "directional_predictions": hit["n"],
        "brier": both["calibration"]["brier"],
        "brier_skill": both["calibration"]["brier_skill"],
        "ece": both["calibration"]["ece"],
        "nrmse": mag["nrmse"],
        "baselines": {
            name: {"nrmse": b["nrmse"], "dm_p_value_model_better": b["dm"]["p_value_model_better"]}
            for name, b in mag["baselines"].items()
        },
        "ablations": {
            name: {
                "score": result["scores"][name]["score"],
                "hit_rate": stats["hit_rate"]["hit_rate"],
                "brier": stats["calibration"]["brier"],
                "nrmse": stats["magnitude"]["nrmse"],
            }
            for name, stats in result["variants"].items()
        },
        "regimes": both.get("regimes"),
    }


def _format_summary(s: dict) -> str:
    def f(x: object, d: int = 3) -> str:
        return "n/a" if x is None else f"{x:.{d}f}" if isinstance(x, float) else str(x)

    lines = [
        f"{s['dataset']}: {s['points']} points, {s['scored']} scored, horizon {s['horizon']}",
        f"score {f(s['score'], 1)}/100",
        f"hit rate {f(s['hit_rate'])} over {s['directional_predictions']} calls "
        f"(p = {f(s['hit_rate_p_value'], 4)} vs 0.5; majority {f(s['majority_rate'])})",
        f"Brier {f(s['brier'])} (skill {f(s['brier_skill'])}), ECE {f(s['ece'])}",
        f"NRMSE {f(s['nrmse'])}; baselines: "
        + ", ".join(
            f"{k} {f(v['nrmse'])} (DM p {f(v['dm_p_value_model_better'], 4)})"
            for k, v in s["baselines"].items()
        ),
        "ablations: "
        + ", ".join(
            f"{k} score {f(v['score'], 1)} hit {f(v['hit_rate'])} NRMSE {f(v['nrmse'])}"
            for k, v in s["ablations"].items()
        ),
    ]
    return "\n".join(lines)
