"""Pattern detection over spike activity: eight kinds, each a strength in [0, 1].

Every kind has a deterministic, documented definition (see its function):

============== ========================================================================
kind           definition (function)
============== ========================================================================
synchronous    Golomb's χ² synchrony above chance (:func:`synchronous`)
traveling      consistent non-zero lag between ordered neuron groups (:func:`traveling`)
standing       rank-1 space-time structure with a periodic temporal factor (:func:`standing`)
chaotic        Rosenstein Lyapunov exponent × analogue-forecast determinism (:func:`chaotic`)
emergent       distance of the state from the source's EW history (:func:`emergent`, stateful)
rhythmic       harmonic spectral-peak share of the population rate (:func:`rhythmic`)
sparse         Hoyer sparseness of the neurons' spike counts (:func:`sparse`)
burst          excess fraction of spikes in short-ISI runs (:func:`burst`, :func:`burst_events`)
============== ========================================================================

:class:`PatternDetector` runs a chosen set of kinds over a batch of raster windows and
thresholds them (default 0.5 for every kind).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray

from nqp._validation import Interval, check_finite_array, validate_params
from nqp.exceptions import InvalidInputError, InvalidParameterError
from nqp.neuromorphic._patterns._common import as_raster, boxcar, group_traces, unbatch
from nqp.neuromorphic._patterns._kernels import spike_sums
from nqp.neuromorphic._patterns.bursts import _burst, burst, burst_events, poisson_burst_fraction
from nqp.neuromorphic._patterns.dynamics import _chaotic, chaos_statistics, chaotic
from nqp.neuromorphic._patterns.novelty import EmergentState, emergent
from nqp.neuromorphic._patterns.population import (
    _rhythmic,
    _sparse,
    _synchronous,
    rhythmic,
    sparse,
    synchronous,
)
from nqp.neuromorphic._patterns.waves import (
    _standing_traces,
    _traveling_traces,
    standing,
    traveling,
)

__all__ = [
    "KINDS",
    "EmergentState",
    "PatternDetector",
    "PatternReport",
    "burst",
    "burst_events",
    "chaos_statistics",
    "chaotic",
    "emergent",
    "poisson_burst_fraction",
    "rhythmic",
    "sparse",
    "standing",
    "synchronous",
    "traveling",
]

KINDS: tuple[str, ...] = (
    "synchronous",
    "traveling",
    "standing",
    "chaotic",
    "emergent",
    "rhythmic",
    "sparse",
    "burst",
)
"""The eight pattern kinds, in the order :meth:`PatternReport.to_array` uses."""


@dataclasses.dataclass(frozen=True)
class PatternReport:
    """Strengths and detections of a batch of windows.

    Attributes
    ----------
    kinds : tuple of str
        The kinds evaluated, in order.
    strength : dict of str to ndarray of shape (batch,), float64
        Strength in [0, 1] per kind.
    detected : dict of str to ndarray of shape (batch,), bool
        ``strength >= threshold`` per kind.
    """

    kinds: tuple[str, ...]
    strength: dict[str, NDArray[np.float64]]
    detected: dict[str, NDArray[np.bool_]]

    def to_array(self) -> NDArray[np.float64]:
        """Strengths as one array of shape (batch, len(kinds)), columns in ``kinds`` order."""
        return np.stack([self.strength[k] for k in self.kinds], axis=1)


class PatternDetector:
    """Evaluate several pattern kinds over a batch of spike-raster windows.

    Parameters
    ----------
    kinds : sequence of str or None, default=None
        Kinds to evaluate, a subset of :data:`KINDS` (None: all eight).
    thresholds : mapping of str to float or None, default=None
        Detection threshold per kind in [0, 1]; kinds not given use 0.5, the level every
        kind's strength scale is designed around.
    window : int or None, default=None
        Only the last ``window`` bins (and series points) are analysed; None: all.
    n_groups : int, default=8
        Ordered neuron groups for ``traveling`` and ``standing``.
    smoothing : int, default=3
        Boxcar width in bins for ``synchronous``, ``traveling`` and ``standing``.
    max_lag : int, default=8
        Largest lag in bins searched by ``traveling``.
    min_spikes : int, default=3
        Spikes per burst for ``burst``.
    isi_ratio : float, default=0.25
        Short-ISI threshold relative to the mean ISI for ``burst``.
    lyapunov_scale : float, default=0.1
        Exponent (nats/sample) at half strength for ``chaotic``.
    halflife : float, default=50.0
        Memory, in updates, of the ``emergent`` history.
    warmup : int, default=20
        Updates before ``emergent`` can fire.

    Attributes
    ----------
    kinds_ : tuple of str
        Validated kinds, set on the first :meth:`detect`.
    thresholds_ : dict of str to float
        Threshold of each evaluated kind, set on the first :meth:`detect`.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> raster = rng.random((2, 200, 32)) < 0.05           # two Poisson windows
    >>> raster[1, ::10] = True                               # periodic volleys in the second
    >>> det = PatternDetector(kinds=["synchronous", "rhythmic", "sparse"])
    >>> report = det.detect(raster)
    >>> report.detected["synchronous"].tolist(), report.detected["rhythmic"].tolist()
    ([False, True], [False, True])
    >>> report.to_array().shape
    (2, 3)
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "kinds": [list, tuple, None],
        "thresholds": [Mapping, None],
        "window": [Interval("int", 1, None), None],
        "n_groups": [Interval("int", 2, None)],
        "smoothing": [Interval("int", 1, None)],
        "max_lag": [Interval("int", 1, None)],
        "min_spikes": [Interval("int", 2, None)],
        "isi_ratio": [Interval("real", 0, None, "neither")],
        "lyapunov_scale": [Interval("real", 0, None, "neither")],
        "halflife": [Interval("real", 0, None, "neither")],
        "warmup": [Interval("int", 1, None)],
    }

    def __init__(
        self,
        kinds: Sequence[str] | None = None,
        thresholds: Mapping[str, float] | None = None,
        window: int | None = None,
        n_groups: int = 8,
        smoothing: int = 3,
        max_lag: int = 8,
        min_spikes: int = 3,
        isi_ratio: float = 0.25,
        lyapunov_scale: float = 0.1,
        halflife: float = 50.0,
        warmup: int = 20,
    ) -> None:
        self.kinds = kinds
        self.thresholds = thresholds
        self.window = window
        self.n_groups = n_groups
        self.smoothing = smoothing
        self.max_lag = max_lag
        self.min_spikes = min_spikes
        self.isi_ratio = isi_ratio
        self.lyapunov_scale = lyapunov_scale
        self.halflife = halflife
        self.warmup = warmup

    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in self._parameter_constraints}

    def _validate(self) -> None:
        if hasattr(self, "kinds_"):
            return
        validate_params(type(self).__name__, self.get_params(), self._parameter_constraints)
        kinds = KINDS if self.kinds is None else tuple(self.kinds)
        unknown = [k for k in kinds if k not in KINDS]
        if unknown or not kinds or len(set(kinds)) != len(kinds):
            raise InvalidParameterError(
                f"The 'kinds' parameter of PatternDetector must be distinct values among "
                f"{', '.join(KINDS)}. Got {self.kinds!r} instead."
            )
        thresholds = dict.fromkeys(kinds, 0.5)
        for kind, value in (self.thresholds or {}).items():
            if kind not in kinds or not Interval("real", 0, 1).accepts(value):
                raise InvalidParameterError(
                    f"The 'thresholds' parameter of PatternDetector must map evaluated kinds "
                    f"({', '.join(kinds)}) to floats in [0, 1]. Got {kind!r}: {value!r} instead."
                )
            thresholds[kind] = float(value)
        self.kinds_ = kinds
        self.thresholds_ = thresholds

    def new_state(self, n_sources: int, n_features: int) -> EmergentState:
        """A fresh ``emergent`` history for ``n_sources`` sources of ``n_features`` features."""
        return EmergentState.zeros(n_sources, n_features)

    def detect(
        self,
        raster: ArrayLike,
        series: ArrayLike | None = None,
        *,
        state: EmergentState | None = None,
        rows: ArrayLike | None = None,
        features: ArrayLike | None = None,
    ) -> PatternReport:
        """Strengths and detections of every evaluated kind for a batch of windows.

        Parameters
        ----------
        raster : array-like of shape (batch, n_bins, n_neurons)
            Spike window per source (bool or non-negative counts).
        series : array-like of shape (batch, n_points), optional
            Scalar series for ``chaotic`` (e.g. the raw input window). Default: the
            population rate of ``raster``.
        state : EmergentState, optional
            Per-source history, required when ``emergent`` is evaluated; updated in place
            (only after every input has been checked).
        rows : array-like of int of shape (batch,), optional
            Source index of each batch row in ``state`` (default: all, in order).
        features : array-like of shape (batch, n_features), optional
            State vector scored by ``emergent``. Default: each neuron's firing rate over
            the window (spikes per bin), so ``n_features = n_neurons``.

        Returns
        -------
        PatternReport
        """
        self._validate()
        r3, batched = as_raster(raster)
        if not batched:
            raise InvalidInputError(
                f"raster must have shape (batch, n_bins, n_neurons), got shape {r3.shape[1:]}."
            )
        if self.window is not None:
            r3 = r3[:, -self.window :]
        batch = r3.shape[0]
        # spikes per bin and per neuron, exact in one pass for a bool raster (0/1 sums)
        sums = (
            spike_sums(np.ascontiguousarray(r3))
            if isinstance(raster, np.ndarray) and raster.dtype == np.bool_ and r3.size
            else (r3.sum(axis=2), r3.sum(axis=1))
        )
        rate = sums[0] / max(r3.shape[2], 1)  # as r3.mean(axis=2)
        if series is None:
            x = rate
        else:
            x = check_finite_array(series, name="series", ndim=2)
            if x.shape[0] != batch:
                raise InvalidInputError(
                    f"series must have one row per raster window ({batch}), got shape {x.shape}."
                )
            if self.window is not None:
                x = x[:, -self.window :]
        feats: NDArray[np.float64] | None = None
        if "emergent" in self.kinds_:
            if not isinstance(state, EmergentState):
                raise InvalidInputError(
                    "The 'emergent' kind needs a per-source history: pass "
                    "state=detector.new_state(n_sources, n_features), or leave 'emergent' "
                    "out of kinds."
                )
            feats = (
                sums[1] / max(r3.shape[1], 1)
                if features is None
                else check_finite_array(features, name="features", ndim=2)
            )
            if feats.shape[0] != batch or feats.shape[1] != state.mean.shape[1]:
                raise InvalidInputError(
                    f"features must have shape ({batch}, {state.mean.shape[1]}) to match the "
                    f"batch and the state, got {feats.shape}."
                )
        # The public functions' cores on the checked raster: no second validation, and the
        # ordered group traces are built once for traveling and standing.
        empty = r3.shape[1] == 0 or r3.shape[2] == 0
        traces = functools.cache(lambda: _group_traces(r3, self.n_groups, self.smoothing))
        computers = {
            "synchronous": lambda: _synchronous(r3, self.smoothing),
            "traveling": lambda: (
                np.zeros(batch) if empty else _traveling_traces(traces()[1], self.max_lag)
            ),
            "standing": lambda: np.zeros(batch) if empty else _standing_traces(*traces()),
            "rhythmic": lambda: _rhythmic(r3, rate=rate),
            "sparse": lambda: _sparse(r3, counts=sums[1]),
            "burst": lambda: _burst(r3, self.min_spikes, self.isi_ratio),
        }
        strength: dict[str, NDArray[np.float64]] = {}
        for kind in self.kinds_:
            if kind == "chaotic":
                strength[kind] = _chaotic(x, lyapunov_scale=self.lyapunov_scale)
            elif kind != "emergent":
                strength[kind] = np.asarray(unbatch(computers[kind](), True), dtype=np.float64)
        if feats is not None and state is not None:
            # Last, so a rejected call (bad rows) leaves the state untouched.
            strength["emergent"] = state.update(
                feats, rows, halflife=self.halflife, warmup=self.warmup
            )
        strength = {k: strength[k] for k in self.kinds_}
        detected = {k: strength[k] >= self.thresholds_[k] for k in self.kinds_}
        return PatternReport(kinds=self.kinds_, strength=strength, detected=detected)


def _group_traces(
    r3: NDArray[np.float64], n_groups: int, smoothing: int
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Ordered group traces of shape (batch, n_bins, G) and their boxcar-smoothed version."""
    raw = group_traces(r3, n_groups)
    return raw, boxcar(raw, smoothing, axis=1)
