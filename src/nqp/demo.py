"""The terminal demos: ``nqp demo`` (and ``make demo``).

**Live demo** (:func:`run_live_demo`, the default): start ``nqp serve`` on embedded defaults
in a child process (its log goes to ``DATA_DIR/server.log``), wait for ``/readyz``, create
a demo key through the API with the bootstrap admin key of ``DATA_DIR/admin.key`` (kept in
``DATA_DIR/demo.key``, mode 0600, and reused while valid), print the dashboard URL and where
the keys are, stream the scenarios of :mod:`nqp.scenarios` through the public HTTP API,
print their summaries and keep the server running until Ctrl-C (or stop it at once with
``exit_after``). The demo key is printed to the demo's terminal only, never to the
server's log. With ``url`` it feeds an already running server instead.

**Offline demo** (:func:`run_stream_demo`, ``nqp demo --offline``): no server. Two sources
are streamed side by side through an in-process :class:`nqp.Platform`, one point per
source per call: a Mackey-Glass series (deterministic chaos, predictable one step ahead)
and a random walk (unpredictable by construction). Every ``every`` points a line shows each
source's latest prediction and what the engines saw; at the end the realised hit rates
are tested against a fair coin. The platform should be confident and right on the first
and say "coin flip" (confidence near 0.5) on the second: the numbers printed are measured.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from scipy.stats import binomtest

from nqp.config import Settings
from nqp.datasets import mackey_glass
from nqp.engine import Platform, ProcessItem
from nqp.types import Direction, Prediction

__all__ = [
    "DemoServer",
    "DemoSummary",
    "SourceScore",
    "ensure_demo_key",
    "run_live_demo",
    "run_stream_demo",
]


@dataclass(frozen=True)
class SourceScore:
    """Realised directional record of one demo source after warm-up."""

    source: str
    calls: int
    hits: int
    hit_rate: float
    p_value: float
    mean_confidence: float


@dataclass(frozen=True)
class DemoSummary:
    """Scores of every demo source."""

    n_points: int
    sources: dict[str, SourceScore]


def _score(source: str, preds: list[Prediction], values: np.ndarray) -> SourceScore:
    hits = calls = 0
    confidences = []
    for k, p in enumerate(preds[:-1]):
        change = values[k + 1] - values[k]
        if p.warming_up or p.direction is Direction.HOLD or change == 0:
            continue
        calls += 1
        hits += int((change > 0) == (p.direction is Direction.UP))
        confidences.append(p.confidence)
    p_value = float(binomtest(hits, calls, 0.5).pvalue) if calls else 1.0
    return SourceScore(
        source=source,
        calls=calls,
        hits=hits,
        hit_rate=hits / calls if calls else float("nan"),
        p_value=p_value,
        mean_confidence=float(np.mean(confidences)) if confidences else float("nan"),
    )


def _line(p: Prediction, value: float) -> str:
    parts = [
        f"{p.source:>12s} t={p.sequence:4d} x={value:+9.4f} -> {p.direction.value:4s} "
        f"conf {p.confidence:.2f} exp.change {p.expected_change:+.4f} "
        f"anomaly {p.anomaly_score:.2f}"
    ]
    if p.warming_up:
        parts.append("(warming up)")
    if p.neuromorphic_results is not None:
        nr = p.neuromorphic_results
        top = sorted(nr.patterns.items(), key=lambda kv: -kv[1])[:2]
        parts.append(
            f"| spikes {nr.spike_analysis.spike_count:4d} "
            + " ".join(f"{k} {v:.2f}" for k, v in top)
        )
    if p.quantum_results is not None:
        q = p.quantum_results
        state = "converged" if q.convergence.converged else "washing out"
        parts.append(f"| E {q.energy:+.2f} coh {q.phase_coherence:.2f} {state}")
    return " ".join(parts)


def run_stream_demo(
    settings: Settings,
    *,
    n_points: int = 600,
    every: int = 50,
    echo: Callable[[str], None] = print,
) -> DemoSummary:
    """Stream ``n_points`` of two series through a fresh platform, printing as it goes.

    Parameters
    ----------
    settings : Settings
        Engine settings (``settings.seed`` also seeds the random walk).
    n_points : int, default=600
        Points per source.
    every : int, default=50
        Print one line per source every ``every`` points.
    echo : callable
        Where lines go.
    """
    if n_points < 100:
        raise ValueError(f"n_points must be at least 100, got {n_points}.")
    rng = np.random.default_rng(settings.seed)
    series = {
        "mackey-glass": mackey_glass(n_points, discard=200),
        "random-walk": 100.0 + np.cumsum(rng.standard_normal(n_points)),
    }
    platform = Platform(settings)
    neuro, quantum = settings.neuromorphic, settings.quantum
    echo(
        f"NQP demo: {n_points} points of {len(series)} sources through the platform "
        f"({neuro.reservoir.upper()} reservoir of {neuro.n_neurons} neurons, {neuro.encoding} "
        f"encoding; quantum reservoir of {quantum.qubit_count} qubits = "
        f"{2**quantum.qubit_count} basis states)"
    )
    preds: dict[str, list[Prediction]] = {name: [] for name in series}
    for t in range(n_points):
        items = [ProcessItem(name, [float(v[t])], float(t)) for name, v in series.items()]
        for name, out in zip(series, platform.process_many(items), strict=True):
            preds[name].append(out[0])
            if t % every == 0 or t == n_points - 1:
                echo(_line(out[0], float(series[name][t])))
    scores = {name: _score(name, preds[name], v) for name, v in series.items()}
    for s in scores.values():
        echo(
            f"{s.source}: {s.hits}/{s.calls} directions right after warm-up "
            f"(hit rate {s.hit_rate:.3f}, binomial p = {s.p_value:.2g} against a fair coin), "
            f"mean stated confidence {s.mean_confidence:.3f}"
        )
    return DemoSummary(n_points=n_points, sources=scores)


# --------------------------------------------------------------------------- live demo


class DemoServer:
    """``nqp serve`` in a child process of its own session (Ctrl-C reaches the demo only).

    Parameters
    ----------
    host, port : str, int
        Where it listens.
    data_dir : Path
        Its data directory; its log is written to ``data_dir / "server.log"``.
    env : mapping of str to str, optional
        Extra environment (``NQP_*`` settings) on top of this process's.
    """

    def __init__(
        self, host: str, port: int, data_dir: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.host = host
        self.port = port
        self.data_dir = data_dir
        self.env = env
        self.url = f"http://{host}:{port}"
        self.log_path = data_dir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 180.0) -> None:
        """Start the server and wait until ``/readyz`` answers 200."""
        with socket.socket() as probe:
            probe.settimeout(1.0)
            if probe.connect_ex((self.host, self.port)) == 0:
                raise RuntimeError(
                    f"something already listens on {self.host}:{self.port}: pass --port N, "
                    f"or feed that server with --url {self.url} --key-file FILE"
                )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        env.update(self.env or {})
        cmd = [sys.executable, "-m", "nqp.cli", "serve", "--host", self.host]
        cmd += ["--port", str(self.port), "--data-dir", str(self.data_dir)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the server exited with code {self.proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(self.url + "/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the server was not ready after {timeout_s:.0f} s; see {self.log_path}")

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 60.0) -> int | None:
        """SIGTERM (graceful drain and checkpoint), SIGKILL after ``timeout_s``."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise RuntimeError(f"{path} is empty")
    return key


