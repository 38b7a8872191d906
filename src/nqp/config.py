"""Platform settings, read from ``NQP_*`` environment variables.

Nested sections use a double underscore: ``NQP_NEUROMORPHIC__N_NEURONS=512`` sets
``Settings().neuromorphic.n_neurons``. One :class:`Settings` object is the single
source of configuration; engines receive the section they need.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["NeuromorphicSettings", "QuantumSettings", "Settings"]


class NeuromorphicSettings(BaseModel):
    """Spike encoding, spiking reservoir and pattern detection."""

    model_config = {"extra": "forbid"}

    encoding: Literal["rate", "temporal", "population", "phase", "delta"] = "rate"
    normalization: Literal["returns", "levels"] = Field(
        "returns", description="Normalise each source's changes (returns) or its levels."
    )
    substeps: int = Field(10, ge=1, le=1000, description="Spike time bins per observation.")
    neurons_per_channel: int = Field(
        8, ge=1, le=256, description="Input neurons per input channel (population/rate)."
    )
    reservoir: Literal["lif", "esn"] = "lif"
    n_neurons: int = Field(256, ge=2, le=100_000, description="Reservoir size.")
    connectivity: float = Field(0.1, gt=0.0, le=1.0, description="Recurrent density.")
    spectral_radius: float = Field(0.9, gt=0.0, le=10.0)
    leak: float = Field(0.3, gt=0.0, le=1.0, description="ESN leak rate.")
    readout_dim: int | None = Field(
        None, ge=1, description="Random projection of the trace before the readout."
    )


class QuantumSettings(BaseModel):
    """Quantum reservoir (exact density-matrix simulation)."""

    model_config = {"extra": "forbid"}

    qubit_count: int = Field(5, ge=1, le=10, description="Qubits: a 2^n state space.")
    evolution_time: float = Field(1.0, gt=0.0, le=1000.0, description="Per step, ħ = 1.")
    virtual_nodes: int = Field(4, ge=1, le=64)
    energy_tolerance: float = Field(1e-6, gt=0.0, le=1.0)


class Settings(BaseSettings):
    """All NQP settings. Every random generator is seeded from ``seed``."""

    model_config = SettingsConfigDict(
        env_prefix="NQP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    seed: int = Field(0, ge=0, description="Root seed for every random generator.")
    data_dir: Path = Field(Path(".nqp"), description="Where embedded mode keeps its files.")
    neuromorphic: NeuromorphicSettings = NeuromorphicSettings()
    quantum: QuantumSettings = QuantumSettings()
