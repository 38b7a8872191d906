"""The streaming engine: per-source state, batched steps, predictions (``nqp.Platform``)."""

from __future__ import annotations

from nqp.engine.platform import Platform, ProcessItem, SourceSummary
from nqp.engine.store import CheckpointSink, MemoryCheckpointSink, SourceStore

__all__ = [
    "CheckpointSink",
    "MemoryCheckpointSink",
    "Platform",
    "ProcessItem",
    "SourceStore",
    "SourceSummary",
]