def ensure_demo_key(url: str, data_dir: Path) -> tuple[str, Path]:
    """A developer key for the demo: ``data_dir/demo.key`` if still valid, else a new one.

    A new key is created with ``POST /api/v1/keys`` authenticated by the bootstrap admin
    key in ``data_dir/admin.key`` and written to ``data_dir/demo.key`` (mode 0600).

    Returns
    -------
    (str, Path)
        The key and its file.
    """
    path = data_dir / "demo.key"
    if path.exists():
        key = path.read_text().strip()
        if key:
            r = httpx.get(url + "/api/v1/status", headers={"Authorization": f"Bearer {key}"})
            if r.status_code == 200:
                return key, path
    admin = _read_key(data_dir / "admin.key")
    r = httpx.post(
        url + "/api/v1/keys",
        json={"name": "demo", "role": "developer"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    if r.status_code != 201:
        raise RuntimeError(f"creating the demo key failed: HTTP {r.status_code} {r.text[:200]}")
    key = r.json()["key"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key, path


def _wait_for_ctrl_c(server: DemoServer | None) -> None:
    try:
        while server is None or server.alive():
            time.sleep(0.5)
    except KeyboardInterrupt:
        return


def run_live_demo(
    *,
    scenarios: Sequence[str],
    rate: float | None = None,
    duration: float = 60.0,
    events: Sequence[tuple[float, str]] = (),
    seed: int = 0,
    exit_after: bool = False,
    url: str | None = None,
    key_file: Path | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    data_dir: Path = Path(".nqp-demo"),
    server_env: Mapping[str, str] | None = None,
    progress_every_s: float | None = 5.0,
    echo: Callable[[str], None] = print,
) -> dict:
    """Run the live demo (see the module docstring); returns the scenario summaries.

    Parameters
    ----------
    scenarios : sequence of str
        Names from :data:`nqp.scenarios.SCENARIO_NAMES`.
    rate, duration, events, seed
        As in :func:`nqp.scenarios.stream_scenarios` (``duration=0``: until Ctrl-C).
    exit_after : bool, default=False
        Stop the server after the scenarios instead of waiting for Ctrl-C.
    url : str, optional
        Feed this running server instead of starting one (the key comes from
        ``key_file`` or the ``NQP_API_KEY`` environment variable).
    key_file : Path, optional
    host, port, data_dir
        Where the started server listens and keeps its files.
    server_env : mapping, optional
        ``NQP_*`` settings of the started server.
    progress_every_s : float, optional
        Progress lines while streaming.
    echo : callable
        Where lines go.
    """
    from nqp.scenarios import print_summaries, stream_scenarios

    server: DemoServer | None = None
    try:
        if url is not None:
            base = url.rstrip("/")
            if key_file is not None:
                key = _read_key(key_file)
            elif os.environ.get("NQP_API_KEY"):
                key = os.environ["NQP_API_KEY"]
            else:
                raise RuntimeError("--url needs --key-file FILE or NQP_API_KEY")
            echo(f"feeding the NQP server at {base} (dashboard: {base}/)")
        else:
            server = DemoServer(host, port, data_dir, server_env)
            echo(f"starting the NQP server on {server.url} (log: {server.log_path}) ...")
            server.start()
            base = server.url
            key, key_path = ensure_demo_key(base, data_dir)
            echo(f"NQP is running on embedded defaults (SQLite in {data_dir}).")
            echo(f"  dashboard   {base}/")
            echo(f"  API docs    {base}/docs")
            echo(f"  admin key   in {data_dir / 'admin.key'} (bootstrap admin: keep it private)")
            echo(f"  demo key    in {key_path}: {key} (paste it into the dashboard)")
            echo(f"  server log  {server.log_path}")
        until = "until Ctrl-C" if duration == 0 else f"for {duration:g} s"
        echo(f"streaming {', '.join(scenarios)} {until} ...")

        async def stream() -> tuple[dict, bool]:
            stop = asyncio.Event()
            out = await stream_scenarios(
                scenarios,
                base_url=base,
                api_key=key,
                rate=rate,
                duration=duration,
                seed=seed,
                events=events,
                progress_every_s=progress_every_s,
                echo=echo,
                stop=stop,
            )
            return out, stop.is_set()

        summaries, interrupted = asyncio.run(stream())
        print_summaries(summaries, echo)
        if server is not None and not (exit_after or interrupted):
            echo(f"The server keeps running: dashboard {base}/ ; press Ctrl-C to stop it.")
            _wait_for_ctrl_c(server)
        return summaries
    finally:
        if server is not None and server.proc is not None:
            code = server.stop()
            clean = code in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after draining
            echo("server stopped" if clean else f"server stopped (exit code {code})")
