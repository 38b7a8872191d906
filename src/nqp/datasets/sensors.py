"""Synthetic sensor telemetry with labelled anomalies, and machine run-to-failure data.

:func:`iot_sensors` produces environmental telemetry (temperature, pressure, vibration) with
anomalies planted at known places; :func:`machine_degradation` produces machine telemetry
degrading toward a known failure time. Both return the clean signal and the labels next to
the observed values so detectors and prognostics can be scored exactly.

Sensor models (``k`` = sample index, ``t_k = start_time + k * sample_interval`` seconds,
``sigma`` = the sensor's noise std, see ``noise_std``):

- ``temperature`` (°C): ``20 + 5 sin(2π (t_k − 9 h) / 24 h) + drift_per_day · t_k / 1 day
  + sigma · N(0, 1)``; daily cycle peaking at 15:00, default ``sigma = 0.2``.
- ``pressure`` (kPa): ``101.3 + x_k`` with ``x_k = φ x_{k−1} + sigma √(1 − φ²) N(0, 1)``,
  ``φ = 0.95``, started stationary: an AR(1) whose stationary std is ``sigma`` (default 0.5).
- ``vibration`` (mm/s RMS): ``2.0 + sigma · T_k`` with ``T_k`` Student-t with 5 degrees of
  freedom scaled to unit variance (heavy tails, excess kurtosis 6), default ``sigma = 0.1``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
from numpy.typing import NDArray
from scipy.signal import lfilter

from nqp._validation import Interval, validate_params
from nqp.exceptions import InvalidParameterError

__all__ = [
    "ANOMALY_KINDS",
    "DEFAULT_NOISE_STD",
    "MACHINE_CHANNELS",
    "SENSOR_NAMES",
    "SPIKE_MIN_SIGMA",
    "AnomalyRecord",
    "AnomalySpec",
    "DegradationSeries",
    "SensorSeries",
    "iot_sensors",
    "machine_degradation",
]

SENSOR_NAMES: tuple[str, ...] = ("temperature", "pressure", "vibration")
ANOMALY_KINDS: tuple[str, ...] = ("spike", "level_shift", "drift", "stuck")
#: Default noise std of each sensor, in its unit (°C, kPa, mm/s).
DEFAULT_NOISE_STD: Mapping[str, float] = MappingProxyType(
    {"temperature": 0.2, "pressure": 0.5, "vibration": 0.1}
)
#: A spike sits at least this many noise stds away from the median of its neighbours.
SPIKE_MIN_SIGMA: float = 6.0
_SPIKE_MAX_SIGMA = 10.0
_SPIKE_HALF_WINDOW = 5  # neighbours each side used for the local median of a spike
_GUARD = 10  # random anomalies keep this many clean samples between them
_PRESSURE_PHI = 0.95
_VIBRATION_DF = 5.0
_DAY = 86_400.0

#: Machine telemetry channels of :func:`machine_degradation`.
MACHINE_CHANNELS: tuple[str, ...] = ("vibration_rms", "temperature", "current")


@dataclass(frozen=True)
class AnomalySpec:
    """An anomaly to plant with :func:`iot_sensors` (``anomalies=[...]``).

    Parameters
    ----------
    kind : {"spike", "level_shift", "drift", "stuck"}
    sensor : str
        Name of the sensor, one of the generated ``sensors``.
    start : int
        First affected sample.
    duration : int, default=1
        Number of affected samples (must be 1 for a spike).
    magnitude : float, default=6.0
        Signed size in noise stds of that sensor: the spike's distance from the local median
        (``|magnitude| >= SPIKE_MIN_SIGMA``), the level shift's offset, or the offset a drift
        ramps up to at its last sample. Ignored by ``stuck``.
    """

    kind: str
    sensor: str
    start: int
    duration: int = 1
    magnitude: float = 6.0


@dataclass(frozen=True)
class AnomalyRecord:
    """A planted anomaly, as reported by :func:`iot_sensors`.

    Attributes
    ----------
    kind : str
        ``"spike"``, ``"level_shift"``, ``"drift"`` or ``"stuck"``.
    sensor : str
        Sensor name; ``channel`` is its column in ``values``.
    channel : int
    start, end : int
        Affected samples ``start .. end - 1`` (``end`` exclusive); exactly where labels are set.
    magnitude : float
        In the sensor's unit: spike = signed distance from the median of its
        ``±5`` neighbours; level_shift = added offset; drift = offset reached at ``end - 1``;
        stuck = the value the sensor is frozen at (its clean reading at ``start - 1``).
    """

    kind: str
    sensor: str
    channel: int
    start: int
    end: int
    magnitude: float


@dataclass(frozen=True, eq=False)
class SensorSeries:
    """Output of :func:`iot_sensors`.

    Attributes
    ----------
    values : ndarray of shape (n_steps, n_sensors), float64
        Observed telemetry, anomalies included.
    clean : ndarray of shape (n_steps, n_sensors), float64
        The same telemetry without anomalies (identical outside the labelled samples).
    timestamps : ndarray of shape (n_steps,), float64
        Seconds: ``start_time + k * sample_interval``.
    labels : ndarray of shape (n_steps, n_sensors), bool
        True exactly on the samples of the planted anomalies.
    anomalies : tuple of AnomalyRecord
        Sorted by (start, channel).
    sensors : tuple of str
        Column names of ``values``.
    noise_std : tuple of float
        Noise std of each sensor, in its unit.
    """

    values: NDArray[np.float64]
    clean: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    labels: NDArray[np.bool_]
    anomalies: tuple[AnomalyRecord, ...]
    sensors: tuple[str, ...]
    noise_std: tuple[float, ...]


@dataclass(frozen=True, eq=False)
class DegradationSeries:
    """Output of :func:`machine_degradation`.

    Attributes
    ----------
    values : ndarray of shape (n_steps, 3), float64
        Observed ``vibration_rms`` (mm/s), ``temperature`` (°C), ``current`` (A).
    health : ndarray of shape (n_steps,), float64
        Latent health index (0 = new, ``threshold`` = failed); noise free.
    timestamps : ndarray of shape (n_steps,), float64
        Seconds: ``k * sample_interval``.
    rul : ndarray of shape (n_steps,), int64
        Remaining useful life in samples, ``max(failure_time - k, 0)``.
    failed : ndarray of shape (n_steps,), bool
        ``k >= failure_time``.
    failure_time : int
        Sample index at which ``health`` reaches ``threshold``.
    threshold : float
    channels : tuple of str
    """

    values: NDArray[np.float64]
    health: NDArray[np.float64]
    timestamps: NDArray[np.float64]
    rul: NDArray[np.int64]
    failed: NDArray[np.bool_]
    failure_time: int
    threshold: float
    channels: tuple[str, ...]


def _clean_telemetry(
    sensors: tuple[str, ...],
    t: NDArray[np.float64],
    noise: tuple[float, ...],
    drift_per_day: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    n = t.size
    out = np.empty((n, len(sensors)))
    for c, (name, sigma) in enumerate(zip(sensors, noise, strict=True)):
        if name == "temperature":
            cycle = 5.0 * np.sin(2.0 * np.pi * (t - 9.0 * 3600.0) / _DAY)
            out[:, c] = 20.0 + cycle + drift_per_day * t / _DAY + sigma * rng.standard_normal(n)
        elif name == "pressure":
            phi = _PRESSURE_PHI
            eps = sigma * math.sqrt(1.0 - phi * phi) * rng.standard_normal(n)
            eps[0] = sigma * rng.standard_normal()  # x_0 from the stationary law
            out[:, c] = 101.3 + lfilter([1.0], [1.0, -phi], eps)  # x_k = phi x_{k-1} + eps_k
        else:  # vibration
            df = _VIBRATION_DF
            tt = rng.standard_t(df, n) * math.sqrt((df - 2.0) / df)
            out[:, c] = 2.0 + sigma * tt
    return out


def _random_specs(
    sensors: tuple[str, ...],
    n_steps: int,
    kinds: tuple[str, ...],
    rate: float,
    duration: tuple[int, int],
    rng: np.random.Generator,
) -> list[AnomalySpec]:
    specs: list[AnomalySpec] = []
    for name in sensors:
        taken = np.zeros(n_steps, dtype=bool)
        for _ in range(int(rng.poisson(rate * n_steps))):
            kind = kinds[int(rng.integers(len(kinds)))]
            dur = 1 if kind == "spike" else int(rng.integers(duration[0], duration[1] + 1))
            sign = 1.0 if rng.random() < 0.5 else -1.0
            if kind == "spike":
                mag = sign * rng.uniform(SPIKE_MIN_SIGMA, _SPIKE_MAX_SIGMA)
            elif kind == "level_shift":
                mag = sign * rng.uniform(3.0, 6.0)
            elif kind == "drift":
                mag = sign * rng.uniform(4.0, 8.0)
            else:
                mag = 0.0
            hi = n_steps - dur - _GUARD
            for _attempt in range(50):  # place it clear of the others, or give up
                if hi < _GUARD:
                    break
                start = int(rng.integers(_GUARD, hi + 1))
                if not taken[start - _GUARD : start + dur + _GUARD].any():
                    taken[start : start + dur] = True
                    specs.append(AnomalySpec(kind, name, start, dur, float(mag)))
                    break
    return specs


def _check_specs(
    anomalies: Sequence[AnomalySpec], sensors: tuple[str, ...], n_steps: int
) -> list[AnomalySpec]:
    def bad(why: str, spec: object) -> InvalidParameterError:
        return InvalidParameterError(
            f"The 'anomalies' parameter of iot_sensors {why}. Got {spec!r} instead."
        )

    specs = []
    taken = np.zeros((n_steps, len(sensors)), dtype=bool)
    for spec in anomalies:
        if not isinstance(spec, AnomalySpec):
            raise bad("must hold AnomalySpec instances", spec)
        if spec.kind not in ANOMALY_KINDS:
            raise bad(f"needs kind in {ANOMALY_KINDS}", spec)
        if spec.sensor not in sensors:
            raise bad(f"needs sensor in {sensors}", spec)
        if not Interval("int", 1, None).accepts(spec.duration) or (
            spec.kind == "spike" and spec.duration != 1
        ):
            raise bad("needs duration >= 1 (exactly 1 for a spike)", spec)
        low = 1 if spec.kind == "stuck" else 0
        if not Interval("int", low, n_steps - spec.duration).accepts(spec.start):
            raise bad(f"needs {low} <= start <= n_steps - duration", spec)
        if not Interval("real", None, None).accepts(spec.magnitude) or (
            spec.kind == "spike" and abs(spec.magnitude) < SPIKE_MIN_SIGMA
        ):
            raise bad(
                f"needs a finite magnitude (|magnitude| >= {SPIKE_MIN_SIGMA} for spikes)", spec
            )
        c = sensors.index(spec.sensor)
        window = slice(spec.start, spec.start + spec.duration)
        if taken[window, c].any():
            raise bad("must not hold overlapping anomalies on one sensor", spec)
        taken[window, c] = True
        specs.append(spec)
    return specs


def _plant(
    values: NDArray[np.float64],
    clean: NDArray[np.float64],
    labels: NDArray[np.bool_],
    spec: AnomalySpec,
    sensors: tuple[str, ...],
    noise: tuple[float, ...],
) -> AnomalyRecord:
    c = sensors.index(spec.sensor)
    s, e = spec.start, spec.start + spec.duration
    size = spec.magnitude * noise[c]
    if spec.kind == "spike":
        lo, hi = max(0, s - _SPIKE_HALF_WINDOW), min(values.shape[0], s + _SPIKE_HALF_WINDOW + 1)
        neighbours = np.r_[clean[lo:s, c], clean[s + 1 : hi, c]]
        values[s, c] = np.median(neighbours) + size
        magnitude = size
    elif spec.kind == "level_shift":
        values[s:e, c] += size
        magnitude = size
    elif spec.kind == "drift":
        values[s:e, c] += size * np.arange(1, e - s + 1) / (e - s)
        magnitude = size
    else:  # stuck: frozen at the last good reading
        magnitude = float(clean[s - 1, c])
        values[s:e, c] = magnitude
    labels[s:e, c] = True
    return AnomalyRecord(spec.kind, spec.sensor, c, s, e, float(magnitude))


def iot_sensors(
    n_steps: int,
    *,
    sensors: Sequence[str] = SENSOR_NAMES,
    sample_interval: float = 60.0,
    start_time: float = 0.0,
    noise_std: Mapping[str, float] | None = None,
    drift_per_day: float = 0.1,
    anomaly_rate: float = 0.002,
    anomaly_kinds: Sequence[str] = ANOMALY_KINDS,
    anomaly_duration: tuple[int, int] = (20, 120),
    anomalies: Sequence[AnomalySpec] | None = None,
    seed: int | None = 0,
) -> SensorSeries:
    """Generate labelled IoT telemetry: temperature, pressure and vibration with anomalies.

    The clean signals follow the sensor models in the module docstring. Anomalies are then
    written over them:

    - ``spike``: one sample set to the median of its ``±5`` clean neighbours plus
      ``m · sigma``, ``|m| >= 6`` (random ones: ``|m| ~ U[6, 10]``, random sign);
    - ``level_shift``: a constant offset ``m · sigma`` held over the whole window
      (random: ``|m| ~ U[3, 6]``); the sensor returns to normal after it;
    - ``drift``: a linear ramp ``m · sigma · (j + 1) / duration`` over the window
      (random: ``|m| ~ U[4, 8]``), then back to normal;
    - ``stuck``: the sensor repeats its clean reading of the sample before the window.

    Spikes are measured against clean neighbours: keep explicit anomalies on the same sensor
    more than 5 samples away from a spike (random ones always are).

    Random anomalies: each sensor gets ``Poisson(anomaly_rate · n_steps)`` of them, kind
    uniform over ``anomaly_kinds``, duration uniform in ``anomaly_duration`` (spikes: 1), at
    uniform positions at least 10 clean samples from each other and from both ends; one
    that finds no room in 50 tries is dropped (only for very dense rates). The clean signal
    and the anomalies use independent random streams, so the clean series does not depend
    on the anomaly settings.

    Parameters
    ----------
    n_steps : int
        Number of samples.
    sensors : sequence of str, default=("temperature", "pressure", "vibration")
        Which sensors, in column order (distinct names from :data:`SENSOR_NAMES`).
    sample_interval : float, default=60.0
        Seconds between samples.
    start_time : float, default=0.0
        Seconds since midnight of day 0 of the first sample (sets the phase of the cycle).
    noise_std : mapping of str to float, optional
        Override the noise std of some sensors (defaults :data:`DEFAULT_NOISE_STD`).
    drift_per_day : float, default=0.1
        Slow temperature drift in °C per day.
    anomaly_rate : float, default=0.002
        Expected random anomalies per sample and sensor.
    anomaly_kinds : sequence of str, default=ANOMALY_KINDS
        Kinds drawn for random anomalies.
    anomaly_duration : (int, int), default=(20, 120)
        Inclusive range of durations of random non-spike anomalies, in samples.
    anomalies : sequence of AnomalySpec, optional
        Plant exactly these (and no random ones). Windows on one sensor must not overlap.
    seed : int or None, default=0
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    SensorSeries

    Raises
    ------
    InvalidParameterError
        Naming the offending parameter.

    Examples
    --------
    >>> s = iot_sensors(1440, seed=3)
    >>> s.values.shape, s.labels.shape, s.sensors
    ((1440, 3), (1440, 3), ('temperature', 'pressure', 'vibration'))
    >>> all(s.labels[a.start : a.end, a.channel].all() for a in s.anomalies)
    True
    """
    validate_params(
        "iot_sensors",
        {
            "n_steps": n_steps,
            "sample_interval": sample_interval,
            "start_time": start_time,
            "drift_per_day": drift_per_day,
            "anomaly_rate": anomaly_rate,
            "seed": seed,
        },
        {
            "n_steps": [Interval("int", 2, None)],
            "sample_interval": [Interval("real", 0, None, "neither")],
            "start_time": [Interval("real", None, None)],
            "drift_per_day": [Interval("real", None, None)],
            "anomaly_rate": [Interval("real", 0, 1)],
            "seed": [Interval("int", 0, None), None],
        },
    )
    names = tuple(sensors) if not isinstance(sensors, str) else (sensors,)
    if not names or len(set(names)) != len(names) or any(s not in SENSOR_NAMES for s in names):
        raise InvalidParameterError(
            "The 'sensors' parameter of iot_sensors must be distinct names from "
            f"{SENSOR_NAMES}. Got {sensors!r} instead."
        )
    kinds = tuple(anomaly_kinds) if not isinstance(anomaly_kinds, str) else (anomaly_kinds,)
    if not kinds or any(k not in ANOMALY_KINDS for k in kinds):
        raise InvalidParameterError(
            "The 'anomaly_kinds' parameter of iot_sensors must be names from "
            f"{ANOMALY_KINDS}. Got {anomaly_kinds!r} instead."
        )
    try:
        d_lo, d_hi = anomaly_duration
    except (TypeError, ValueError):
        d_lo, d_hi = 0, -1  # rejected below
    if not (
        Interval("int", 1, None).accepts(d_lo)
        and Interval("int", 1, None).accepts(d_hi)
        and d_lo <= d_hi
    ):
        raise InvalidParameterError(
            "The 'anomaly_duration' parameter of iot_sensors must be (low, high) ints with "
            f"1 <= low <= high. Got {anomaly_duration!r} instead."
        )
    noise_map = dict(DEFAULT_NOISE_STD)
    for key, val in (noise_std or {}).items():
        if key not in SENSOR_NAMES or not Interval("real", 0, None, "neither").accepts(val):
            raise InvalidParameterError(
                "The 'noise_std' parameter of iot_sensors must map sensor names to stds > 0. "
                f"Got {noise_std!r} instead."
            )
        noise_map[key] = float(val)
    noise = tuple(noise_map[s] for s in names)

    base_ss, anomaly_ss = np.random.SeedSequence(seed).spawn(2)
    t = start_time + sample_interval * np.arange(n_steps, dtype=np.float64)
    clean = _clean_telemetry(names, t, noise, drift_per_day, np.random.default_rng(base_ss))
    if anomalies is None:
        specs = _random_specs(
            names,
            n_steps,
            kinds,
            anomaly_rate,
            (int(d_lo), int(d_hi)),
            np.random.default_rng(anomaly_ss),
        )
    else:
        specs = _check_specs(anomalies, names, n_steps)

    values = clean.copy()
    labels = np.zeros(clean.shape, dtype=bool)
    records = [_plant(values, clean, labels, s, names, noise) for s in specs]
    records.sort(key=lambda r: (r.start, r.channel))
    return SensorSeries(
        values=values,
        clean=clean,
        timestamps=t,
        labels=labels,
        anomalies=tuple(records),
        sensors=names,
        noise_std=noise,
    )


def machine_degradation(
    n_steps: int,
    *,
    failure_time: int | None = None,
    initial_health: float = 0.05,
    threshold: float = 1.0,
    sample_interval: float = 3600.0,
    noise_level: float = 1.0,
    seed: int | None = 0,
) -> DegradationSeries:
    r"""Generate machine telemetry that degrades exponentially toward a known failure.

    The latent health index grows exponentially (the usual single-exponential degradation
    model, e.g. Gebraeel et al. 2005, IIE Transactions 37(6)):

    .. math:: h_k = h_0 \exp(\lambda k), \quad \lambda = \ln(\text{threshold} / h_0) / k_f,

    so that ``h`` reaches ``threshold`` exactly at ``k_f = failure_time``. Observed channels
    are linear in ``h`` plus Gaussian noise (scaled by ``noise_level``):

    - ``vibration_rms`` (mm/s) = ``1.0 + 4.0 h + 0.05 (1 + h) N(0, 1)`` (noise grows with wear);
    - ``temperature`` (°C) = ``45 + 20 h + 0.5 N(0, 1)``;
    - ``current`` (A) = ``10 + 3 h + 0.1 N(0, 1)``.

    ``failure_time`` may lie beyond the series (censored run: the machine has not failed yet);
    samples at or after it are marked ``failed`` and their health keeps growing.

    Parameters
    ----------
    n_steps : int
        Number of samples.
    failure_time : int, optional
        Sample index of failure (>= 1); default ``n_steps - 1`` (the last sample).
    initial_health : float, default=0.05
        ``h_0``, in (0, threshold).
    threshold : float, default=1.0
        Health index at failure.
    sample_interval : float, default=3600.0
        Seconds between samples.
    noise_level : float, default=1.0
        Multiplier of every channel's noise std (>= 0; 0 gives noise-free channels).
    seed : int or None, default=0
        Seed of the :class:`numpy.random.Generator`.

    Returns
    -------
    DegradationSeries

    Examples
    --------
    >>> d = machine_degradation(500, failure_time=400)
    >>> d.values.shape, float(d.health[400]), int(d.rul[0]), int(d.rul[450])
    ((500, 3), 1.0, 400, 0)
    """
    validate_params(
        "machine_degradation",
        {
            "n_steps": n_steps,
            "failure_time": failure_time,
            "threshold": threshold,
            "sample_interval": sample_interval,
            "noise_level": noise_level,
            "seed": seed,
        },
        {
            "n_steps": [Interval("int", 2, None)],
            "failure_time": [Interval("int", 1, None), None],
            "threshold": [Interval("real", 0, None, "neither")],
            "sample_interval": [Interval("real", 0, None, "neither")],
            "noise_level": [Interval("real", 0, None)],
            "seed": [Interval("int", 0, None), None],
        },
    )
    validate_params(
        "machine_degradation",
        {"initial_health": initial_health},
        {"initial_health": [Interval("real", 0, threshold, "neither")]},
    )
    k_f = n_steps - 1 if failure_time is None else int(failure_time)
    k = np.arange(n_steps)
    lam = math.log(threshold / initial_health) / k_f
    health = initial_health * np.exp(lam * k)
    health[k_f : k_f + 1] = threshold  # exact at the failure sample (no rounding in exp)
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n_steps, 3)) * noise_level
    values = np.column_stack(
        [
            1.0 + 4.0 * health + 0.05 * (1.0 + health) * z[:, 0],
            45.0 + 20.0 * health + 0.5 * z[:, 1],
            10.0 + 3.0 * health + 0.1 * z[:, 2],
        ]
    )
    return DegradationSeries(
        values=values,
        health=health,
        timestamps=sample_interval * k.astype(np.float64),
        rul=np.maximum(k_f - k, 0).astype(np.int64),
        failed=k >= k_f,
        failure_time=k_f,
        threshold=float(threshold),
        channels=MACHINE_CHANNELS,
    )
