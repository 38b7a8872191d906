"""The shared contract: what a prediction is and what the engines report with it.

These models are produced by :class:`nqp.Platform` and serialised unchanged by the
service (JSON), the store and the stream. Field units are part of the contract:
probabilities in [0, 1], magnitudes and expected changes in the units of the source's
target channel, times in milliseconds.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "Convergence",
    "Direction",
    "NeuromorphicResults",
    "Prediction",
    "ProcessConfig",
    "QuantumResults",
    "ReservoirSummary",
    "SpikeAnalysis",
]


class Direction(StrEnum):
    """Predicted direction of the source's change over its horizon."""

    UP = "up"
    DOWN = "down"
    HOLD = "hold"


class ProcessConfig(BaseModel):
    """Per-request engine switches.

    ``horizon`` and ``target_channel`` are fixed by a source's first point; a later request
    that names different values is rejected (the readout was trained for the first).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    neuromorphic_enabled: bool = True
    quantum_enabled: bool = True
    priority: int = Field(0, ge=0, le=9, description="Scheduling hint for the service.")
    horizon: int | None = Field(None, ge=1, le=1000, description="Steps ahead predicted.")
    target_channel: int | None = Field(None, ge=0, description="Channel predicted.")


class SpikeAnalysis(BaseModel):
    """Spiking activity of the source's reservoir during the last point."""

    spike_count: int = Field(description="Spikes in the last point's bins.")
    spike_rate: float = Field(description="Spikes per neuron per second (1 bin = dt ms).")
    coherence: float = Field(description="Population synchrony of the recent window, [0, 1].")


class ReservoirSummary(BaseModel):
    """Summary statistics of the readable reservoir state (not every activation)."""

    mean: float
    std: float
    max: float
    active_fraction: float = Field(description="Share of neurons with trace above 0.05.")


class NeuromorphicResults(BaseModel):
    """What the neuromorphic engine saw for this point."""

    patterns: dict[str, float] = Field(description="Pattern strengths in [0, 1] by kind.")
    spike_analysis: SpikeAnalysis
    reservoir_state: ReservoirSummary


class Convergence(BaseModel):
    """Echo-state washout of the quantum reservoir (two copies under the same input)."""

    converged: bool
    iterations: int
    residual: float


class QuantumResults(BaseModel):
    """What the quantum reservoir reported for this point."""

    energy: float = Field(description="Tr(ρH), Hamiltonian energy units (ħ = 1).")
    phase_coherence: float = Field(description="Normalised l1-norm of coherence, [0, 1].")
    convergence: Convergence


class Prediction(BaseModel):
    """One prediction for one point of one source."""

    prediction_id: str = Field(
        description="32 hex digits: BLAKE2b-128 of (source, sequence, timestamp), so a "
        "replayed point keeps its id."
    )
    source: str
    sequence: int = Field(description="1-based index of the point within its source.")
    timestamp: float = Field(description="Seconds since the epoch of the point.")
    value: float = Field(description="The point's observed value of the target channel.")
    direction: Direction
    confidence: float = Field(description="Probability that `direction` is right, [0, 1].")
    magnitude: float = Field(
        description="Size of the expected change over the horizon, in the target's units (≥ 0)."
    )
    expected_change: float = Field(
        description="Signed expected change over the horizon, in the target's units."
    )
    uncertainty: float = Field(
        description="Standard deviation of the predictive distribution of the change (target "
        "units); confidence is the calibrated Φ(expected_change / uncertainty) of its sign."
    )
    horizon: int = Field(description="Steps ahead.")
    time_horizon_ms: float = Field(description="horizon × the median inter-arrival time.")
    warming_up: bool
    anomaly_score: float = Field(description="Surprise of this point, [0, 1].")
    neuromorphic_results: NeuromorphicResults | None
    quantum_results: QuantumResults | None
    processing_time_ms: float
