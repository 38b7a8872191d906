"""HTTP load on loopback: realtime predictions/s and latency of ``nqp serve`` vs a bare ceiling.

Starts ``nqp serve`` (embedded mode: SQLite in a temp data dir, default engine settings,
both engines on) on a free 127.0.0.1 port, creates a developer key (rate limit lifted so
the limiter does not cap the run), and drives ``POST /api/v1/process/realtime`` with one
point per request over ``--sources`` sources round-robin. The same load goes to a *bare*
FastAPI endpoint (this file, ``--bare-server``: accepts the same JSON body, returns a
constant prediction-sized JSON, served by uvicorn with the same options) as the HTTP
ceiling of this machine; the ratio realtime/bare is reported.

Load generator: asyncio, raw HTTP/1.1 keep-alive sockets, one request in flight per
connection. *Open loop* at a fixed offered rate: request i is due at ``t0 + i / rate``;
its latency runs from the due time (time queued for a free connection included, so a
falling-behind server is not hidden, no coordinated omission). *Saturation* is closed
loop: every connection sends its next request as soon as the previous answer arrives.
The client's own ceiling is the saturation figure against the bare endpoint.

Client and server share the machine's cores (2 on the dev boxes): every figure carries
the load average and the server's CPU seconds per request (from /proc). Bounded: each
phase lasts ``--duration`` seconds, the whole run stops by itself; loopback only.

NQP phases also give, from the gateway's own Prometheus histograms over the phase, the
engine calls per second, items per call, mean engine time per call and the share of the
phase the engine was busy, and the mean time from submission to result (queue + engine).

Then ``batch``: ``--batch-runs`` batch jobs (default 3), each of ``--batch-points`` one-point
entries over (at most) 1,000 fresh sources, end to end (request, job, and the client seeing
it end: ``GET /api/v1/jobs/{id}?wait=…``, or polling every ``--batch-poll-s`` seconds as
clients of servers without ``wait`` do), with the gateway's and engine processes' CPU
seconds, and ``batch_median`` over the runs; and
``shutdown``: SIGTERM to the server's exit, which drains and checkpoints every source it
holds.

Prints one JSON line per figure. Run: ``.venv/bin/python bench/load.py [--duration 10]``.
Profile the server during saturation with ``--profile out.txt`` (needs py-spy).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from starlette.responses import Response

RATES = (500, 1000, 2000)
_JOB_WAIT_S = 20  # per GET of a batch job (the HTTP timeout is 30 s)
_BARE_RESPONSE = {
    "prediction_id": "0" * 32,
    "source": "s",
    "sequence": 1,
    "timestamp": 0.0,
    "direction": "hold",
    "confidence": 0.5,
    "magnitude": 0.0,
    "expected_change": 0.0,
    "uncertainty": 0.0,
    "horizon": 1,
    "time_horizon_ms": 0.0,
    "warming_up": False,
    "anomaly_score": 0.0,
    "neuromorphic_results": {
        "patterns": dict.fromkeys(("synchronous", "traveling", "standing", "chaotic"), 0.0),
        "reservoir_state": {"mean": 0.0, "std": 0.0, "max": 0.0, "active_fraction": 0.0},
        "spike_analysis": {"spike_count": 0, "spike_rate": 0.0, "coherence": 0.0},
    },
    "quantum_results": {"energy": 0.0, "entanglement": 0.0, "features": [0.0] * 8},
    "processing_time_ms": 0.0,
}


# ---------------------------------------------------------------- bare ceiling server
def _bare_app() -> FastAPI:
    app = FastAPI()
    body = orjson.dumps(_BARE_RESPONSE)

    @app.post("/api/v1/process/realtime")
    async def realtime(request: Request) -> Response:
        payload = orjson.loads(await request.body())
        if "source" not in payload:
            return Response(b'{"error":{}}', status_code=422, media_type="application/json")
        return Response(body, media_type="application/json")

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def _serve_bare(port: int) -> None:
    import uvicorn

    uvicorn.run(_bare_app(), host="127.0.0.1", port=port, log_config=None, access_log=False)


# ---------------------------------------------------------------- process helpers
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(url: str, proc: subprocess.Popen, timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        with contextlib.suppress(OSError), urllib.request.urlopen(url + "/readyz", timeout=1) as r:
            if r.status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError("server did not become ready")


def _http_json(method: str, url: str, key: str, body: Any = None) -> tuple[int, Any]:
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def _cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU seconds of a process and of each of its descendants (Linux /proc).

    Descendants count: the gateway runs its engine in a child process (of a forkserver).
    """
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, cpu ticks)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # exited meanwhile
            continue
        stats[int(entry.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in stats.items():
            if ppid == parent and child not in tree:
                tree.add(child)
                frontier.append(child)
    tick = os.sysconf("SC_CLK_TCK")
    return {p: stats[p][1] / tick for p in tree if p in stats}


# ---------------------------------------------------------------- load generator
class _Conn:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        if length:
            await self.reader.readexactly(length)
        return status


def _request_bytes(port: int, path: str, key: str, body: bytes) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


WARM_POINTS = 40  # > the engine's default warm-up (30 outcomes)


def _warm_bodies(n_sources: int) -> list[bytes]:
    """One request per source with WARM_POINTS points of the same series as _bodies."""
    import math

    return [
        json.dumps(
            {
                "source": f"src-{s}",
                "data": [
                    100.0 + math.sin((s - k * n_sources) / n_sources * 0.7)
                    for k in range(WARM_POINTS, 0, -1)
                ],
            }
        ).encode()
        for s in range(n_sources)
    ]


def _bodies(n_sources: int, n: int) -> list[bytes]:
    import math

    return [
        json.dumps(
            {"source": f"src-{i % n_sources}", "data": [100.0 + math.sin(i / n_sources * 0.7)]}
        ).encode()
        for i in range(n)
    ]


async def _run_phase(
    port: int,
    path: str,
    key: str,
    requests: list[bytes],
    *,
    rate: float | None,
    duration_s: float,
    connections: int,
    max_requests: int | None = None,
) -> dict[str, Any]:
    """Offered ``rate`` (open loop) or saturation (``rate=None``, closed loop; at most
    ``max_requests`` requests when given)."""
    conns = [_Conn(*await asyncio.open_connection("127.0.0.1", port)) for _ in range(connections)]
    idle: asyncio.Queue[_Conn] = asyncio.Queue()
    for c in conns:
        idle.put_nowait(c)
    latencies: list[float] = []
    errors: dict[str, int] = {}
    n_req = len(requests)
    start = time.perf_counter()
    end = start + duration_s

    async def one(i: int, due: float) -> None:
        conn = await idle.get()
        try:
            status = await conn.request(requests[i % n_req])
        except (OSError, asyncio.IncompleteReadError) as exc:
            errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
            return  # the connection is dropped
        now = time.perf_counter()
        idle.put_nowait(conn)
        if status == 200:
            latencies.append(now - due)
        else:
            errors[str(status)] = errors.get(str(status), 0) + 1

    tasks: list[asyncio.Task[None]] = []
    if rate is not None:
        i = 0
        while True:
            due = start + i / rate
            if due >= end:
                break
            delay = due - time.perf_counter()
            if delay > 0.001:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
            i += 1
    else:

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < end and (max_requests is None or i < max_requests):
                await one(i, time.perf_counter())
                i += connections

        tasks = [asyncio.create_task(worker(w)) for w in range(connections)]
    # stragglers get at most 10 s more, then count as errors
    timeout = max(0.0, end - time.perf_counter()) + 10.0  # closed-loop workers run to `end`
    _, pending = await asyncio.wait(tasks, timeout=timeout) if tasks else (set(), set())
    for t in pending:
        t.cancel()
    if pending:
        errors["unfinished"] = len(pending)
    elapsed = time.perf_counter() - start
    for c in conns:
        c.writer.close()
    latencies.sort()
    n = len(latencies)

    def pct(p: float) -> float | None:
        return round(latencies[min(n - 1, int(p * n))] * 1000, 2) if n else None

    return {
        "achieved_per_s": round(n / elapsed, 1),
        "ok": n,
        "errors": errors,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 2) if n else None,
        "elapsed_s": round(elapsed, 2),
    }


def _stage_sums(port: int, key: str) -> dict[str, float]:
    """Sums and counts of the gateway's engine/request stage and batch-size histograms."""
    _, metrics = _http_json("GET", f"http://127.0.0.1:{port}/api/v1/metrics", key)
    out: dict[str, float] = {}
    for name in ("nqp_stage_seconds_sum", "nqp_stage_seconds_count"):
        for sample in metrics.get(name, []):
            out[f"{sample['labels'].get('stage')}_{name.rsplit('_', 1)[1]}"] = sample["value"]
    for name in ("nqp_batch_size_sum", "nqp_batch_size_count"):
        for sample in metrics.get(name, []):
            out[name] = sample["value"]
    return out


def _stages(before: dict[str, float], after: dict[str, float], elapsed_s: float) -> dict:
    """Where a phase's time went: engine calls (mean ms, items, busy share), submit→result."""
    d = {k: after.get(k, 0.0) - before.get(k, 0.0) for k in after}
    calls = d.get("engine_count", 0.0)
    requests = d.get("request_count", 0.0)
    return {
        "engine_calls_per_s": round(calls / elapsed_s, 1),
        "items_per_call": round(d.get("nqp_batch_size_sum", 0.0) / calls, 1) if calls else None,
        "engine_ms_per_call": round(1000 * d.get("engine_sum", 0.0) / calls, 2) if calls else None,
        "engine_busy": round(d.get("engine_sum", 0.0) / elapsed_s, 2),
        "submit_to_result_ms": round(1000 * d.get("request_sum", 0.0) / requests, 2)
        if requests
        else None,
    }


def _phase(target: str, port: int, pid: int, path: str, key: str, reqs, rate, args) -> dict:
    stages0 = _stage_sums(port, key) if target == "nqp" else None
    cpu0 = _cpu_by_process(pid)
    res = asyncio.run(
        _run_phase(
            port,
            path,
            key,
            reqs,
            rate=rate,
            duration_s=args.duration,
            connections=args.connections,
        )
    )
    cpu1 = _cpu_by_process(pid)
    cpu = sum(cpu1.values()) - sum(cpu0.values())
    res.update(
        {
            "figure": "realtime_load",
            "target": target,
            "offered_per_s": rate if rate is not None else "saturation",
            "loop": "open" if rate is not None else "closed",
            "connections": args.connections,
            "server_cpu_ms_per_ok": round(1000 * cpu / res["ok"], 3) if res["ok"] else None,
            "server_cpu_cores": round(cpu / res["elapsed_s"], 2),
            # the gateway's own share (its engine children's is the rest)
            "gateway_cpu_ms_per_ok": round(1000 * (cpu1[pid] - cpu0[pid]) / res["ok"], 3)
            if res["ok"]
            else None,
            "loadavg_1m": round(os.getloadavg()[0], 2),
        }
    )
    if stages0 is not None:
        res.update(_stages(stages0, _stage_sums(port, key), res["elapsed_s"]))
    print(json.dumps(res), flush=True)
    return res


def _drain(url: str, key: str, timeout_s: float = 120.0) -> None:
    """Wait until the gateway's micro-batcher queue and prediction-store backlog are empty
    (no backlog carried into the next phase)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        status, body = _http_json("GET", url + "/api/v1/status", key)
        if status == 200 and body.get("queue_depth") == 0 and body.get("store_backlog") == 0:
            return
        time.sleep(0.25)


def _profile(pid: int, out: str, seconds: float) -> subprocess.Popen | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        print(json.dumps({"figure": "note", "note": "py-spy not installed; no profile"}))
        return None
    fmt = "raw" if out.endswith(".txt") else "flamegraph"
    cmd = [
        spy,
        "record",
        "--pid",
        str(pid),
        "-d",
        str(int(seconds)),
        "-o",
        out,
        "-f",
        fmt,
        "-r",
        "200",
        "--nonblocking",  # sampling without pausing the server (figures stay comparable)
        "--gil",  # only the thread holding the GIL: the server is GIL-bound
    ]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--duration", type=float, default=10.0, help="Seconds per phase.")
    parser.add_argument("--sources", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rates", type=str, default=",".join(map(str, RATES)))
    parser.add_argument("--profile", type=str, default=None, help="py-spy output (.txt raw)")
    parser.add_argument(
        "--batch-only", action="store_true", help="Only the batch-job figure (no realtime)."
    )
    parser.add_argument("--batch-points", type=int, default=50_000)
    parser.add_argument(
        "--batch-runs", type=int, default=3, help="Batch jobs, each on fresh sources (median)."
    )
    parser.add_argument(
        "--batch-poll-s",
        type=float,
        default=0.0,
        help="Poll the job every this many seconds (0: wait for its end with ?wait=).",
    )
    parser.add_argument("--bare-server", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_server is not None:
        _serve_bare(args.bare_server)
        return
    rates = [float(r) for r in args.rates.split(",") if r]
    # the server as a user starts it: no thread-count variables (it limits BLAS itself)
    env = dict(os.environ)
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.pop(var, None)
    env.pop("NQP_SERVICE__DATABASE_URL", None)
    env.pop("NQP_SERVICE__REDIS_URL", None)
    print(
        json.dumps(
            {
                "figure": "machine",
                "cpus": os.cpu_count(),
                "python": sys.version.split()[0],
                "loadavg_1m": round(os.getloadavg()[0], 2),
                "note": "client and server share these cores",
            }
        ),
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="nqp-load-") as tmp:
        data_dir = Path(tmp) / "data"
        nqp_port, bare_port = _free_port(), _free_port()
        log = open(Path(tmp) / "server.log", "w")  # noqa: SIM115
        servers = [
            subprocess.Popen(
                [
                    *(sys.executable, "-m", "nqp.cli", "serve"),
                    *("--port", str(nqp_port), "--data-dir", str(data_dir)),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
            subprocess.Popen(
                [sys.executable, __file__, "--bare-server", str(bare_port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            ),
        ]
        try:
            nqp_url, bare_url = f"http://127.0.0.1:{nqp_port}", f"http://127.0.0.1:{bare_port}"
            _wait_ready(nqp_url, servers[0])
            _wait_ready(bare_url, servers[1])
            admin = (data_dir / "admin.key").read_text().strip()
            status, created = _http_json(
                "POST",
                nqp_url + "/api/v1/keys",
                admin,
                {"name": "load", "role": "developer", "rate_limit_per_s": 1_000_000},
            )
            assert status == 201, created
            key = created["key"]
            if args.batch_only:
                spy = _profile(servers[0].pid, args.profile, 12) if args.profile else None
                _batches(nqp_url, key, args, servers[0].pid)
                if spy is not None:
                    spy.wait(timeout=60)
                return
            path = "/api/v1/process/realtime"
            n_max = int(max([*rates, 4000.0]) * args.duration * 1.2)
            bodies = _bodies(args.sources, min(n_max, 200_000))
            nqp_reqs = [_request_bytes(nqp_port, path, key, b) for b in bodies]
            bare_reqs = [_request_bytes(bare_port, path, key, b) for b in bodies]
            # warm-up: every source gets WARM_POINTS points (one request each) and so is past
            # its engine warm-up, as the sources of a running deployment are: a source's first
            # points cost several times a live one's, and 1000 sources started in step would
            # otherwise put all of that into the first second of the measurement
            warm_reqs = [_request_bytes(nqp_port, path, key, b) for b in _warm_bodies(args.sources)]
            warm = asyncio.run(
                _run_phase(
                    nqp_port,
                    path,
                    key,
                    warm_reqs,
                    rate=None,
                    duration_s=300.0,
                    connections=16,
                    max_requests=len(warm_reqs),
                )
            )
            print(
                json.dumps(
                    {
                        "figure": "warm_up",
                        "sources": args.sources,
                        "points_each": WARM_POINTS,
                        "ok": warm["ok"],
                        "errors": warm["errors"],
                        "seconds": warm["elapsed_s"],
                    }
                ),
                flush=True,
            )
            _drain(nqp_url, key)  # its predictions stored before anything is measured
            results: dict[tuple[str, Any], dict] = {}
            for target, port, pid, reqs in (
                ("bare", bare_port, servers[1].pid, bare_reqs),
                ("nqp", nqp_port, servers[0].pid, nqp_reqs),
            ):
                spy = None
                for rate in [*rates, None]:
                    if rate is None and target == "nqp" and args.profile:
                        spy = _profile(pid, args.profile, args.duration - 1)
                    results[(target, rate)] = _phase(target, port, pid, path, key, reqs, rate, args)
                    if target == "nqp":
                        _drain(nqp_url, key)
                    time.sleep(1.0)
                if spy is not None:
                    spy.wait(timeout=60)
            for rate in [*rates, None]:
                b, n = results[("bare", rate)], results[("nqp", rate)]
                ok = n["p95_ms"] is not None and n["p95_ms"] < 50 and (n["p99_ms"] or 1e9) < 100
                print(
                    json.dumps(
                        {
                            "figure": "realtime_vs_bare",
                            "offered_per_s": rate if rate is not None else "saturation",
                            "nqp_per_s": n["achieved_per_s"],
                            "bare_per_s": b["achieved_per_s"],
                            "ratio": round(n["achieved_per_s"] / b["achieved_per_s"], 3)
                            if b["achieved_per_s"]
                            else None,
                            "meets_latency_target": ok,
                        }
                    ),
                    flush=True,
                )
            _batches(nqp_url, key, args, servers[0].pid)
        finally:
            stopping = time.perf_counter()
            for proc in servers:
                proc.terminate()
            for proc in servers:
                try:
                    proc.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    proc.kill()
            if servers[0].returncode is not None:
                # SIGTERM to exit: drain, checkpoint every source held (1,000 per batch
                # job and the realtime phases' --sources), close; the bare server stops
                # meanwhile
                print(
                    json.dumps(
                        {
                            "figure": "shutdown",
                            "seconds": round(time.perf_counter() - stopping, 2),
                            "returncode": servers[0].returncode,
                            "loadavg_1m": round(os.getloadavg()[0], 2),
                        }
                    ),
                    flush=True,
                )
            log.close()


def _batches(url: str, key: str, args: argparse.Namespace, pid: int) -> None:
    """``--batch-runs`` batch jobs one after the other, then their median rate."""
    rates = [_batch(url, key, args, pid, run) for run in range(args.batch_runs)]
    done = [r for r in rates if r is not None]
    if len(done) > 1:
        print(
            json.dumps(
                {
                    "figure": "batch_median",
                    "runs": len(done),
                    "points_per_s": [round(r, 1) for r in sorted(done)],
                    "median_points_per_s": round(statistics.median(done), 1),
                }
            ),
            flush=True,
        )


def _batch(url: str, key: str, args: argparse.Namespace, pid: int, run: int = 0) -> float | None:
    """One batch job over fresh sources (named for ``run``); its points/s if it succeeded."""
    with urllib.request.urlopen(url + "/openapi.json", timeout=10) as r:
        paths = json.loads(r.read())["paths"]
    if "/api/v1/process/batch" not in paths:
        print(
            json.dumps(
                {"figure": "batch", "note": "POST /api/v1/process/batch not served; skipped"}
            ),
            flush=True,
        )
        return None
    n_points, n_sources = args.batch_points, min(args.sources, 1000)
    points = [
        {"source": f"b{run}-{i % n_sources}", "data": [100.0 + (i % 7) * 0.1]}
        for i in range(n_points)
    ]
    body = json.dumps({"data_points": points}).encode()  # the client's encoding: not timed
    cpu0 = _cpu_by_process(pid)
    start = time.perf_counter()
    status, job = _http_json("POST", url + "/api/v1/process/batch", key, body)
    accepted = time.perf_counter() - start
    if status != 202:
        print(json.dumps({"figure": "batch", "error": status, "body": str(job)[:300]}))
        return None
    job_id = job.get("job_id") or job.get("id")
    deadline = start + 120
    state: Any = None
    # long polling answers as the job ends; polling sees it within --batch-poll-s (each poll
    # costs ~1 ms of server CPU), as does a server that ignores `wait`
    query = f"?wait={_JOB_WAIT_S}" if args.batch_poll_s <= 0 else ""
    while time.perf_counter() < deadline:
        _, state = _http_json("GET", f"{url}/api/v1/jobs/{job_id}{query}", key)
        if isinstance(state, dict) and state.get("status") in ("succeeded", "failed"):
            break
        time.sleep(args.batch_poll_s if args.batch_poll_s > 0 else 0.05)
    took = time.perf_counter() - start
    cpu1 = _cpu_by_process(pid)
    print(
        json.dumps(
            {
                "figure": "batch",
                "points": n_points,
                "sources": n_sources,
                "status": state.get("status") if isinstance(state, dict) else None,
                "seconds": round(took, 3),
                "points_per_s": round(n_points / took, 1),
                # until the 202: the request parsed, validated and the job stored
                "accept_s": round(accepted, 3),
                # the job runner's own time (from the first round to the last store)
                "job_s": (state.get("result") or {}).get("elapsed_s")
                if isinstance(state, dict)
                else None,
                # CPU seconds during the job: the gateway's, and its engine children's
                "gateway_cpu_s": round(cpu1[pid] - cpu0[pid], 2),
                "engine_cpu_s": sorted(
                    round(c - cpu0.get(p, 0.0), 2)
                    for p, c in cpu1.items()
                    if p != pid and c - cpu0.get(p, 0.0) >= 0.05  # not the forkserver
                ),
                "loadavg_1m": round(os.getloadavg()[0], 2),
            }
        ),
        flush=True,
    )
    succeeded = isinstance(state, dict) and state.get("status") == "succeeded"
    return n_points / took if succeeded else None


if __name__ == "__main__":
    main()
