"""Walk-forward validation through :class:`nqp.Platform`, exactly as live traffic goes.

Each point of the series is sent to the platform as its own request, in time order, and
the prediction returned for origin ``t`` is scored later against the realised change
``y[t+h] - y[t]`` of the target channel. The platform never sees a value before its
time comes, so nothing can leak from the future (``tests/validation/test_backtest.py``
proves it by perturbing future values).

Ablations run side by side in the same platform as separate sources, each with its own
engine switches (``neuromorphic_enabled`` / ``quantum_enabled``):

========================  =========================================================
variant                   readout features
========================  =========================================================
``both``                  spiking trace, patterns, quantum features, observation, 1
``neuromorphic``          spiking trace, patterns, observation, 1
``quantum``               quantum features, observation, 1
``observation``           observation, 1 (no engine: the readout alone)
========================  =========================================================
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from nqp.config import Settings
from nqp.datasets.registry import Dataset
from nqp.engine import Platform, ProcessItem
from nqp.exceptions import InvalidParameterError
from nqp.types import Direction, ProcessConfig
from nqp.validation.baselines import baseline_forecasts
from nqp.validation.report import build_result
from nqp.validation.statistics import PredictionSet

__all__ = ["VARIANTS", "BacktestRun", "walk_forward"]

VARIANTS: dict[str, dict[str, bool]] = {
    "both": {"neuromorphic_enabled": True, "quantum_enabled": True},
    "neuromorphic": {"neuromorphic_enabled": True, "quantum_enabled": False},
    "quantum": {"neuromorphic_enabled": False, "quantum_enabled": True},
    "observation": {"neuromorphic_enabled": False, "quantum_enabled": False},
}
_SIGN = {Direction.UP: 1, Direction.DOWN: -1, Direction.HOLD: 0}


@dataclass(frozen=True)
class BacktestRun:
    """A finished walk-forward run.

    Attributes
    ----------
    result : dict
        :func:`nqp.validation.report.build_result` output (statistics, scores, metadata).
    predictions : dict of str to PredictionSet
        Scored rows per variant (origins after the burn-in whose outcome is known).
    baselines : dict of str to ndarray
        Baseline forecasts aligned with the scored rows.
    raw : dict of str to list of Prediction
        Every prediction the platform returned, per variant, one per point.
    """

    result: dict[str, Any]
    predictions: dict[str, PredictionSet]
    baselines: dict[str, NDArray[np.float64]]
    raw: dict[str, list[Any]]


def walk_forward(
    dataset: Dataset,
    *,
    settings: Settings | None = None,
    horizon: int = 1,
    variants: Sequence[str] = tuple(VARIANTS),
    burn_in: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> BacktestRun:
    """Replay ``dataset`` point by point through a fresh platform and score it.

    Parameters
    ----------
    dataset : Dataset
        The series (its ``target_channel`` is predicted; regimes are used if present).
    settings : Settings, optional
        Engine settings (default: ``Settings()``).
    horizon : int, default=1
        Steps ahead predicted (at most ``settings.engine.max_horizon``).
    variants : sequence of str, default=all of :data:`VARIANTS`
        Ablations to run; ``"both"`` is always included (it is the headline).
    burn_in : int, optional
        Origins before this index are not scored (default: the engine's ``warmup`` plus
        the horizon, the points before the readout leaves warm-up).
    progress : callable, optional
        Called with the number of points just processed (for a progress bar).
    """
    settings = settings if settings is not None else Settings()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise InvalidParameterError(
            f"Unknown variant(s) {unknown}; valid options are {list(VARIANTS)}."
        )
    names = ["both", *[v for v in variants if v != "both"]]
    values = dataset.values if dataset.values.ndim == 2 else dataset.values[:, None]
    n = values.shape[0]
    if burn_in is None:
        burn_in = settings.engine.warmup + horizon
    if n <= burn_in + horizon + 10:
        raise InvalidParameterError(
            f"The series has {n} points; at least {burn_in + horizon + 11} are needed for "
            f"a burn-in of {burn_in} and horizon {horizon}."
        )
    ts = dataset.timestamps if dataset.timestamps is not None else np.arange(n, dtype=float)
    platform = Platform(settings)
    configs = {
        name: ProcessConfig(
            **VARIANTS[name], horizon=horizon, target_channel=dataset.target_channel
        )
        for name in names
    }
    raw: dict[str, list[Any]] = {name: [] for name in names}
    for t in range(n):
        point = values[t].tolist()
        items = [
            ProcessItem(f"{dataset.name}#{name}", [point], float(ts[t]), configs[name])
            for name in names
        ]
        for name, preds in zip(names, platform.process_many(items), strict=True):
            raw[name].append(preds[0])
        if progress is not None:
            progress(1)

    target = values[:, dataset.target_channel]
    origins = np.arange(burn_in, n - horizon)
    realised = target[origins + horizon] - target[origins]
    regime = None
    if dataset.regimes is not None and dataset.regime_names:
        regime = np.asarray(dataset.regime_names, dtype=object)[dataset.regimes[origins]]
    predictions = {
        name: PredictionSet(
            index=origins.astype(float),
            predicted_direction=[_SIGN[raw[name][t].direction] for t in origins],
            confidence=[raw[name][t].confidence for t in origins],
            predicted_change=[raw[name][t].expected_change for t in origins],
            realised_change=realised,
            regime=regime,
        )
        for name in names
    }
    baselines = {
        key: forecast[origins] for key, forecast in baseline_forecasts(target, horizon).items()
    }
    metadata: Mapping[str, Any] = {
        "dataset": dataset.name,
        "description": dataset.description,
        "points": n,
        "channels": values.shape[1],
        "target_channel": dataset.target_channel,
        "horizon": horizon,
        "burn_in": burn_in,
        "scored_origins": len(origins),
        "seed": settings.seed,
        "settings": settings.model_dump(mode="json", include={"neuromorphic", "quantum", "engine"}),
    }
    result = build_result(predictions, baselines, horizon=horizon, metadata=metadata)
    return BacktestRun(result=result, predictions=predictions, baselines=baselines, raw=raw)
