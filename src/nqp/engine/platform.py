"""``Platform``: the public entry point that turns points into predictions.

>>> from nqp import Platform
>>> p = Platform()
>>> pred = p.process("demo", [1.0, 1.1, 1.05])
>>> pred.sequence, pred.warming_up, pred.direction.value
(3, True, 'hold')
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
from numpy.typing import NDArray
from pydantic import ValidationError

from nqp.config import Settings
from nqp.engine.pipeline import MetaState, Pipeline, WaveResult
from nqp.engine.store import CheckpointSink, SourceStore
from nqp.exceptions import InvalidInputError
from nqp.neuromorphic.patterns import KINDS
from nqp.types import (
    Direction,
    Prediction,
    ProcessConfig,
)

__all__ = ["MAX_ABS_VALUE", "EncodedPrediction", "Platform", "ProcessItem", "SourceSummary"]

_MAX_SOURCE_LEN = 200
MAX_ABS_VALUE = 1e100
"""Largest |value| accepted: beyond it running sums of squares would overflow float64."""
_DIRECTION_NAMES = {1: Direction.UP.value, -1: Direction.DOWN.value, 0: Direction.HOLD.value}

#: One prediction as the engine process sends it (:meth:`Platform.process_many_encoded`):
#: ``(prediction_id, sequence, timestamp, direction, confidence, body)``, ``body`` the JSON
#: text of its dict after the ``prediction_id`` and ``source`` members.
EncodedPrediction = tuple[str, int, float, str, float, str]
_SYNC = KINDS.index("synchronous")
_DEFAULT_CONFIG = ProcessConfig()  # frozen: shared by every item without a config


@dataclass(frozen=True)
class ProcessItem:
    """One request's worth of points for one source (see :meth:`Platform.process`)."""

    source: str
    data: Any
    timestamp: float | Sequence[float] | None = None
    config: ProcessConfig | Mapping[str, Any] | None = None


@dataclass(frozen=True)
class SourceSummary:
    """What the platform knows about one source (no activations)."""

    source: str
    points: int
    channels: int
    horizon: int
    target_channel: int
    outcomes: int
    warming_up: bool
    hit_rate: float | None
    rolling_hit_rate: float | None
    scored: int
    last_timestamp: float | None
    median_interarrival_ms: float | None
    in_memory: bool


@dataclass
class _Parsed:
    source: str
    values: NDArray[np.float64]  # (n_points, n_channels)
    timestamps: NDArray[np.float64]  # (n_points,)
    config: ProcessConfig


def _source_key(source: str) -> np.uint64:
    return np.frombuffer(hashlib.blake2b(source.encode(), digest_size=8).digest(), np.uint64)[0]


