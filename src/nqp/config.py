"""Platform settings, read from ``NQP_*`` environment variables.

Nested sections use a double underscore: ``NQP_NEUROMORPHIC__N_NEURONS=512`` sets
``Settings().neuromorphic.n_neurons``. One :class:`Settings` object is the single
source of configuration; engines receive the section they need.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "EngineSettings",
    "NeuromorphicSettings",
    "QuantumSettings",
    "ServiceSettings",
    "Settings",
    "StreamSettings",
]


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
        64, ge=1, description="Random projection of the trace before the readout (None: all)."
    )
    pattern_window: int = Field(
        20, ge=4, le=1000, description="Observations in the spike window scanned for patterns."
    )
    pattern_interval: int = Field(
        10, ge=1, le=1000, description="Points between pattern scans of a source (reused between)."
    )
    pattern_neurons: int = Field(
        32, ge=8, le=4096, description="Reservoir neurons sampled for the pattern window."
    )


class QuantumSettings(BaseModel):
    """Quantum reservoir (exact density-matrix simulation)."""

    model_config = {"extra": "forbid"}

    qubit_count: int = Field(5, ge=1, le=10, description="Qubits: a 2^n state space.")
    evolution_time: float = Field(1.0, gt=0.0, le=1000.0, description="Per step, ħ = 1.")
    virtual_nodes: int = Field(4, ge=1, le=64)
    energy_tolerance: float = Field(1e-6, gt=0.0, le=1.0)
    readout_dim: int | None = Field(
        16, ge=1, description="Random projection of the quantum features (None: all)."
    )


class EngineSettings(BaseModel):
    """Streaming predictions: readout, calibration, per-source state store."""

    model_config = {"extra": "forbid"}

    horizon: int = Field(1, ge=1, le=1000, description="Default steps ahead predicted.")
    max_horizon: int = Field(
        16, ge=1, le=1000, description="Largest horizon a source may ask for (memory per source)."
    )
    max_channels: int = Field(8, ge=1, le=256, description="Most channels a source may have.")
    forgetting: float = Field(0.995, gt=0.9, le=1.0, description="RLS forgetting factor.")
    ridge: float = Field(1.0, gt=0.0, description="RLS regularisation (P0 = I / ridge).")
    warmup: int = Field(
        30, ge=1, description="Outcomes a source needs before its predictions leave warm-up."
    )
    dead_band: float = Field(
        0.02,
        ge=0.0,
        lt=0.5,
        description="Predict hold when the calibrated P(up) is within this of 0.5.",
    )
    max_sources: int = Field(
        10_000,
        ge=1,
        description="Sources kept in memory; the least recently used beyond "
        "this are checkpointed and evicted.",
    )

    @model_validator(mode="after")
    def _horizon_fits(self) -> EngineSettings:
        if self.horizon > self.max_horizon:
            raise ValueError(f"horizon ({self.horizon}) exceeds max_horizon ({self.max_horizon})")
        return self


class ServiceSettings(BaseModel):
    """HTTP gateway: storage, limits, batching, auth."""

    model_config = {"extra": "forbid"}

    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default: SQLite file nqp.db in the data directory."
    )
    redis_url: str | None = Field(None, description="Redis for shared limits and the L2 cache.")
    jwt_secret: str | None = Field(
        None,
        description="HS256 secret for tokens; default: generated once and kept (mode 0600) in "
        "the data directory.",
    )
    jwt_ttl_s: int = Field(900, ge=10, le=86_400, description="Token lifetime.")
    max_body_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Request body limit.")
    max_points_per_request: int = Field(10_000, ge=1)
    max_sources_per_tenant: int = Field(10_000, ge=1)
    default_rate_limit_per_s: float = Field(
        2_000.0, gt=0, description="Requests per second per key unless the key sets its own."
    )
    default_daily_quota: int | None = Field(
        None, ge=1, description="Requests per key per UTC day (None: unlimited)."
    )
    batch_max_size: int = Field(
        256, ge=1, le=100_000, description="Most requests per engine call (per engine process)."
    )
    batch_max_wait_ms: float = Field(
        2.0, ge=0.0, le=1000.0, description="Longest wait (ms) for a batch to fill."
    )
    queue_max: int = Field(
        10_000, ge=1, description="Realtime requests waiting at most (per engine process)."
    )
    retention_days: float | None = Field(30.0, gt=0, description="Prediction retention.")
    job_lease_s: float = Field(
        60.0,
        ge=1.0,
        le=86_400.0,
        description="A queued or running batch job or validation run whose gateway has not "
        "renewed its lease (every job_lease_s / 6) for this long is closed as failed "
        "('interrupted'): its gateway died.",
    )
    checkpoint_interval_s: float = Field(
        300.0,
        ge=1.0,
        description="Seconds between checkpoints of changed sources (also on erase and SIGTERM); "
        "a source's checkpoint is ~135 KB with the default engine.",
    )
    mode: Literal["embedded", "distributed"] = Field(
        "embedded",
        description="embedded: this process runs the engine; distributed: a stateless gateway "
        "in front of `nqp worker` processes on Kafka (needs stream.bootstrap_servers).",
    )
    engine_process: bool = Field(
        True,
        description="Run the engine in a child process (its own core and GIL); False: in a "
        "thread of the gateway process.",
    )
    engine_processes: int | None = Field(
        None,
        ge=1,
        le=64,
        description="Engine child processes; sources are sharded over them by name, and "
        "each batches and steps its own (one core each; ignored without engine_process). "
        "Default: 2 where this process may use 2 or more cores, else 1.",
    )
    callback_allowed_hosts: list[str] = Field(
        default_factory=list, description="Hosts batch callbacks may be posted to."
    )

    @property
    def engine_process_count(self) -> int:
        """``engine_processes``, or its default on this machine.

        Two engine processes by default on two or more usable cores: measured on a 2-core
        machine (``bench/load.py``) a batch job stepped 18,200-22,800 points/s with two
        against 13,500-14,400 with one, while realtime calls cost 0.06-0.28 ms more server
        CPU each (half-width waves) and kept their latency targets; a realtime-only host
        serves more calls with one (README, Performance).
        """
        if self.engine_processes is not None:
            return self.engine_processes
        return 2 if _usable_cores() >= 2 else 1


def _usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class StreamSettings(BaseModel):
    """Distributed mode: Kafka topics, the worker group and the gateway's reply wait."""

    model_config = {"extra": "forbid"}

    bootstrap_servers: str | None = Field(
        None, description="Kafka bootstrap servers (host:port[,host:port]); None: embedded mode."
    )
    input_topic: str = Field("realtime-data-input", min_length=1)
    predictions_topic: str = Field("predictions", min_length=1)
    neuromorphic_topic: str = Field("neuromorphic-results", min_length=1)
    quantum_topic: str = Field("quantum-results", min_length=1)
    dead_letter_topic: str = Field("realtime-data-dlq", min_length=1)
    reply_topic_prefix: str = Field(
        "nqp-replies", min_length=1, description="Each gateway reads replies from PREFIX.<id>."
    )
    partitions: int = Field(8, ge=1, le=10_000, description="Partitions of created topics.")
    replication_factor: int = Field(1, ge=1, le=10)
    group_id: str = Field("nqp-workers", min_length=1, description="The workers' group.")
    gateway_id: str | None = Field(
        None,
        description="Names this gateway's reply topic; give a stable one (the pod name) so a "
        "restarted gateway reuses it. Default: host and process id.",
    )
    reply_timeout_s: float = Field(
        10.0, gt=0, le=300.0, description="A realtime call waits this long, then 503."
    )
    kafka_options: dict[str, str] = Field(
        default_factory=dict,
        description="librdkafka properties for every client (prefix consumer./producer./admin. "
        "for one kind), e.g. security settings.",
    )
    worker_batch_max: int = Field(256, ge=1, le=100_000)
    worker_batch_wait_ms: float = Field(5.0, ge=0.0, le=1000.0)
    commit_interval_s: float = Field(
        1.0,
        gt=0,
        le=3600.0,
        description="Workers checkpoint changed sources, then commit offsets, this often.",
    )


class Settings(BaseSettings):
    """All NQP settings. Every random generator is seeded from ``seed``."""

    model_config = SettingsConfigDict(
        env_prefix="NQP_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    seed: int = Field(0, ge=0, description="Root seed for every random generator.")
    data_dir: Path = Field(Path(".nqp"), description="Where embedded mode keeps its files.")
    neuromorphic: NeuromorphicSettings = NeuromorphicSettings()
    quantum: QuantumSettings = QuantumSettings()
    engine: EngineSettings = EngineSettings()
    service: ServiceSettings = ServiceSettings()
    stream: StreamSettings = StreamSettings()
