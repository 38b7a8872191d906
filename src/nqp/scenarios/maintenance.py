"""Maintenance scenario: machine telemetry degrading toward a known failure time.

Each machine runs healthy for the first ``onset_fraction`` of its life (health index
constant at ``initial_health``, the noise of :func:`nqp.datasets.machine_degradation` with a
failure time no run reaches), then degrades as in
:func:`~nqp.datasets.machine_degradation`: the health index grows exponentially from
``initial_health`` to 1 at the machine's failure step (``failure_steps``, known in
advance), and three channels (vibration RMS, temperature, current) rise with it.
After failing, a machine reports ``downtime_steps`` more samples and is then replaced by a
new one (a new run, a new source name ``"maintenance.m<i>.run<r>"``, a new seeded draw).
A healthy control machine (``"maintenance.control"``, health constant at
``initial_health``) streams beside them, so an alarm raised on it is a measured false alarm.

Every point is multivariate, ``[vibration_rms, temperature, current]``, sent with
``config = {"horizon": horizon, "target_channel": 0}``: the platform predicts the change of
the vibration over the next ``horizon`` samples. :attr:`MaintenanceScenario.runs_` records
every run with its global failure step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from nqp._validation import Interval, validate_params
from nqp.datasets.sensors import DegradationSeries, machine_degradation
from nqp.exceptions import InvalidParameterError
from nqp.scenarios.base import ScenarioPoint, validate_timing

__all__ = ["CONTROL_SOURCE", "MachineRun", "MaintenanceScenario"]

#: Source name of the healthy control machine.
CONTROL_SOURCE = "maintenance.control"
_CONTROL_FAILURE = 10**12  # a failure time no run reaches: health stays at h_0


@dataclass(frozen=True)
class MachineRun:
    """One machine's run from installation to replacement (global steps).

    Attributes
    ----------
    source : str
    machine : int
        1-based machine slot.
    start : int
        Step of the run's first sample.
    onset : int
        First step of the degradation (health constant before it).
    failure : int
        Step at which the health index reaches 1 (the known failure time).
    end : int
        Step after the run's last sample (``failure + downtime_steps + 1``).
    """

    source: str
    machine: int
    start: int
    onset: int
    failure: int
    end: int


class MaintenanceScenario:
    """Run-to-failure telemetry of several machines plus a healthy control.

    Parameters
    ----------
    failure_steps : sequence of int, default=(150, 250, 350)
        One machine per entry; each run of that machine fails this many steps after it
        starts (>= 2).
    onset_fraction : float, default=0.4
        Share of a run's life to failure spent healthy, in [0, 1).
    downtime_steps : int, default=20
        Samples a failed machine keeps reporting before it is replaced (>= 0).
    initial_health : float, default=0.05
        Health index of a new machine (1 = failure).
    noise_level : float, default=1.0
        Multiplier of the channels' noise.
    control : bool, default=True
        Stream a healthy control machine too.
    horizon : int, default=10
        Steps ahead the platform is asked to predict (``ProcessConfig.horizon``).
    sample_interval : float, default=3600.0
        Simulated seconds between samples (reported lead times use it).
    chunk_steps : int, default=1024
        Samples of the control machine generated at a time.
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
    runs_ : list of MachineRun
        Every run started so far.
    health_ : ndarray of shape (n_machines,), float64
        Health index of each machine at the last step.

    Examples
    --------
    >>> m = MaintenanceScenario(failure_steps=(50,), seed=0)
    >>> pts = [next(m) for _ in range(80)]
    >>> [p.source for p in pts[0]], pts[0][0].config
    (['maintenance.m1.run1', 'maintenance.control'], {'horizon': 10, 'target_channel': 0})
    >>> m.runs_[0].failure, pts[75][0].source
    (50, 'maintenance.m1.run2')
    """

    name = "maintenance"

    def __init__(
        self,
        *,
        failure_steps: Sequence[int] = (150, 250, 350),
        onset_fraction: float = 0.4,
        downtime_steps: int = 20,
        initial_health: float = 0.05,
        noise_level: float = 1.0,
        control: bool = True,
        horizon: int = 10,
        sample_interval: float = 3600.0,
        chunk_steps: int = 1024,
        start_time: float = 0.0,
        interval: float = 1.0,
        seed: int | None = 0,
    ) -> None:
        self.failure_steps = failure_steps
        self.onset_fraction = onset_fraction
        self.downtime_steps = downtime_steps
        self.initial_health = initial_health
        self.noise_level = noise_level
        self.control = control
        self.horizon = horizon
        self.sample_interval = sample_interval
        self.chunk_steps = chunk_steps
        self.start_time = start_time
        self.interval = interval
        self.seed = seed

    def _start(self) -> None:
        validate_timing("MaintenanceScenario", self.start_time, self.interval, self.seed)
        validate_params(
            "MaintenanceScenario",
            {
                "onset_fraction": self.onset_fraction,
                "downtime_steps": self.downtime_steps,
                "initial_health": self.initial_health,
                "noise_level": self.noise_level,
                "control": self.control,
                "horizon": self.horizon,
                "sample_interval": self.sample_interval,
                "chunk_steps": self.chunk_steps,
            },
            {
                "onset_fraction": [Interval("real", 0, 1, "left")],
                "downtime_steps": [Interval("int", 0, None)],
                "initial_health": [Interval("real", 0, 1, "neither")],
                "noise_level": [Interval("real", 0, None)],
                "control": [bool],
                "horizon": [Interval("int", 1, 1000)],
                "sample_interval": [Interval("real", 0, None, "neither")],
                "chunk_steps": [Interval("int", 1, None)],
            },
        )
        steps = tuple(self.failure_steps)
        if not steps or not all(Interval("int", 2, None).accepts(s) for s in steps):
            raise InvalidParameterError(
                "The 'failure_steps' parameter of MaintenanceScenario must hold at least one "
                f"int >= 2. Got {self.failure_steps!r} instead."
            )
        self._failures = steps
        self._rng = np.random.default_rng(self.seed)
        self._config = {"horizon": int(self.horizon), "target_channel": 0}
        self.step_ = 0
        self.runs_: list[MachineRun] = []
        self._current: list[tuple[MachineRun, NDArray[np.float64], NDArray[np.float64]]] = []
        for i in range(len(steps)):
            self._current.append(self._new_run(i, 1))
        self._control: DegradationSeries | None = None
        self._control_start = 0
        self.health_ = np.array([h[0] for _, _, h in self._current])

    def _healthy(self, n: int) -> DegradationSeries:
        return machine_degradation(
            n + 1,
            failure_time=_CONTROL_FAILURE,
            initial_health=float(self.initial_health),
            sample_interval=float(self.sample_interval),
            noise_level=float(self.noise_level),
            seed=int(self._rng.integers(2**63)),
        )

    def _new_run(
        self, machine: int, number: int
    ) -> tuple[MachineRun, NDArray[np.float64], NDArray[np.float64]]:
        failure = self._failures[machine]
        healthy = min(int(self.onset_fraction * failure), failure - 1)
        n = failure + int(self.downtime_steps) + 1
        wear = machine_degradation(
            n - healthy,
            failure_time=failure - healthy,
            initial_health=float(self.initial_health),
            sample_interval=float(self.sample_interval),
            noise_level=float(self.noise_level),
            seed=int(self._rng.integers(2**63)),
        )
        values, health = wear.values, wear.health
        if healthy:
            calm = self._healthy(healthy)
            values = np.vstack([calm.values[:healthy], values])
            health = np.concatenate([calm.health[:healthy], health])
        k0 = self.step_
        source = f"maintenance.m{machine + 1}.run{number}"
        run = MachineRun(source, machine + 1, k0, k0 + healthy, k0 + failure, k0 + n)
        self.runs_.append(run)
        return run, values, health

    @property
    def sources(self) -> tuple[str, ...]:
        """The current run of every machine, then the control machine."""
        if not hasattr(self, "step_"):
            self._start()
        names = tuple(run.source for run, _, _ in self._current)
        return (*names, CONTROL_SOURCE) if self.control else names

    def __iter__(self) -> MaintenanceScenario:
        return self

    def __next__(self) -> list[ScenarioPoint]:
        """One sample of every machine (a failed one past its downtime is replaced first)."""
        if not hasattr(self, "step_"):
            self._start()
        step = self.step_
        for i, (run, _, _) in enumerate(self._current):
            if step >= run.end:
                number = int(run.source.rsplit("run", 1)[1]) + 1
                self._current[i] = self._new_run(i, number)
        ts = float(self.start_time) + step * float(self.interval)
        out = []
        for i, (run, values, health) in enumerate(self._current):
            k = step - run.start
            row = tuple(float(v) for v in values[k])
            self.health_[i] = health[k]
            out.append(ScenarioPoint(run.source, step, ts, row, row[0], config=self._config))
        if self.control:
            if self._control is None or step - self._control_start >= self._control.health.size:
                self._control = self._healthy(int(self.chunk_steps))
                self._control_start = step
            row = tuple(float(v) for v in self._control.values[step - self._control_start])
            out.append(ScenarioPoint(CONTROL_SOURCE, step, ts, row, row[0], config=self._config))
        self.step_ += 1
        return out