class Platform:
    """Streaming predictions for many sources, one O(1) step per point.

    Parameters
    ----------
    settings : Settings, optional
        Defaults (``Settings()``: ``NQP_*`` environment variables) when omitted.
    checkpoint_sink : CheckpointSink, optional
        Where sources evicted beyond ``settings.engine.max_sources`` are checkpointed
        (memory when omitted).

    Notes
    -----
    Calls are serialised by a lock: the engine is vectorised across sources, so
    concurrency comes from batching (:meth:`process_many`), not threads.
    """

    def __init__(
        self, settings: Settings | None = None, *, checkpoint_sink: CheckpointSink | None = None
    ) -> None:
        self.settings = settings if settings is not None else Settings()
        self.pipeline = Pipeline(self.settings)
        fingerprint = hashlib.sha256(
            self.settings.model_dump_json(
                include={"seed", "neuromorphic", "quantum", "engine"}
            ).encode()
        ).hexdigest()[:16]
        self.store = SourceStore(
            self.pipeline.factories(),
            max_sources=self.settings.engine.max_sources,
            fingerprint=fingerprint,
            sink=checkpoint_sink,
        )
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ public API
    def process(
        self,
        source: str,
        data: Any,
        timestamp: float | Sequence[float] | None = None,
        config: ProcessConfig | Mapping[str, Any] | None = None,
    ) -> Prediction:
        """Feed one or more new points of ``source`` and return the last point's prediction.

        Parameters
        ----------
        source : str
            Stream name (1-200 printable characters).
        data : float, sequence of float, or sequence of equal-length sequences
            New observations in time order: a number or a list of numbers (univariate
            points) or a list of lists (multivariate points, one list per point).
        timestamp : float or sequence of float, optional
            Seconds since the epoch: one per point, or one for the last point (earlier
            points of the call then share it). Default: now.
        config : ProcessConfig or mapping, optional
            Engine switches; ``horizon`` and ``target_channel`` only on a source's first
            point.

        Raises
        ------
        InvalidInputError
            Naming the problem; no state changes.
        """
        return self.process_many([ProcessItem(source, data, timestamp, config)])[0][-1]

    def process_many(
        self, items: Sequence[ProcessItem | Mapping[str, Any]]
    ) -> list[list[Prediction]]:
        """Process many requests in vectorised waves; one prediction per point.

        Items may name the same source several times; its points are applied in item
        order. Every item is validated before any state changes.

        Returns
        -------
        list of list of Prediction
            ``result[i][k]`` is the prediction for point ``k`` of item ``i``.
        """
        return [
            [Prediction.model_validate(p) for p in preds] for preds in self.process_many_json(items)
        ]

    def process_many_json(
        self, items: Sequence[ProcessItem | Mapping[str, Any]]
    ) -> list[list[dict[str, Any]]]:
        """:meth:`process_many` with each prediction as its JSON-ready dict.

        ``result[i][k] == process_many(items)[i][k].model_dump(mode="json")``; what the
        service and the workers send on, without building a model per point.
        """
        parsed = [self._parse(i, item) for i, item in enumerate(items)]
        with self._lock:
            self._check_against_state(parsed)
            return self._run(parsed)

    def process_many_encoded(
        self, items: Sequence[ProcessItem | Mapping[str, Any]]
    ) -> list[list[EncodedPrediction]]:
        """:meth:`process_many_json` with each prediction already serialised.

        ``result[i][k]`` is ``(prediction_id, sequence, timestamp, direction, confidence,
        body)``, ``body`` being the JSON text of the prediction's dict after its
        ``prediction_id`` and ``source`` members (``'"sequence":…}'``, as
        :class:`nqp.engine.process.PredictionBatch` holds it): what the engine process
        sends the service, without building the whole dict per point.
        """
        parsed = [self._parse(i, item) for i, item in enumerate(items)]
        with self._lock:
            self._check_against_state(parsed)
            return self._run(parsed, encoded=True)

    def prepare_json(
        self, items: Sequence[ProcessItem | Mapping[str, Any]], *, encoded: bool = False
    ) -> Callable[[], list[list[Any]]]:
        """Validate ``items`` now and return the call that processes them.

        For a caller that must know every part of a request is valid before any part runs
        (a request split over several engine processes): this raises
        :class:`~nqp.exceptions.InvalidInputError` exactly as :meth:`process_many_json`
        would, changing nothing; the returned call gives its result (that of
        :meth:`process_many_encoded` with ``encoded``). Nothing else may use the platform
        in between (the check is against the current state).
        """
        parsed = [self._parse(i, item) for i, item in enumerate(items)]
        with self._lock:
            self._check_against_state(parsed)

        def run() -> list[list[Any]]:
            with self._lock:
                return self._run(parsed, encoded=encoded)

        return run

    def checkpoint(self, source: str) -> bytes:
        """The source's complete state as bytes (see :meth:`restore`)."""
        with self._lock:
            try:
                return self.store.checkpoint(source)
            except KeyError:
                raise InvalidInputError(f"Unknown source {source!r}.") from None

    def restore(self, source: str, data: bytes) -> None:
        """Replace ``source``'s state by a checkpoint made under the same settings."""
        with self._lock:
            self.store.restore(source, data)

    def forget(self, source: str) -> bool:
        """Erase everything about ``source``; True if it existed."""
        with self._lock:
            return self.store.drop(source)

    def warm_up(self) -> None:
        """Run every compiled kernel once, on throwaway sources, leaving no state behind.

        numba loads a kernel's machine code from its cache (or compiles it, the first time
        after an install) on the kernel's first call in each process, otherwise inside the
        first requests: on a 2-core machine py-spy put 0.16-0.25 s of an engine process's
        first batch job there, and a fresh ``nqp serve``'s first realtime call took 40-65 ms
        without this, 16-25 ms with it. Called where a process starts serving, before it
        reports ready. Steps three sources through multi-point waves past the
        readout's horizon and a pattern scan, then a wave of scattered rows with mixed
        engine switches, and forgets them; the platform must hold no sources yet.

        Raises
        ------
        RuntimeError
            If the platform already holds sources (their rows must not move).
        """
        with self._lock:
            if len(self.store):
                raise RuntimeError("warm_up() is for a platform that holds no sources yet.")
        eng, neuro = self.settings.engine, self.settings.neuromorphic
        n = 2 * neuro.pattern_interval + eng.horizon + 2
        k = min(3, eng.max_sources)  # none evicted
        steps = np.random.default_rng(self.settings.seed).normal(size=(k, n))
        walk = 100.0 + np.cumsum(steps, axis=1)
        names = [f"nqp-warm-up-{j}" for j in range(k)]  # no "/": no tenant's source
        scattered = [ProcessItem(names[0], [100.0], config={"quantum_enabled": False})]
        if k == 3:  # rows 0 and 2: stepped by row index
            scattered.append(ProcessItem(names[2], [100.5], config={"neuromorphic_enabled": False}))
        try:
            self.process_many_encoded(
                [ProcessItem(nm, walk[j].tolist()) for j, nm in enumerate(names)]
            )
            self.process_many_encoded(scattered)
        finally:
            for name in names:
                self.forget(name)

    def sources(self) -> list[str]:
        """Sources held in memory, least recently used first."""
        with self._lock:
            return self.store.sources()

    def summary(self, source: str) -> SourceSummary:
        """Statistics of one source (restores it if it was evicted)."""
        with self._lock:
            if not self.store.known(source):
                raise InvalidInputError(f"Unknown source {source!r}.")
            in_memory = source in self.store
            row = self.store.acquire([source])[0]
            m = cast(MetaState, self.store.states["meta"])
            scored = int(m.scored[row])
            gaps = m.gaps[row][np.isfinite(m.gaps[row])]
            return SourceSummary(
                source=source,
                points=int(m.seq[row]),
                channels=int(m.n_channels[row]),
                horizon=int(m.horizon[row]),
                target_channel=int(m.target[row]),
                outcomes=int(m.n_outcomes[row]),
                warming_up=bool(m.n_outcomes[row] < self.settings.engine.warmup),
                hit_rate=int(m.hits[row]) / scored if scored else None,
                rolling_hit_rate=None
                if math.isnan(m.hit_rate_ew[row])
                else float(m.hit_rate_ew[row]),
                scored=scored,
                last_timestamp=None if math.isnan(m.last_ts[row]) else float(m.last_ts[row]),
                median_interarrival_ms=float(np.median(gaps) * 1000) if gaps.size else None,
                in_memory=in_memory,
            )

    def rolling_hit_rates(self, sources: Iterable[str]) -> dict[str, float]:
        """Exponentially weighted realised hit rates of the in-memory ``sources`` that have one.

        Cheap (no restore, no summary): meant for refreshing metrics after each batch.
        """
        with self._lock:
            rates = cast(MetaState, self.store.states["meta"]).hit_rate_ew
            out = {}
            for source in sources:
                row = self.store.row(source)
                if row is not None and not math.isnan(rates[row]):
                    out[source] = float(rates[row])
            return out

    # ------------------------------------------------------------------ validation
    def _parse(self, index: int, item: ProcessItem | Mapping[str, Any]) -> _Parsed:
        where = f"items[{index}]"
        if isinstance(item, Mapping):
            unknown = set(item) - {"source", "data", "timestamp", "config"}
            if unknown:
                raise InvalidInputError(f"{where}: unknown field(s) {sorted(unknown)}.")
            if "source" not in item or "data" not in item:
                raise InvalidInputError(f"{where}: 'source' and 'data' are required.")
            item = ProcessItem(
                item["source"], item["data"], item.get("timestamp"), item.get("config")
            )
        source = item.source
        if not isinstance(source, str) or not 0 < len(source) <= _MAX_SOURCE_LEN:
            raise InvalidInputError(
                f"{where}.source must be a string of 1-{_MAX_SOURCE_LEN} characters."
            )
        if not source.isprintable():
            raise InvalidInputError(f"{where}.source must be printable, got {source!r}.")
        values = self._parse_data(f"{where}.data", item.data)
        n = values.shape[0]
        ts = self._parse_timestamps(f"{where}.timestamp", item.timestamp, n)
        try:
            if item.config is None:
                config = _DEFAULT_CONFIG
            elif isinstance(item.config, ProcessConfig):
                config = item.config
            else:
                config = ProcessConfig.model_validate(item.config)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"])
            raise InvalidInputError(f"{where}.config.{field}: {err['msg']}.") from None
        eng = self.settings.engine
        if config.horizon is not None and config.horizon > eng.max_horizon:
            raise InvalidInputError(
                f"{where}.config.horizon must be at most max_horizon={eng.max_horizon}, "
                f"got {config.horizon}."
            )
        if config.target_channel is not None and config.target_channel >= values.shape[1]:
            raise InvalidInputError(
                f"{where}.config.target_channel {config.target_channel} is out of range for "
                f"{values.shape[1]} channel(s)."
            )
        return _Parsed(source, values, ts, config)

    def _parse_data(self, where: str, data: Any) -> NDArray[np.float64]:
        # the common case (decoded JSON of univariate points), checked without numpy; a NaN
        # or an infinity fails the range test and takes the full path, which names it
        if (
            type(data) is list
            and data
            and all(type(v) is float and -MAX_ABS_VALUE <= v <= MAX_ABS_VALUE for v in data)
        ):
            return np.array(data, dtype=np.float64)[:, None]
        if type(data) is float and -MAX_ABS_VALUE <= data <= MAX_ABS_VALUE:  # one point
            return np.array([[data]], dtype=np.float64)
        if isinstance(data, bool | str | bytes) or data is None:
            raise InvalidInputError(f"{where} must be a number or a list of numbers.")
        if isinstance(data, int | float | np.number):
            data = [data]
        try:
            arr = np.asarray(data, dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError(
                f"{where} must be numbers or equal-length lists of numbers."
            ) from None
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[1] == 0:
            raise InvalidInputError(
                f"{where} must hold at least one point (numbers or equal-length lists), "
                f"got shape {arr.shape}."
            )
        if _has_bool(data):
            raise InvalidInputError(f"{where} must hold numbers, not booleans.")
        if arr.shape[1] > self.settings.engine.max_channels:
            raise InvalidInputError(
                f"{where} has {arr.shape[1]} channels; at most "
                f"max_channels={self.settings.engine.max_channels}."
            )
        bad = ~np.isfinite(arr)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise InvalidInputError(
                f"{where} contains a non-finite value (NaN or inf) at point {i}, channel {j}."
            )
        huge = np.abs(arr) > MAX_ABS_VALUE
        if huge.any():
            i, j = (int(v) for v in np.argwhere(huge)[0])
            raise InvalidInputError(
                f"{where} has a value beyond ±{MAX_ABS_VALUE:g} at point {i}, channel {j} "
                "(rescale the series)."
            )
        return arr

    @staticmethod
    def _parse_timestamps(where: str, timestamp: Any, n: int) -> NDArray[np.float64]:
        if timestamp is None:
            return np.array([time.time()]) if n == 1 else np.full(n, time.time())
        if n == 1:  # the common cases, without numpy's checks
            t = timestamp[0] if type(timestamp) is list and len(timestamp) == 1 else timestamp
            if type(t) is float and math.isfinite(t):
                return np.array([t], dtype=np.float64)
        if isinstance(timestamp, bool):
            raise InvalidInputError(f"{where} must be seconds since the epoch.")
        if isinstance(timestamp, int | float | np.number):
            ts = np.full(n, float(timestamp))
        else:
            try:
                ts = np.asarray(timestamp, dtype=np.float64)
            except (TypeError, ValueError):
                raise InvalidInputError(f"{where} must be numbers (seconds).") from None
            if ts.shape != (n,):
                raise InvalidInputError(
                    f"{where} must be one number or one per point ({n}), got shape {ts.shape}."
                )
        if not np.isfinite(ts).all():
            raise InvalidInputError(f"{where} must be finite.")
        if np.any(np.diff(ts) < 0):
            raise InvalidInputError(f"{where} must be non-decreasing.")
        return ts

    def _check_against_state(self, parsed: list[_Parsed]) -> None:
        """Cross-item and against-state checks (read-only)."""
        meta = cast(MetaState, self.store.states["meta"])
        seen: dict[str, tuple[int, int | None, int | None, float]] = {}
        for i, p in enumerate(parsed):
            where = f"items[{i}]"
            if p.source in seen:
                channels, horizon, target, last_ts = seen[p.source]
            elif self.store.known(p.source):
                if p.source not in self.store:  # evicted: read its checkpoint header row
                    info = self._peek_evicted(p.source)
                else:
                    row = self.store.row(p.source)
                    info = (
                        int(meta.n_channels[row]),
                        int(meta.horizon[row]),
                        int(meta.target[row]),
                        float(meta.last_ts[row]),
                    )
                channels, horizon, target, last_ts = info
            else:
                channels, horizon, target, last_ts = p.values.shape[1], None, None, math.nan
            if p.values.shape[1] != channels:
                raise InvalidInputError(
                    f"{where}.data has {p.values.shape[1]} channel(s) but source "
                    f"{p.source!r} has {channels}."
                )
            if horizon is not None:
                if p.config.horizon is not None and p.config.horizon != horizon:
                    raise InvalidInputError(
                        f"{where}.config.horizon is fixed at {horizon} for source {p.source!r}."
                    )
                if p.config.target_channel is not None and p.config.target_channel != target:
                    raise InvalidInputError(
                        f"{where}.config.target_channel is fixed at {target} for source "
                        f"{p.source!r}."
                    )
            else:
                horizon = p.config.horizon or self.settings.engine.horizon
                target = p.config.target_channel or 0
            if not math.isnan(last_ts) and p.timestamps[0] < last_ts:
                raise InvalidInputError(
                    f"{where}.timestamp {p.timestamps[0]} is earlier than source "
                    f"{p.source!r}'s last point ({last_ts})."
                )
            seen[p.source] = (channels, horizon, target, float(p.timestamps[-1]))

    def _peek_evicted(self, source: str) -> tuple[int, int, int, float]:
        state = self.store.peek(source)  # from its checkpoint: nothing restored or evicted
        return (
            int(state["meta.n_channels"]),
            int(state["meta.horizon"]),
            int(state["meta.target"]),
            float(state["meta.last_ts"]),
        )

    # ------------------------------------------------------------------ execution
    def _run(self, parsed: list[_Parsed], *, encoded: bool = False) -> list[list[Any]]:
        if not parsed:  # nothing to predict (max() below needs a queue)
            return []
        eng = self.settings.engine
        C = eng.max_channels
        # queue of (item, point) per source, in item order
        queues: dict[str, list[tuple[int, int]]] = {}
        for i, p in enumerate(parsed):
            queues.setdefault(p.source, []).extend((i, k) for k in range(p.values.shape[0]))
        results: list[list[dict[str, Any] | None]] = [[None] * p.values.shape[0] for p in parsed]
        all_sources = list(queues)
        depth = max(len(q) for q in queues.values())
        for wave in range(depth):
            members = [(s, q[wave]) for s, q in queues.items() if wave < len(q)]
            rows = self.store.acquire([s for s, _ in members], pinned=all_sources)
            # Sources step independently: in row order, a run of consecutive rows (the
            # common case) is stepped in place on views of the store, with no copies.
            order = np.argsort(rows, kind="stable")
            rows = rows[order]
            members = [members[j] for j in order]
            sources = [s for s, _ in members]
            span: slice | NDArray[np.intp] = rows
            if rows.size and rows[-1] - rows[0] == rows.size - 1:
                span = slice(int(rows[0]), int(rows[-1]) + 1)
            meta = cast(MetaState, self.store.states["meta"])
            for (source, (i, _)), row in zip(members, rows, strict=True):
                if meta.seq[row] == 0:  # a new source: fix its layout
                    p = parsed[i]
                    meta.key[row] = _source_key(source)
                    meta.n_channels[row] = p.values.shape[1]
                    meta.horizon[row] = p.config.horizon or eng.horizon
                    meta.target[row] = p.config.target_channel or 0
            B = len(members)
            x = np.zeros((B, C))
            ts = np.empty(B)
            neuro_on = np.empty(B, dtype=bool)
            quantum_on = np.empty(B, dtype=bool)
            for b, (_, (i, k)) in enumerate(members):
                p = parsed[i]
                x[b, : p.values.shape[1]] = p.values[k]
                ts[b] = p.timestamps[k]
                neuro_on[b] = p.config.neuromorphic_enabled
                quantum_on[b] = p.config.quantum_enabled
            start = time.perf_counter()
            # Scattered rows are gathered into copies and put back after the step, except
            # the components the pipeline steps by row index (most of a source's state).
            by_index = not isinstance(span, slice)
            whole = self.pipeline.by_row_index if by_index else frozenset()
            gathered = {
                name: state if name in whole else state.take(span)
                for name, state in self.store.states.items()
            }
            out = self.pipeline.step(
                gathered, x, ts, neuro_on, quantum_on, state_rows=rows if by_index else None
            )
            for name, state in self.store.states.items():
                if gathered[name] is not state:
                    state.put(span, gathered[name])
            elapsed_ms = (time.perf_counter() - start) * 1000.0
            targets = meta.target[rows]
            preds = self._predictions(
                sources, out, x[np.arange(B), targets], elapsed_ms, neuro_on, quantum_on, encoded
            )
            for (_, (i, k)), pred in zip(members, preds, strict=True):
                results[i][k] = pred
        return results  # every slot is filled

    @staticmethod
    def _predictions(
        sources: Sequence[str],
        out: WaveResult,
        values: NDArray[np.float64],
        elapsed_ms: float,
        neuro: NDArray[np.bool_],
        quantum: NDArray[np.bool_],
        encoded: bool = False,
    ) -> list[Any]:
        """One wave's predictions as JSON-ready dicts, row for row, or ``encoded``.

        Each dict is exactly ``Prediction.model_dump(mode="json")`` of the prediction (the
        tests check it): the arrays are converted to Python scalars once per wave, which
        costs a fraction of validating and dumping a model per point. ``encoded`` gives
        :data:`EncodedPrediction` tuples instead (see :meth:`process_many_encoded`).
        """
        seq, ts = out.seq.tolist(), out.timestamp.tolist()
        direction = [_DIRECTION_NAMES[d] for d in out.direction.tolist()]
        confidence, magnitude = out.confidence.tolist(), out.magnitude.tolist()
        expected, uncertainty = out.expected_change.tolist(), out.uncertainty.tolist()
        horizon, horizon_ms = out.horizon.tolist(), out.time_horizon_ms.tolist()
        warming, anomaly = out.warming_up.tolist(), out.anomaly.tolist()
        value = values.tolist()
        neuro_on, quantum_on = neuro.tolist(), quantum.tolist()
        if neuro.any():
            patterns = out.patterns.tolist()
            spike_count, spike_rate = out.spike_count.tolist(), out.spike_rate_hz.tolist()
            stats = out.trace_stats.tolist()
        if quantum.any():
            q_energy, q_coherence = out.q_energy.tolist(), out.q_coherence.tolist()
            q_converged, q_iterations = out.q_converged.tolist(), out.q_iterations.tolist()
            q_residual = out.q_residual.tolist()
        preds: list[Any] = []
        dumps = orjson.dumps
        for b, source in enumerate(sources):
            neuromorphic_results = None
            if neuro_on[b]:
                mean, std, top, active = stats[b]
                neuromorphic_results = {
                    "patterns": dict(zip(KINDS, patterns[b], strict=True)),
                    "spike_analysis": {
                        "spike_count": spike_count[b],
                        "spike_rate": spike_rate[b],
                        "coherence": patterns[b][_SYNC],
                    },
                    "reservoir_state": {
                        "mean": mean,
                        "std": std,
                        "max": top,
                        "active_fraction": active,
                    },
                }
            quantum_results = None
            if quantum_on[b]:
                quantum_results = {
                    "energy": q_energy[b],
                    "phase_coherence": q_coherence[b],
                    "convergence": {
                        "converged": q_converged[b],
                        "iterations": q_iterations[b],
                        "residual": q_residual[b],
                    },
                }
            # Deterministic: the same point of the same source state always gets the same
            # id, so a replayed point (at-least-once streaming) is recognised.
            prediction_id = hashlib.blake2b(
                f"{source}\x00{seq[b]}\x00{ts[b]!r}".encode(), digest_size=16
            ).hexdigest()
            body = {
                "sequence": seq[b],
                "timestamp": ts[b],
                "value": value[b],
                "direction": direction[b],
                "confidence": confidence[b],
                "magnitude": magnitude[b],
                "expected_change": expected[b],
                "uncertainty": uncertainty[b],
                "horizon": horizon[b],
                "time_horizon_ms": horizon_ms[b],
                "warming_up": warming[b],
                "anomaly_score": anomaly[b],
                "neuromorphic_results": neuromorphic_results,
                "quantum_results": quantum_results,
                "processing_time_ms": elapsed_ms,
            }
            if encoded:  # '{"sequence":…}' less its '{'
                text = dumps(body)[1:].decode()
                preds.append((prediction_id, seq[b], ts[b], direction[b], confidence[b], text))
            else:
                preds.append({"prediction_id": prediction_id, "source": source, **body})
        return preds


def _has_bool(data: Any) -> bool:
    if isinstance(data, bool | np.bool_):
        return True
    if isinstance(data, list | tuple):
        return any(_has_bool(d) for d in data)
    return False
