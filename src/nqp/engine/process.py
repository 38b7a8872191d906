"""A :class:`~nqp.engine.Platform` behind a pipe: in a child process, or in this one.

Why a child process: the gateway's event loop (HTTP parsing, auth, storage) and the engine
(numpy steps that release and retake the GIL hundreds of times a batch) fight over one GIL
when they share a process; measured with ``bench/load.py`` the engine thread then runs ~6×
slower than alone and the gateway never uses a second core. In a child process the engine
has its own interpreter and core, and the gateway's worker thread only waits on a pipe
(GIL released) for each batch.

:class:`EngineHost` offers the calls the service needs: ``process_json`` (predictions as
JSON-ready dicts, made in the engine's process), checkpoints, restore, erase, summaries.
Calls are serialised (one at a time, like the platform's own lock). With
``in_process=True`` the same calls run on a local platform (tests, tools, one-core hosts).

The child is started with the ``forkserver`` method: forked from a clean server process
that has already imported the engine, so starting one costs ~0.1 s rather than a fresh
interpreter's imports, and no thread of the parent is inherited.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.connection
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from nqp.config import Settings
from nqp.engine.platform import Platform, ProcessItem, SourceSummary
from nqp.exceptions import NQPError

__all__ = ["EngineHost", "EngineUnavailableError"]

_PRELOAD = ["nqp.engine.platform"]


class EngineUnavailableError(NQPError, RuntimeError):
    """The engine process has stopped (crashed or closed); the gateway answers 503."""


def _process_json(platform: Platform, items: Sequence[ProcessItem]) -> list[list[dict[str, Any]]]:
    return [[p.model_dump(mode="json") for p in preds] for preds in platform.process_many(items)]


_CALLS: dict[str, Any] = {
    "process_json": _process_json,
    "rolling_hit_rates": lambda p, sources: p.rolling_hit_rates(sources),
    "known": lambda p, source: p.store.known(source),
    "known_of": lambda p, sources: [s for s in sources if p.store.known(s)],
    "sources": lambda p: p.sources(),
    "summary": lambda p, source: p.summary(source),
    "checkpoint": lambda p, source: p.checkpoint(source),
    "checkpoints": lambda p, sources: _checkpoints(p, sources),
    "restore": lambda p, source, data: p.restore(source, data),
    "forget": lambda p, source: p.forget(source),
    "ping": lambda p: True,
}


def _checkpoints(platform: Platform, sources: Iterable[str]) -> dict[str, bytes]:
    """Checkpoints of the sources that still exist (one erased meanwhile is skipped)."""
    out = {}
    for source in sources:
        if platform.store.known(source):
            out[source] = platform.checkpoint(source)
    return out


def _serve(conn: multiprocessing.connection.Connection, settings: Settings) -> None:
    """The child's loop: one call at a time until "stop" or the parent goes away."""
    platform = Platform(settings)
    while True:
        try:
            name, args = conn.recv()
        except (EOFError, OSError):
            return
        if name == "stop":
            conn.send(("ok", None))
            return
        try:
            result = ("ok", _CALLS[name](platform, *args))
        except Exception as exc:  # returned to the caller, raised there
            result = ("error", exc)
        conn.send(result)


class EngineHost:
    """The engine of one gateway, in a child process (default) or in this process.

    Parameters
    ----------
    settings : Settings
        Engine settings (the child builds its :class:`Platform` from them).
    in_process : bool, default=False
        Run the platform here instead (no child): every call then runs in the caller's
        thread, under the GIL it shares with the event loop.
    """

    def __init__(self, settings: Settings, *, in_process: bool = False) -> None:
        self.settings = settings
        self.in_process = in_process
        self._lock = threading.Lock()
        self._platform: Platform | None = None
        self._conn: multiprocessing.connection.Connection | None = None
        self._proc: Any = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Start the engine (idempotent); blocks until it answers."""
        if self.in_process:
            if self._platform is None:
                self._platform = Platform(self.settings)
            return
        if self._proc is not None:
            return
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_serve, args=(child, self.settings), name="nqp-engine", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent
        self._call("ping")

    @property
    def alive(self) -> bool:
        """Whether calls can be served."""
        if self.in_process:
            return self._platform is not None
        return self._proc is not None and self._proc.is_alive()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the engine (its state is gone: checkpoint first)."""
        if self.in_process:
            self._platform = None
            return
        if self._proc is None:
            return
        with contextlib.suppress(EngineUnavailableError):
            self._call("stop")
        self._proc.join(timeout_s)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()
        if self._conn is not None:
            self._conn.close()
        self._proc = self._conn = None

    # ------------------------------------------------------------------ calls
    def _call(self, name: str, *args: Any) -> Any:
        if self.in_process:
            if self._platform is None:
                raise EngineUnavailableError("The engine is not started.")
            with self._lock:
                return _CALLS[name](self._platform, *args)
        with self._lock:
            if self._conn is None:
                raise EngineUnavailableError("The engine is not started.")
            try:
                self._conn.send((name, args))
                status, value = self._conn.recv()
            except (EOFError, OSError, BrokenPipeError):
                raise EngineUnavailableError("The engine process has stopped.") from None
        if status == "error":
            raise value
        return value

    def process_json(self, items: Sequence[ProcessItem]) -> list[list[dict[str, Any]]]:
        """:meth:`Platform.process_many`, each prediction as its JSON-ready dict."""
        return self._call("process_json", list(items))

    def rolling_hit_rates(self, sources: Iterable[str]) -> dict[str, float]:
        """:meth:`Platform.rolling_hit_rates`."""
        return self._call("rolling_hit_rates", list(sources))

    def known(self, source: str) -> bool:
        """Whether the engine holds the source (in memory or evicted to its sink)."""
        return self._call("known", source)

    def known_of(self, sources: Iterable[str]) -> list[str]:
        """Those of ``sources`` the engine holds, in one call."""
        return self._call("known_of", list(sources))

    def sources(self) -> list[str]:
        """:meth:`Platform.sources`."""
        return self._call("sources")

    def summary(self, source: str) -> SourceSummary:
        """:meth:`Platform.summary`."""
        return self._call("summary", source)

    def checkpoints(self, sources: Iterable[str]) -> dict[str, bytes]:
        """Checkpoints of those ``sources`` that exist, in one call."""
        return self._call("checkpoints", list(sources))

    def restore(self, source: str, data: bytes) -> None:
        """:meth:`Platform.restore`."""
        self._call("restore", source, data)

    def forget(self, source: str) -> bool:
        """:meth:`Platform.forget`."""
        return self._call("forget", source)
