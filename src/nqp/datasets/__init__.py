"""Time-series generators and loaders for tests, benchmarks and validation.

``load_dataset(name)`` is the single entry point; the generators and loaders behind it are
exported too.
"""

from __future__ import annotations

from nqp.datasets.generators import lorenz, mackey_glass
from nqp.datasets.loaders import (
    SeriesTable,
    load_co2,
    load_csv,
    load_santa_fe_laser,
    load_sunspots,
)
from nqp.datasets.market import MarketSeries, Regime, regime_switching_gbm
from nqp.datasets.registry import (
    DATASET_NAMES,
    Dataset,
    available_datasets,
    dataset_from_csv,
    load_dataset,
)
from nqp.datasets.sensors import (
    AnomalyRecord,
    AnomalySpec,
    DegradationSeries,
    SensorSeries,
    iot_sensors,
    machine_degradation,
)

__all__ = [
    "DATASET_NAMES",
    "AnomalyRecord",
    "AnomalySpec",
    "Dataset",
    "DegradationSeries",
    "MarketSeries",
    "Regime",
    "SensorSeries",
    "SeriesTable",
    "available_datasets",
    "dataset_from_csv",
    "iot_sensors",
    "load_co2",
    "load_csv",
    "load_dataset",
    "load_santa_fe_laser",
    "load_sunspots",
    "lorenz",
    "machine_degradation",
    "mackey_glass",
    "regime_switching_gbm",
]
