"""The streaming scenarios by name, with the rates the demo streams them at."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from nqp.exceptions import InvalidParameterError
from nqp.scenarios.base import Scenario
from nqp.scenarios.iot import IoTScenario
from nqp.scenarios.maintenance import MaintenanceScenario
from nqp.scenarios.market import MarketScenario

__all__ = ["DEFAULT_RATES", "SCENARIO_NAMES", "make_scenario"]

#: Scenarios :func:`~nqp.scenarios.stream_scenarios` knows.
SCENARIO_NAMES: tuple[str, ...] = ("market", "iot", "maintenance", "portfolio")
#: Points per second of each streaming scenario unless ``rate`` says otherwise.
DEFAULT_RATES: Mapping[str, float] = MappingProxyType(
    {"market": 200.0, "iot": 60.0, "maintenance": 40.0}
)


def make_scenario(
    name: str, *, rate: float = 1.0, seed: int | None = 0, start_time: float = 0.0
) -> Scenario:
    """A streaming scenario by name, paced for ``rate`` points per second.

    ``"market"``, ``"iot"`` or ``"maintenance"`` with default parameters; ``interval`` is
    ``n_sources / rate`` so that all sources together make ``rate`` points per second.

    Examples
    --------
    >>> s = make_scenario("market", rate=100.0, start_time=1e9)
    >>> s.interval, [p.timestamp for p in next(s)][:1]
    (0.05, [1000000000.0])
    """
    kinds: dict[str, Any] = {
        "market": MarketScenario,
        "iot": IoTScenario,
        "maintenance": MaintenanceScenario,
    }
    if name not in kinds:
        raise InvalidParameterError(
            f"Unknown streaming scenario {name!r}; choose from {tuple(kinds)}."
        )
    n_sources = len(kinds[name](seed=seed).sources)
    return kinds[name](seed=seed, start_time=start_time, interval=n_sources / rate)
