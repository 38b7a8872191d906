"""One entry point for every dataset: ``load_dataset(name, **kwargs) -> Dataset``.

Generated datasets (always available): ``mackey_glass``, ``lorenz``, ``market``, ``iot``,
``maintenance``. Packaged real series (available when the package that ships them is
installed): ``santa_fe_laser`` (reservoirpy), ``sunspots`` and ``co2`` (statsmodels).
Any CSV file: :func:`dataset_from_csv`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nqp._validation import Interval, validate_params
from nqp.datasets.generators import lorenz, mackey_glass
from nqp.datasets.loaders import (
    SeriesTable,
    load_co2,
    load_csv,
    load_santa_fe_laser,
    load_sunspots,
    package_data_path,
)
from nqp.datasets.market import regime_switching_gbm
from nqp.datasets.sensors import iot_sensors, machine_degradation
from nqp.exceptions import InvalidParameterError

__all__ = ["DATASET_NAMES", "Dataset", "available_datasets", "dataset_from_csv", "load_dataset"]

_DEFAULT_LENGTH = 2000


@dataclass(frozen=True, eq=False)
class Dataset:
    """A series ready for validation runs, with whatever ground truth it has.

    Attributes
    ----------
    name : str
        Registry name (or the file name for :func:`dataset_from_csv`).
    values : ndarray of shape (n,) or (n, k), float64
        The observations; every value finite.
    timestamps : ndarray of shape (n,), float64, or None
        Seconds; None when the series has no physical time (e.g. Mackey-Glass time units).
    target_channel : int
        Column of ``values`` to predict (0 for a 1-D series).
    regimes : ndarray of shape (n,), int64, or None
        Ground-truth regime index of each sample.
    regime_names : tuple of str
        Names indexed by ``regimes`` (empty without regimes).
    anomalies : ndarray of bool, same shape as ``values`` or (n,), or None
        Ground-truth anomaly labels.
    description : str
        What the series is, its units and where it comes from.
    channel_names : tuple of str
        One name per column of ``values`` (one name for a 1-D series).
    extras : mapping of str to object
        Further ground truth, read-only (e.g. ``"rul"``, ``"health"``, ``"log_returns"``).
    """

    name: str
    values: NDArray[np.float64]
    timestamps: NDArray[np.float64] | None
    target_channel: int
    regimes: NDArray[np.int64] | None
    regime_names: tuple[str, ...]
    anomalies: NDArray[np.bool_] | None
    description: str
    channel_names: tuple[str, ...] = ()
    extras: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        n_channels = 1 if self.values.ndim == 1 else self.values.shape[1]
        if not 0 <= self.target_channel < n_channels:
            raise InvalidParameterError(
                f"The 'target_channel' parameter of Dataset must be in [0, {n_channels - 1}]. "
                f"Got {self.target_channel!r} instead."
            )

    @property
    def target(self) -> NDArray[np.float64]:
        """The series to predict, of shape (n,): ``values[:, target_channel]`` or ``values``."""
        return self.values if self.values.ndim == 1 else self.values[:, self.target_channel]


def _extras(**items: Any) -> Mapping[str, Any]:
    return MappingProxyType(items)


def _mackey_glass(n_samples: int = _DEFAULT_LENGTH, **kwargs: Any) -> Dataset:
    return Dataset(
        name="mackey_glass",
        values=mackey_glass(n_samples, **kwargs),
        timestamps=None,
        target_channel=0,
        regimes=None,
        regime_names=(),
        anomalies=None,
        description="Mackey-Glass delay equation (tau=17, chaotic, by default), one sample "
        "per time unit; dimensionless.",
        channel_names=("x",),
    )


def _lorenz(n_samples: int = _DEFAULT_LENGTH, **kwargs: Any) -> Dataset:
    return Dataset(
        name="lorenz",
        values=lorenz(n_samples, **kwargs),
        timestamps=None,
        target_channel=0,
        regimes=None,
        regime_names=(),
        anomalies=None,
        description="Lorenz-63 attractor (sigma=10, rho=28, beta=8/3) by RK4 at dt=0.01; "
        "columns x, y, z; target x.",
        channel_names=("x", "y", "z"),
    )


def _market(n_samples: int = _DEFAULT_LENGTH, **kwargs: Any) -> Dataset:
    m = regime_switching_gbm(n_samples, **kwargs)
    one = m.prices.shape[1] == 1
    anomalies = None
    if m.vol_spikes or m.reversals:
        anomalies = np.zeros(n_samples, dtype=bool)
        for start, duration, _ in m.vol_spikes:
            anomalies[start : start + duration] = True
        anomalies[list(m.reversals)] = True
    return Dataset(
        name="market",
        values=m.prices[:, 0] if one else m.prices,
        timestamps=m.timestamps,
        target_channel=0,
        regimes=m.regimes,
        regime_names=m.regime_names,
        anomalies=anomalies,
        description="Regime-switching geometric Brownian motion (bull/bear/crisis by "
        "default), 1-minute bars from a price of 100; timestamps are trading-time seconds; "
        "anomalies (when events are planted) flag volatility spikes and reversal steps.",
        channel_names=("price",) if one else tuple(f"asset_{j}" for j in range(m.prices.shape[1])),
        extras=_extras(
            log_returns=m.log_returns,
            drift=m.drift,
            volatility=m.volatility,
            vol_spikes=m.vol_spikes,
            reversals=m.reversals,
        ),
    )


def _iot(n_samples: int = _DEFAULT_LENGTH, **kwargs: Any) -> Dataset:
    s = iot_sensors(n_samples, **kwargs)
    return Dataset(
        name="iot",
        values=s.values,
        timestamps=s.timestamps,
        target_channel=0,
        regimes=None,
        regime_names=(),
        anomalies=s.labels,
        description="IoT telemetry, one sample a minute: temperature (°C, daily cycle), "
        "pressure (kPa, AR(1)), vibration (mm/s, Student-t noise) with labelled spike, "
        "level-shift, drift and stuck anomalies; target: the first sensor.",
        channel_names=s.sensors,
        extras=_extras(clean=s.clean, anomaly_records=s.anomalies, noise_std=s.noise_std),
    )


def _maintenance(n_samples: int = _DEFAULT_LENGTH, **kwargs: Any) -> Dataset:
    d = machine_degradation(n_samples, **kwargs)
    return Dataset(
        name="maintenance",
        values=d.values,
        timestamps=d.timestamps,
        target_channel=0,
        regimes=d.failed.astype(np.int64),
        regime_names=("operating", "failed"),
        anomalies=None,
        description="Machine run to failure, one sample an hour: vibration RMS (mm/s), "
        "temperature (°C), current (A) driven by an exponentially growing health index that "
        "reaches the failure threshold at extras['failure_time']; target vibration RMS.",
        channel_names=d.channels,
        extras=_extras(
            health=d.health, rul=d.rul, failure_time=d.failure_time, threshold=d.threshold
        ),
    )


def _packaged(name: str, table: SeriesTable, description: str) -> Dataset:
    return Dataset(
        name=name,
        values=table.values,
        timestamps=table.timestamps,
        target_channel=0,
        regimes=None,
        regime_names=(),
        anomalies=None,
        description=description,
        channel_names=table.columns,
    )


def _santa_fe_laser() -> Dataset:
    return _packaged(
        "santa_fe_laser",
        load_santa_fe_laser(),
        "Santa Fe competition data set A: far-infrared NH3 laser intensity in a chaotic "
        "regime, 10,093 samples (Weigend & Gershenfeld 1993), from reservoirpy.",
    )


def _sunspots() -> Dataset:
    return _packaged(
        "sunspots",
        load_sunspots(),
        "Yearly mean sunspot numbers 1700-2008 (NOAA NGDC), from statsmodels; timestamps "
        "are 1 January of each year (POSIX seconds).",
    )


def _co2(missing: str = "interpolate") -> Dataset:
    return _packaged(
        "co2",
        load_co2(missing=missing),
        "Weekly atmospheric CO2 at Mauna Loa 1958-2001 in ppmv (Keeling & Whorf), from "
        f"statsmodels; missing weeks: {missing}.",
    )


@dataclass(frozen=True)
class _Entry:
    build: Callable[..., Dataset]
    passthrough: Callable[..., Any] | None  # generator receiving the remaining kwargs
    package: tuple[str, str] | None  # (package, data file inside it) for packaged series


_REGISTRY: Mapping[str, _Entry] = MappingProxyType(
    {
        "mackey_glass": _Entry(_mackey_glass, mackey_glass, None),
        "lorenz": _Entry(_lorenz, lorenz, None),
        "market": _Entry(_market, regime_switching_gbm, None),
        "iot": _Entry(_iot, iot_sensors, None),
        "maintenance": _Entry(_maintenance, machine_degradation, None),
        "santa_fe_laser": _Entry(
            _santa_fe_laser, None, ("reservoirpy", "datasets/santafe_laser.npy")
        ),
        "sunspots": _Entry(_sunspots, None, ("statsmodels", "datasets/sunspots/sunspots.csv")),
        "co2": _Entry(_co2, None, ("statsmodels", "datasets/co2/co2.csv")),
    }
)

#: Every registered dataset name, available or not.
DATASET_NAMES: tuple[str, ...] = tuple(_REGISTRY)


def _accepted(entry: _Entry) -> list[str]:
    names = [
        p.name
        for p in inspect.signature(entry.build).parameters.values()
        if p.kind is not inspect.Parameter.VAR_KEYWORD
    ]
    if entry.passthrough is not None:
        params = list(inspect.signature(entry.passthrough).parameters.values())[1:]
        names += [p.name for p in params if p.name not in names]
    return names


def load_dataset(name: str, **kwargs: Any) -> Dataset:
    """Load or generate a registered dataset.

    Parameters
    ----------
    name : str
        One of :data:`DATASET_NAMES`: ``"mackey_glass"``, ``"lorenz"``, ``"market"``,
        ``"iot"``, ``"maintenance"``, ``"santa_fe_laser"``, ``"sunspots"``, ``"co2"``.
    **kwargs
        Generated datasets take ``n_samples`` (default 2000) and any keyword of their
        generator (:func:`~nqp.datasets.mackey_glass`, :func:`~nqp.datasets.lorenz`,
        :func:`~nqp.datasets.regime_switching_gbm`, :func:`~nqp.datasets.iot_sensors`,
        :func:`~nqp.datasets.machine_degradation`), e.g. ``seed``. ``co2`` takes
        ``missing`` (``"interpolate"`` or ``"drop"``); the other packaged series take none.

    Returns
    -------
    Dataset
        ``market``: values = prices (n,) with regimes; ``iot``: (n, 3) with anomaly
        labels (n, 3); ``maintenance``: (n, 3) with regimes operating/failed and
        ``extras["rul"]``; ``lorenz``: (n, 3); the others (n,).

    Raises
    ------
    InvalidParameterError
        For an unknown name (listing the valid ones) or keyword (listing the accepted ones).
    ModuleNotFoundError
        For a packaged series whose package is not installed.

    Examples
    --------
    >>> d = load_dataset("market", n_samples=500, seed=2)
    >>> d.values.shape, d.regimes.shape, d.regime_names
    ((500,), (500,), ('bull', 'bear', 'crisis'))
    >>> load_dataset("iot", n_samples=300).anomalies.shape
    (300, 3)
    """
    entry = _REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise InvalidParameterError(
            f"Unknown dataset {name!r}; valid options: {', '.join(DATASET_NAMES)}."
        )
    accepted = _accepted(entry)
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise InvalidParameterError(
            f"Dataset {name!r} does not take {', '.join(repr(u) for u in unknown)}; "
            f"accepted: {', '.join(accepted) if accepted else 'no parameters'}."
        )
    return entry.build(**kwargs)


def available_datasets() -> list[str]:
    """Names that :func:`load_dataset` can load here: generated ones, and packaged ones
    whose package (and data file) is installed.

    Examples
    --------
    >>> {"mackey_glass", "lorenz", "market", "iot", "maintenance"} <= set(available_datasets())
    True
    """
    names = []
    for name, entry in _REGISTRY.items():
        if entry.package is not None:
            try:
                package_data_path(entry.package[0], entry.package[1], install="")
            except (ModuleNotFoundError, FileNotFoundError):
                continue
        names.append(name)
    return names


def dataset_from_csv(
    path: str | os.PathLike[str],
    *,
    column: int | str | Sequence[int | str] | None = None,
    time_column: int | str | None = None,
    delimiter: str | None = None,
    header: bool | None = None,
    missing: str = "error",
    target_channel: int = 0,
    name: str | None = None,
    description: str | None = None,
) -> Dataset:
    """Wrap :func:`~nqp.datasets.load_csv` into a :class:`Dataset`.

    Parameters
    ----------
    path, column, time_column, delimiter, header, missing
        As for :func:`~nqp.datasets.load_csv`.
    target_channel : int, default=0
        Column of the loaded values to predict.
    name : str, optional
        Defaults to the file name without extension.
    description : str, optional
        Defaults to ``"CSV file <path>"``.

    Returns
    -------
    Dataset
        No regimes or anomaly labels.
    """
    validate_params(
        "dataset_from_csv",
        {"target_channel": target_channel},
        {"target_channel": [Interval("int", 0, None)]},
    )
    table = load_csv(
        path,
        column=column,
        time_column=time_column,
        delimiter=delimiter,
        header=header,
        missing=missing,
    )
    return Dataset(
        name=name if name is not None else os.path.splitext(os.path.basename(table.source))[0],
        values=table.values,
        timestamps=table.timestamps,
        target_channel=target_channel,
        regimes=None,
        regime_names=(),
        anomalies=None,
        description=description if description is not None else f"CSV file {table.source}",
        channel_names=table.columns,
    )
