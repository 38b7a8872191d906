"""What every demo scenario streams: timestamped points per source, one step at a time.

A scenario is an iterator: ``next(scenario)`` advances it by one *step* and returns one
:class:`ScenarioPoint` per source, all stamped ``start_time + step * interval`` seconds.
The runner (:mod:`nqp.scenarios.runner`) chooses ``interval`` from the requested rate
(``interval = n_sources / rate``) and ``start_time`` from the wall clock, so a point's
timestamp is the moment it was scheduled to happen. Randomness comes from one
:class:`numpy.random.Generator` seeded by the scenario's ``seed``: the same seed (and the
same triggered events at the same steps) gives the same stream.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from nqp._validation import Interval, validate_params

__all__ = ["Scenario", "ScenarioPoint", "validate_timing"]


@dataclass(frozen=True)
class ScenarioPoint:
    """One observation of one source.

    Attributes
    ----------
    source : str
        Public source name, e.g. ``"market.ACME"``.
    step : int
        0-based index of the scenario step the point belongs to; every current source has
        exactly one point per step, so the point ``h`` steps later of the same source is
        the one ``h`` points later in that source's stream.
    timestamp : float
        Seconds since the epoch (``start_time + step * interval`` of the scenario).
    data : float or tuple of float
        What is sent: a number, or one number per channel for multivariate sources.
    target : float
        The value of the predicted channel (``data`` itself for univariate sources); the
        runner scores directional predictions against later targets.
    anomaly : bool, default=False
        Ground truth: the point lies inside a planted anomaly (IoT scenario).
    config : dict or None, default=None
        ``ProcessConfig`` fields sent with the point (``horizon``, ``target_channel``).
    """

    source: str
    step: int
    timestamp: float
    data: float | tuple[float, ...]
    target: float
    anomaly: bool = False
    config: dict[str, Any] | None = field(default=None, compare=False)


@runtime_checkable
class Scenario(Protocol):
    """A stream of points: ``next(scenario)`` gives one point per current source.

    Attributes
    ----------
    name : str
        The scenario's name (``"market"``, ``"iot"``, ``"maintenance"``).
    sources : tuple of str
        The sources of the next step (the maintenance scenario renames a machine's source
        when it is replaced after a failure).
    step_ : int
        Steps taken so far.
    """

    name: str
    interval: float

    @property
    def sources(self) -> tuple[str, ...]: ...

    def __iter__(self) -> Scenario: ...

    def __next__(self) -> list[ScenarioPoint]: ...


def validate_timing(owner: str, start_time: float, interval: float, seed: int | None) -> None:
    """Check the parameters every scenario shares (``start_time``, ``interval``, ``seed``)."""
    validate_params(
        owner,
        {"start_time": start_time, "interval": interval, "seed": seed},
        {
            "start_time": [Interval("real", None, None)],
            "interval": [Interval("real", 0, None, "neither")],
            "seed": [Interval("int", 0, None), None],
        },
    )
