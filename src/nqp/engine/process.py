"""A :class:`~nqp.engine.Platform` behind a pipe: in a child process, or in this one.

Why a child process: the gateway's event loop (HTTP parsing, auth, storage) and the engine
(numpy steps that release and retake the GIL hundreds of times a batch) fight over one GIL
when they share a process; measured with ``bench/load.py`` the engine thread then runs ~6×
slower than alone and the gateway never uses a second core. In a child process the engine
has its own interpreter and core, and the gateway's worker thread only waits on a pipe
(GIL released) for each batch.

:class:`EngineHost` offers the calls the service needs: ``process_json`` (each item's
predictions as a :class:`PredictionBatch`: their JSON made once, in the engine's process),
checkpoints, restore, erase, summaries. Calls to one child are serialised (one at a time,
like the platform's own lock); calls to different children run at once. With
``in_process=True`` the same calls run on a local platform (tests, tools, one-core hosts).

With ``processes=N > 1`` the sources are sharded over ``N`` children by a stable hash of
their name (a source always lives in the same child, so its points stay in order). The
service batches each child's sources apart (:func:`shard_of` picks the batcher), so the
children step their own batches independently; a call whose items span several children
is stepped by all of them at once, each item checked by its child before any child runs
its part (a two-phase call), so an invalid item still changes no state anywhere.

The child is started with the ``forkserver`` method: forked from a clean server process
that has already imported the engine, so starting one costs ~0.1 s rather than a fresh
interpreter's imports, and no thread of the parent is inherited.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import math
import multiprocessing
import multiprocessing.connection
import re
import threading
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from nqp.config import Settings
from nqp.engine.platform import EncodedPrediction, Platform, ProcessItem, SourceSummary
from nqp.engine.threads import blas_threads, use_one_blas_thread
from nqp.exceptions import InvalidInputError, NQPError

__all__ = ["EngineHost", "EngineUnavailableError", "PredictionBatch", "shard_of"]

_PRELOAD = ["nqp.engine.platform"]


class EngineUnavailableError(NQPError, RuntimeError):
    """The engine process has stopped (crashed or closed); the gateway answers 503."""


@dataclass(frozen=True, slots=True)
class PredictionBatch:
    """One item's predictions (all of one source): a few columns and each one's JSON.

    What the engine process sends back instead of nested dicts: lists of scalars and
    strings pickle and unpickle ~10x faster, and the JSON is serialised once, in the engine
    process, for the database, the HTTP answer and the job summary alike. The columns are
    the ones the service reads without parsing JSON (storage keys, direction counts).

    Attributes
    ----------
    source : str
        The source every prediction names (the engine's internal name until
        :meth:`renamed`).
    prediction_ids, sequences, timestamps, directions, confidences : list
        Per prediction, in point order: ``prediction_id`` (str), ``sequence`` (int),
        ``timestamp`` (float, seconds since the epoch), ``direction`` (``"up"``,
        ``"down"``, ``"hold"``), ``confidence`` (float in [0, 1]).
    bodies : list of str
        Per prediction, its JSON object after the ``prediction_id`` and ``source``
        members (``'"sequence":…}'``); :meth:`payloads` puts the head back.
    hit_rate : float or None
        The source's exponentially weighted realised hit rate once the engine call that
        made the batch had run (:meth:`Platform.rolling_hit_rates`; None while it has
        none), for the per-source metric without a second engine round trip.

    Examples
    --------
    >>> b = PredictionBatch.from_dicts(
    ...     "t/x", [{"prediction_id": "ab", "source": "t/x", "sequence": 1, "timestamp": 2.0,
    ...              "direction": "up", "confidence": 0.5}])
    >>> b.renamed("x").payloads()
    ['{"prediction_id":"ab","source":"x","sequence":1,"timestamp":2.0,"direction":"up","confidence":0.5}']
    """

    source: str
    prediction_ids: list[str]
    sequences: list[int]
    timestamps: list[float]
    directions: list[str]
    confidences: list[float]
    bodies: list[str]
    hit_rate: float | None = None

    @classmethod
    def from_dicts(
        cls,
        source: str,
        predictions: Iterable[Mapping[str, Any]],
        *,
        hit_rate: float | None = None,
    ) -> PredictionBatch:
        """Encode JSON-ready prediction dicts (``Prediction.model_dump(mode="json")``).

        Each dict's members must start with ``prediction_id`` and ``source`` (the model's
        field order); ``source`` is replaced by the ``source`` given here.
        """
        ids: list[str] = []
        seqs: list[int] = []
        stamps: list[float] = []
        directions: list[str] = []
        confidences: list[float] = []
        bodies: list[str] = []
        for p in predictions:
            members = iter(p)
            if next(members) != "prediction_id" or next(members) != "source":
                raise ValueError("a prediction's first members must be prediction_id, source")
            pid = p["prediction_id"]
            if not pid.isalnum():  # written unescaped by payloads(): JSON-safe characters only
                raise ValueError(f"prediction_id must be alphanumeric, got {pid!r}")
            ids.append(pid)
            seqs.append(p["sequence"])
            stamps.append(p["timestamp"])
            directions.append(p["direction"])
            confidences.append(p["confidence"])
            # the whole object's JSON less its head '{"prediction_id":"…","source":…'
            text = orjson.dumps(p, option=orjson.OPT_SERIALIZE_NUMPY)
            head = 29 + len(pid) + len(orjson.dumps(p["source"]))  # 18 + 11 fixed bytes
            bodies.append(text[head + 1 if text[head] == 44 else head :].decode())  # 44: ','

        return cls(source, ids, seqs, stamps, directions, confidences, bodies, hit_rate)

    def __len__(self) -> int:
        return len(self.bodies)

    def renamed(self, source: str) -> PredictionBatch:
        """The same predictions naming ``source`` (the service's public name)."""
        return dataclasses.replace(self, source=source)

    def payloads(self) -> list[str]:
        """Each prediction's JSON text: ``orjson.dumps`` of its dict, byte for byte."""
        head = '{"prediction_id":"%s","source":' + orjson.dumps(self.source).decode().replace(
            "%", "%%"
        )
        head += ",%s"
        return list(map(head.__mod__, zip(self.prediction_ids, self.bodies, strict=True)))

    def dicts(self) -> list[dict[str, Any]]:
        """Each prediction as its JSON-ready dict (parsed: for the few callers that need one)."""
        return [orjson.loads(text) for text in self.payloads()]


def _encode(
    platform: Platform, items: Sequence[ProcessItem], results: list[list[EncodedPrediction]]
) -> list[PredictionBatch]:
    """The platform's encoded predictions of ``items`` (``process_many_encoded``), one
    batch per item."""
    rates = platform.rolling_hit_rates({item.source for item in items})
    out = []
    for item, preds in zip(items, results, strict=True):
        ids, seqs, stamps, directions, confidences, bodies = map(list, zip(*preds, strict=True))
        out.append(
            PredictionBatch(
                item.source,
                ids,
                seqs,
                stamps,
                directions,
                confidences,
                bodies,
                rates.get(item.source),
            )
        )
    return out


_CALLS: dict[str, Any] = {
    "process_json": lambda p, items: _encode(p, items, p.process_many_encoded(items)),
    "rolling_hit_rates": lambda p, sources: p.rolling_hit_rates(sources),
    "known_of": lambda p, sources: [s for s in sources if p.store.known(s)],
    "sources": lambda p: p.sources(),
    "summary": lambda p, source: p.summary(source),
    "checkpoints": lambda p, sources: _checkpoints(p, sources),
    "restore": lambda p, source, data: p.restore(source, data),
    "forget": lambda p, source: p.forget(source),
    "ping": lambda p: True,
    "blas_threads": lambda p: blas_threads(),
}


def _checkpoints(platform: Platform, sources: Iterable[str]) -> dict[str, bytes]:
    """Checkpoints of the sources that still exist (one erased meanwhile is skipped)."""
    out = {}
    for source in sources:
        if platform.store.known(source):
            out[source] = platform.checkpoint(source)
    return out


def _serve(conn: multiprocessing.connection.Connection, settings: Settings) -> None:
    """The child's loop: one call at a time until "stop" or the parent goes away.

    ``("prepare", items)`` is the first phase of a sharded request: the child validates
    its items and answers ``("ready", None)`` or the error, then waits for ``"go"`` (run
    them, answer the result) or ``"abort"`` (drop them, answer ``None``).
    """
    use_one_blas_thread()
    platform = Platform(settings)
    platform.warm_up()  # kernels loaded before the first request, not during it
    # Out of the collector's scans from now on: full collections traversing the start-up
    # heap stalled a wave every few waves (one took 125 ms with the service's modules loaded).
    gc.collect()
    gc.freeze()
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        if name == "stop":
            conn.send(("ok", None))
            return
        result: tuple[str, Any]
        try:
            if name == "prepare":
                run = platform.prepare_json(*args, encoded=True)
                conn.send(("ready", None))
                decision, _ = conn.recv()
                result = ("ok", _encode(platform, args[0], run()) if decision == "go" else None)
            else:
                result = ("ok", _CALLS[name](platform, *args))
        except (EOFError, OSError):
            return
        except Exception as exc:  # returned to the caller, raised there
            result = ("error", exc)
        conn.send(result)


def shard_of(source: str, shards: int) -> int:
    """The engine process (0..shards-1) that owns ``source``: stable across restarts."""
    return zlib.crc32(source.encode()) % shards if shards > 1 else 0


class EngineHost:
    """The engine of one gateway: in child processes (default) or in this process.

    Parameters
    ----------
    settings : Settings
        Engine settings (each child builds its :class:`Platform` from them; with several
        children ``engine.max_sources`` is split between them).
    in_process : bool, default=False
        Run one platform here instead (no child): every call then runs in the caller's
        thread, under the GIL it shares with the event loop.
    processes : int, default=1
        Engine processes, each owning the sources that :func:`shard_of` gives it.
    """

    def __init__(self, settings: Settings, *, in_process: bool = False, processes: int = 1) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}.")
        self.settings = settings
        self.in_process = in_process
        self.processes = 1 if in_process else processes
        # one lock per engine process (pipe): calls to different shards run at once
        self._locks = [threading.Lock() for _ in range(self.processes)]
        self._platform: Platform | None = None
        self._conns: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the engine (idempotent); blocks until it answers."""
        if self.in_process:
            if self._platform is None:
                self._platform = Platform(self.settings)
            return
        if self._procs:
            return
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        settings = self.settings
        if self.processes > 1:
            share = math.ceil(settings.engine.max_sources / self.processes)
            engine = settings.engine.model_copy(update={"max_sources": share})
            settings = settings.model_copy(update={"engine": engine})
        for k in range(self.processes):
            parent, child = ctx.Pipe()
            proc = ctx.Process(
                target=_serve, args=(child, settings), name=f"nqp-engine-{k}", daemon=True
            )
            proc.start()
            child.close()
            self._procs.append(proc)
            self._conns.append(parent)
        self._call_all("ping")

    @property
    def alive(self) -> bool:
        """Whether calls can be served."""
        if self.in_process:
            return self._platform is not None
        return bool(self._procs) and all(p.is_alive() for p in self._procs)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the engine (its state is gone: checkpoint first)."""
        if self.in_process:
            self._platform = None
            return
        if not self._procs:
            return
        with contextlib.suppress(EngineUnavailableError):
            self._call_all("stop")
        for proc in self._procs:
            proc.join(timeout_s)
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    # ------------------------------------------------------------------ calls
    def _exchange(self, calls: dict[int, tuple[str, tuple[Any, ...]]]) -> dict[int, Any]:
        """Send each shard its message, then collect every answer (holding the lock)."""
        if not self._conns:
            raise EngineUnavailableError("The engine is not started.")
        try:
            for k, message in calls.items():
                self._conns[k].send(message)
            return {k: self._conns[k].recv() for k in calls}
        except (EOFError, OSError, BrokenPipeError):
            raise EngineUnavailableError("The engine process has stopped.") from None

    def _call_shards(self, calls: dict[int, tuple[Any, ...]], name: str) -> dict[int, Any]:
        """``name`` on each shard of ``calls`` with its arguments; errors re-raised here."""
        if self.in_process:
            if self._platform is None:
                raise EngineUnavailableError("The engine is not started.")
            with self._holding(calls):
                return {0: _CALLS[name](self._platform, *calls[0])}
        with self._holding(calls):
            answers = self._exchange({k: (name, args) for k, args in calls.items()})
        for status, value in answers.values():
            if status == "error":
                raise value
        return {k: value for k, (_, value) in answers.items()}

    @contextlib.contextmanager
    def _holding(self, shards: Iterable[int]) -> Iterator[None]:
        """Hold the locks of ``shards`` (taken in ascending order: no deadlock)."""
        with contextlib.ExitStack() as stack:
            for k in sorted(shards):
                stack.enter_context(self._locks[k])
            yield

    def _call_all(self, name: str, *args: Any) -> list[Any]:
        shards = range(1 if self.in_process else len(self._conns) or self.processes)
        return list(self._call_shards(dict.fromkeys(shards, args), name).values())

    def _call_one(self, source: str, name: str, *args: Any) -> Any:
        k = shard_of(source, self.processes)
        return self._call_shards({k: (source, *args)}, name)[k]

    def _by_shard(self, sources: Iterable[str]) -> dict[int, list[str]]:
        groups: dict[int, list[str]] = {}
        for source in sources:
            groups.setdefault(shard_of(source, self.processes), []).append(source)
        return groups

    def process_json(self, items: Sequence[ProcessItem]) -> list[PredictionBatch]:
        """:meth:`Platform.process_many_json`, one :class:`PredictionBatch` per item.

        Several engine processes step their shares of ``items`` at once; if any share is
        invalid, none is run and the error of the lowest-numbered invalid item is raised
        (its ``items[i]`` index refers to ``items``, as from one platform).
        """
        items = list(items)
        if self.processes == 1:
            return self._call_shards({0: (items,)}, "process_json")[0]
        positions: dict[int, list[int]] = {}
        for i, item in enumerate(items):
            positions.setdefault(shard_of(item.source, self.processes), []).append(i)
        if len(positions) == 1:  # one shard holds every source: a plain call
            ((k, _),) = positions.items()
            return self._call_shards({k: (items,)}, "process_json")[k]
        with self._holding(positions):
            ready = self._exchange(
                {k: ("prepare", ([items[i] for i in pos],)) for k, pos in positions.items()}
            )
            failed = {k: v for k, (status, v) in ready.items() if status == "error"}
            decision = "abort" if failed else "go"
            answers = self._exchange(
                {k: (decision, ()) for k, (status, _) in ready.items() if status == "ready"}
            )
        if failed:
            raise _first_error(failed, positions)
        out: list[Any] = [None] * len(items)
        for k, (status, value) in answers.items():
            if status == "error":  # failed while running: the engine's own fault
                raise value
            for i, preds in zip(positions[k], value, strict=True):
                out[i] = preds
        return out

    def rolling_hit_rates(self, sources: Iterable[str]) -> dict[str, float]:
        """:meth:`Platform.rolling_hit_rates`."""
        out: dict[str, float] = {}
        for part in self._call_shards(
            {k: (group,) for k, group in self._by_shard(sources).items()}, "rolling_hit_rates"
        ).values():
            out.update(part)
        return out

    def blas_threads(self) -> list[int]:
        """BLAS threads each engine process may use (:func:`nqp.engine.threads.blas_threads`)."""
        return self._call_all("blas_threads")

    def known(self, source: str) -> bool:
        """Whether the engine holds the source (in memory or evicted to its sink)."""
        return bool(self.known_of([source]))

    def known_of(self, sources: Iterable[str]) -> list[str]:
        """Those of ``sources`` the engine holds, in their order, in one call per shard."""
        sources = list(sources)
        held: set[str] = set()
        for part in self._call_shards(
            {k: (group,) for k, group in self._by_shard(sources).items()}, "known_of"
        ).values():
            held.update(part)
        return [s for s in sources if s in held]

    def sources(self) -> list[str]:
        """:meth:`Platform.sources` of every engine process (each least recently used first)."""
        return [s for part in self._call_all("sources") for s in part]

    def summary(self, source: str) -> SourceSummary:
        """:meth:`Platform.summary`."""
        return self._call_one(source, "summary")

    def checkpoints(self, sources: Iterable[str]) -> dict[str, bytes]:
        """Checkpoints of those ``sources`` that exist, in one call per shard."""
        out: dict[str, bytes] = {}
        for part in self._call_shards(
            {k: (group,) for k, group in self._by_shard(sources).items()}, "checkpoints"
        ).values():
            out.update(part)
        return out

    def restore(self, source: str, data: bytes) -> None:
        """:meth:`Platform.restore`."""
        self._call_one(source, "restore", data)

    def forget(self, source: str) -> bool:
        """:meth:`Platform.forget`."""
        return self._call_one(source, "forget")


def _first_error(failed: dict[int, BaseException], positions: dict[int, list[int]]) -> Exception:
    """The failed shards' error for the lowest request index, renumbered to the request."""
    best: tuple[int, BaseException] | None = None
    for k, exc in failed.items():
        local = _item_index(exc)
        index = positions[k][local] if local is not None else positions[k][0]
        if best is None or index < best[0]:
            best = (index, exc)
    assert best is not None
    index, exc = best
    local = _item_index(exc)
    if isinstance(exc, InvalidInputError) and local is not None:
        text = str(exc).replace(f"items[{local}]", f"items[{index}]", 1)
        return InvalidInputError(text)
    return exc if isinstance(exc, Exception) else RuntimeError(str(exc))


def _item_index(exc: BaseException) -> int | None:
    match = re.match(r"items\[(\d+)\]", str(exc))
    return int(match.group(1)) if match else None
