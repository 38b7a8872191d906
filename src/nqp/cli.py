"""The ``nqp`` command line.

``nqp serve`` (the gateway), ``nqp migrate``, ``nqp keys create``, ``nqp demo``,
``nqp validate`` and ``nqp optimize maxcut|qubo|portfolio FILE``. ``nqp worker`` comes
with the distributed mode.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

import nqp
from nqp._cli_optimize import optimize_app
from nqp.config import Settings

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
    scenario: list[str] | None = typer.Option(
        None,
        "--scenario",
        "-s",
        help="market, iot, maintenance or portfolio; repeatable (default: all four).",
    ),
    rate: float | None = typer.Option(
        None,
        min=0.001,
        help="Points per second of each streaming scenario "
        "(default: market 200, iot 60, maintenance 40).",
    ),
    duration: float = typer.Option(60.0, min=0.0, help="Seconds of streaming; 0 = until Ctrl-C."),
    event: list[str] | None = typer.Option(
        None,
        "--event",
        help="Market event EVENT@SECONDS, e.g. vol_spike@20 or reversal@40; repeatable "
        "(default with the market scenario: vol_spike@20, reversal@40).",
    ),
    exit_after: bool = typer.Option(
        False, "--exit", "--once", help="Stop the server after the scenarios (no Ctrl-C wait)."
    ),
    url: str | None = typer.Option(
        None, "--url", help="Feed this running server instead of starting one."
    ),
    key_file: Path | None = typer.Option(
        None, "--key-file", dir_okay=False, help="API key for --url (default: $NQP_API_KEY)."
    ),
    host: str = typer.Option("127.0.0.1", help="Interface of the started server."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port of the started server."),
    data_dir: Path = typer.Option(
        Path(".nqp-demo"), "--data-dir", help="Data directory of the started server."
    ),
    seed: int = typer.Option(0, min=0, help="Seed of the scenarios."),
    offline: bool = typer.Option(
        False, "--offline", help="No server: two series through the in-process engines."
    ),
    points: int = typer.Option(600, min=100, help="--offline: points to stream per source."),
    every: int = typer.Option(50, min=1, help="--offline: print one line every N points."),
    reservoir: str | None = typer.Option(None, help="lif or esn (default: settings)."),
    encoding: str | None = typer.Option(
        None, help="rate, temporal, population, phase or delta (default: settings)."
    ),
) -> None:
    """Start NQP, feed it live demo scenarios through the API, and show what it says.

    Starts `nqp serve` (log: DATA_DIR/server.log), creates a demo key,
    prints the dashboard URL, streams the scenarios, prints their summaries
    and keeps the server running until Ctrl-C (--exit: stop it at once).

    --url feeds a server that is already running; --offline runs the
    in-process demo without a server.
    """
    import httpx

    from nqp.config import Settings
    from nqp.demo import run_live_demo, run_stream_demo
    from nqp.exceptions import InvalidParameterError
    from nqp.scenarios import SCENARIO_NAMES, parse_event

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
    if offline:
        run_stream_demo(settings, n_points=points, every=every, echo=typer.echo)
        return
    names = list(dict.fromkeys(scenario or SCENARIO_NAMES))
    bad = [n for n in names if n not in SCENARIO_NAMES]
    if bad:
        raise typer.BadParameter(f"unknown scenario(s) {bad}; choose from {SCENARIO_NAMES}")
    try:
        events = [parse_event(e) for e in event or []]
    except InvalidParameterError as exc:
        raise typer.BadParameter(str(exc)) from exc
    if event is None and "market" in names:
        events = [(20.0, "vol_spike"), (40.0, "reversal")]
    if events and "market" not in names and "portfolio" not in names:
        raise typer.BadParameter("--event needs the market (or portfolio) scenario")
    if url is not None and overrides:
        raise typer.BadParameter("--reservoir/--encoding configure a started server, not --url")
    server_env = {f"NQP_NEUROMORPHIC__{k.upper()}": v for k, v in overrides.items()}
    try:
        run_live_demo(
            scenarios=names,
            rate=rate,
            duration=duration,
            events=events,
            seed=seed,
            exit_after=exit_after or url is not None,
            url=url,
            key_file=key_file,
            host=host,
            port=port,
            data_dir=data_dir,
            server_env=server_env,
            echo=typer.echo,
        )
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


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
    from nqp.validation import summarise, walk_forward, write_report

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
    summary = summarise(result)
    if as_json:
        typer.echo(json.dumps(summary, allow_nan=False))
    else:
        typer.echo(_format_summary(summary))


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


def _settings_with(data_dir: Path | None) -> Settings:
    from nqp.config import Settings

    settings = Settings()
    if data_dir is not None:
        settings = settings.model_copy(update={"data_dir": data_dir})
    return settings


def _configure_logging(level: str = "info") -> None:
    import json
    import logging

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            message = record.getMessage()
            entry: dict = {
                "ts": round(record.created, 3),
                "level": record.levelname.lower(),
                "logger": record.name,
            }
            try:
                parsed = json.loads(message)
                entry.update(parsed if isinstance(parsed, dict) else {"message": message})
            except ValueError:
                entry["message"] = message
            if record.exc_info:
                entry["exception"] = self.formatException(record.exc_info)
            return json.dumps(entry)

    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port."),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="SQLite file, secrets and state (default ./.nqp)."
    ),
    log_level: str = typer.Option(
        "info", "--log-level", help="debug (adds a JSON access log line per request), info, ..."
    ),
    mode: str = typer.Option(
        None,
        "--mode",
        help="embedded (default: this process runs the engine) or distributed (a stateless "
        "gateway in front of `nqp worker`s; needs NQP_STREAM__BOOTSTRAP_SERVERS and a shared "
        "NQP_SERVICE__DATABASE_URL).",
    ),
) -> None:
    """Run the HTTP/WebSocket gateway (embedded defaults: SQLite, in-process bus)."""
    import uvicorn

    from nqp.engine.threads import use_one_blas_thread
    from nqp.service.app import create_app
    from nqp.service.server import Server

    use_one_blas_thread()
    settings = _settings_with(data_dir)
    if mode is not None:
        if mode not in ("embedded", "distributed"):
            raise typer.BadParameter("must be 'embedded' or 'distributed'", param_hint="--mode")
        service = settings.service.model_copy(update={"mode": mode})
        settings = settings.model_copy(update={"service": service})
    _configure_logging(log_level)
    asgi = create_app(settings)
    config = uvicorn.Config(
        asgi,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )
    Server(config, ends=asgi.state.runtime.ends).run()


@app.command()
def worker(
    metrics_port: int = typer.Option(
        None, "--metrics-port", help="Serve /metrics, /healthz and /readyz on this port."
    ),
    worker_id: str = typer.Option(None, "--worker-id", help="Names the worker in logs."),
    kafka_option: list[str] = typer.Option(
        [],
        "--kafka-option",
        help="librdkafka property KEY=VALUE (prefix consumer./producer./admin. for one kind).",
    ),
    log_level: str = typer.Option("info", "--log-level"),
) -> None:
    """Run one stream worker of the Kafka consumer group (settings from NQP_* variables)."""
    from nqp.config import Settings
    from nqp.stream.worker import parse_options, run_worker

    _configure_logging(log_level)
    settings = Settings()
    code = run_worker(
        settings,
        metrics_port=metrics_port,
        kafka_options={**settings.stream.kafka_options, **parse_options(kafka_option)},
        worker_id=worker_id,
    )
    raise typer.Exit(code)


@app.command()
def migrate(
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Data directory (SQLite)."),
    revision: str = typer.Option(
        "head",
        "--revision",
        help="Target schema revision; an earlier one than the database's downgrades to it "
        "(before rolling back to an older build).",
    ),
) -> None:
    """Create, upgrade or downgrade the database schema (Alembic) and exit."""
    from alembic.util import CommandError

    from nqp import store

    settings = _settings_with(data_dir)
    url = settings.service.database_url or f"sqlite:///{(settings.data_dir / 'nqp.db').resolve()}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store.migrate_sync(url, revision)
    except (store.SchemaNewerError, CommandError) as exc:  # CommandError: unknown revision
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    where = url.split("@")[-1]
    typer.echo(f"database at {where} is " + ("up to date" if revision == "head" else revision))


keys_app = typer.Typer(help="Manage API keys from the server's machine.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: str = typer.Option("default", help="Tenant name (created if new)."),
    role: str = typer.Option("developer", help="admin, developer or viewer."),
    name: str = typer.Option("cli", help="A label for the key."),
    data_dir: Path | None = typer.Option(None, "--data-dir", help="Data directory (SQLite)."),
) -> None:
    """Create a key and print it (once)."""
    import asyncio

    from nqp import store
    from nqp.service.security import Role, generate_key, hash_key

    if role not in {r.value for r in Role}:
        raise typer.BadParameter("role must be admin, developer or viewer")
    settings = _settings_with(data_dir)
    url = settings.service.database_url or f"sqlite:///{(settings.data_dir / 'nqp.db').resolve()}"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store.migrate_sync(url, newer_ok=True)
    key = generate_key()

    async def create() -> None:
        engine = store.make_engine(url)
        try:
            async with store.make_sessionmaker(engine)() as session:
                t = await store.get_or_create_tenant(session, name=tenant)
                row = await store.create_key(
                    session,
                    tenant_id=t.id,
                    name=name,
                    role=role,
                    key_hash=hash_key(key),
                    prefix=key[:8],
                    expires_at=None,
                    rate_limit_per_s=None,
                    daily_quota=None,
                )
                await store.record_event(
                    session,
                    tenant_id=t.id,
                    actor_key_id=None,
                    action="key.create.cli",
                    target=row.id,
                    details={"role": role, "name": name},
                )
                await session.commit()
        finally:
            await engine.dispose()

    asyncio.run(create())
    typer.echo(key)


if __name__ == "__main__":  # python -m nqp.cli
    app()
