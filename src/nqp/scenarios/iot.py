"""IoT scenario: temperature, pressure and vibration sensors with drift, noise and anomalies.

Each device's telemetry comes from :func:`nqp.datasets.iot_sensors` (daily temperature cycle
with slow drift, AR(1) pressure, heavy-tailed vibration; spikes, level shifts, drifts and
stuck sensors planted at random with exact labels), generated ``chunk_steps`` samples at a
time with ``start_time`` advanced so the daily cycle and the drift run on. Temperature and
vibration noise are independent per sample, so chunks join exactly; pressure is an AR(1)
and each chunk of :func:`~nqp.datasets.iot_sensors` starts from its stationary law, so the
scenario continues the previous chunk's last clean value instead: it draws
``y_0 = φ x_last + σ √(1 − φ²) N(0, 1)`` and adds ``φ^k (y_0 − x_0)`` to the chunk's
``k``-th pressure sample (clean and observed alike; a stuck window is re-frozen at the
corrected reading). The sum is again exactly the AR(1) started at ``x_last``.

Every sensor of every device is its own univariate source, ``"iot.dev<d>.<sensor>"``; a
point's ``anomaly`` flag is the generator's label, and :attr:`IoTScenario.anomalies_` lists
the planted anomalies with their global steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from nqp._validation import Interval, validate_params
from nqp.datasets.sensors import (
    ANOMALY_KINDS,
    SENSOR_NAMES,
    SensorSeries,
    iot_sensors,
)
from nqp.exceptions import InvalidParameterError
from nqp.scenarios.base import ScenarioPoint, validate_timing

__all__ = ["AnomalyEvent", "IoTScenario"]

_PRESSURE_PHI = 0.95  # the AR(1) coefficient of nqp.datasets.sensors
_PRESSURE_MEAN = 101.3


@dataclass(frozen=True)
class AnomalyEvent:
    """A planted anomaly of the stream: source ``source``, steps ``start .. end - 1``.

    ``magnitude`` is :attr:`nqp.datasets.AnomalyRecord.magnitude` (the sensor's unit; for a
    stuck sensor the value it is frozen at, after the pressure continuation).
    """

    source: str
    kind: str
    start: int
    end: int
    magnitude: float


class IoTScenario:
    """Labelled telemetry of ``devices`` devices, one source per sensor.

    Parameters
    ----------
    devices : int, default=2
        Number of devices; each has every sensor of ``sensors``.
    sensors : sequence of str, default=("temperature", "pressure", "vibration")
        Sensors per device.
    sample_interval : float, default=60.0
        Simulated seconds between samples (sets the pace of the daily cycle and drift;
        the stream's timestamps follow ``interval``).
    drift_per_day : float, default=0.1
        Slow temperature drift, °C per simulated day.
    anomaly_rate : float, default=0.004
        Expected anomalies per sample and sensor.
    anomaly_kinds : sequence of str, default=("spike", "level_shift", "drift", "stuck")
    anomaly_duration : (int, int), default=(20, 120)
        Inclusive range of non-spike anomaly lengths, in samples.
    chunk_steps : int, default=1024
        Samples generated per call of :func:`~nqp.datasets.iot_sensors` (>= 32).
    start_time : float, default=0.0
        Timestamp (seconds) of step 0.
    interval : float, default=1.0
        Seconds between steps.
    seed : int or None, default=0
        Seed of the :class:`numpy.random.Generator`.

    Attributes
    ----------
    step_ : int
        Steps taken.
    anomalies_ : list of AnomalyEvent
        Planted anomalies of every chunk generated so far (possibly beyond ``step_``).

    Examples
    --------
    >>> s = IoTScenario(devices=1, seed=3)
    >>> [(p.source, p.anomaly) for p in next(s)]  # doctest: +NORMALIZE_WHITESPACE
    [('iot.dev1.temperature', False), ('iot.dev1.pressure', False),
     ('iot.dev1.vibration', False)]
    """

    name = "iot"

    def __init__(
        self,
        *,
        devices: int = 2,
        sensors: Sequence[str] = SENSOR_NAMES,
        sample_interval: float = 60.0,
        drift_per_day: float = 0.1,
        anomaly_rate: float = 0.004,
        anomaly_kinds: Sequence[str] = ANOMALY_KINDS,
        anomaly_duration: tuple[int, int] = (20, 120),
        chunk_steps: int = 1024,
        start_time: float = 0.0,
        interval: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        self.devices = devices
        self.sensors = sensors
        self.sample_interval = sample_interval
        self.drift_per_day = drift_per_day
        self.anomaly_rate = anomaly_rate
        self.anomaly_kinds = anomaly_kinds
        self.anomaly_duration = anomaly_duration
        self.chunk_steps = chunk_steps
        self.start_time = start_time
        self.interval = interval
        self.seed = seed

    def _start(self) -> None:
        validate_timing("IoTScenario", self.start_time, self.interval, self.seed)
        validate_params(
            "IoTScenario",
            {
                "devices": self.devices,
                "sample_interval": self.sample_interval,
                "chunk_steps": self.chunk_steps,
            },
            {
                "devices": [Interval("int", 1, 1000)],
                "sample_interval": [Interval("real", 0, None, "neither")],
                "chunk_steps": [Interval("int", 32, None)],
            },
        )
        names = (self.sensors,) if isinstance(self.sensors, str) else tuple(self.sensors)
        if not names or len(set(names)) != len(names) or any(n not in SENSOR_NAMES for n in names):
            raise InvalidParameterError(
                "The 'sensors' parameter of IoTScenario must be distinct names from "
                f"{SENSOR_NAMES}. Got {self.sensors!r} instead."
            )
        self._names = names
        self._sources = tuple(
            f"iot.dev{d + 1}.{name}" for d in range(int(self.devices)) for name in names
        )
        self._rng = np.random.default_rng(self.seed)
        self._chunks: list[SensorSeries] = []
        self._pos = 0
        self._chunk_start = 0
        self.step_ = 0
        self.anomalies_: list[AnomalyEvent] = []
        self._refill()  # validates the generator's own parameters at once

    @property
    def sources(self) -> tuple[str, ...]:
        """``"iot.dev<d>.<sensor>"`` for every device and sensor."""
        if not hasattr(self, "step_"):
            self._start()
        return self._sources

    def _refill(self) -> None:
        n = int(self.chunk_steps)
        k0 = self.step_
        chunks = []
        for d in range(int(self.devices)):
            s = iot_sensors(
                n,
                sensors=self._names,
                sample_interval=float(self.sample_interval),
                start_time=k0 * float(self.sample_interval),
                drift_per_day=self.drift_per_day,
                anomaly_rate=self.anomaly_rate,
                anomaly_kinds=self.anomaly_kinds,
                anomaly_duration=self.anomaly_duration,
                seed=int(self._rng.integers(2**63)),
            )
            if "pressure" in self._names:
                self._continue_pressure(s, d)
            for a in s.anomalies:
                source = f"iot.dev{d + 1}.{a.sensor}"
                size = float(s.values[a.start, a.channel]) if a.kind == "stuck" else a.magnitude
                event = AnomalyEvent(source, a.kind, k0 + a.start, k0 + a.end, size)
                self.anomalies_.append(event)
            chunks.append(s)
        self._chunks = chunks
        self._chunk_start = k0
        self._pos = 0

    def _continue_pressure(self, s: SensorSeries, device: int) -> None:
        """Make the chunk's pressure the AR(1) continuation of the previous chunk (in place)."""
        if not self._chunks:
            return
        c = self._names.index("pressure")
        sigma = s.noise_std[c]
        x_last = float(self._chunks[device].clean[-1, c]) - _PRESSURE_MEAN
        phi = _PRESSURE_PHI
        y0 = phi * x_last + sigma * math.sqrt(1.0 - phi * phi) * float(self._rng.standard_normal())
        x0 = float(s.clean[0, c]) - _PRESSURE_MEAN
        fix = (y0 - x0) * phi ** np.arange(s.clean.shape[0])
        s.clean[:, c] += fix  # the arrays are writable numpy arrays of the frozen dataclass
        s.values[:, c] += fix
        for a in s.anomalies:
            if a.channel == c and a.kind == "stuck":
                s.values[a.start : a.end, c] = s.clean[a.start - 1, c]

    def __iter__(self) -> IoTScenario:
        return self

    def __next__(self) -> list[ScenarioPoint]:
        """One reading of every sensor of every device."""
        if not hasattr(self, "step_"):
            self._start()
        if self._pos >= int(self.chunk_steps):
            self._refill()
        k = self._pos
        step = self.step_
        ts = float(self.start_time) + step * float(self.interval)
        out = []
        for d, s in enumerate(self._chunks):
            for c, name in enumerate(self._names):
                v = float(s.values[k, c])
                out.append(
                    ScenarioPoint(f"iot.dev{d + 1}.{name}", step, ts, v, v, bool(s.labels[k, c]))
                )
        self._pos += 1
        self.step_ += 1
        return out
