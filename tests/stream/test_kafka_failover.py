"""Two worker processes share the input partitions; one is SIGKILLed mid-stream.

The survivor takes the dead worker's partitions over, restores their sources from the
last checkpoints and replays from the last committed offsets. Every point must end up
with exactly one stored prediction, in order per source, equal to what one embedded
engine computes for the same points.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pytest

from nqp.stream.kafka import ensure_topics, partition_for

from .conftest import (
    produce,
    read_topic,
    stored_predictions,
    stream_settings,
    wait_for,
    worker_env,
)
from .test_kafka_worker import assert_same_prediction, record, reference

pytestmark = pytest.mark.services


_REBALANCE = re.compile(r"(assigned|revoking|lost) partitions \[([0-9, ]*)\]")


def _owned(log: Path) -> set[int]:
    """The partitions a worker owns now, replayed from its log: cooperative-sticky
    assignment logs increments ("assigned" adds, "revoking" and "lost" remove)."""
    owned: set[int] = set()
    for what, parts in _REBALANCE.findall(log.read_text() if log.exists() else ""):
        change = {int(p) for p in parts.split(",") if p.strip()}
        owned = owned | change if what == "assigned" else owned - change
    return owned


def _sources_on_every_partition(tenant_id: str, partitions: int, per_partition: int) -> list[str]:
    """Source names whose keys fill every input partition with ``per_partition`` sources.

    The keys hash with the tenant id, a fresh uuid per run: names picked blindly left a
    worker's partitions empty now and then (all eight on two of four partitions: 1 run in
    256), and a dead worker with nothing to take over tests nothing.
    """
    chosen: dict[int, list[str]] = {p: [] for p in range(partitions)}
    i = 0
    while any(len(names) < per_partition for names in chosen.values()):
        name = f"sensor-{i}"
        home = chosen[partition_for(f"{tenant_id}/{name}".encode(), partitions)]
        if len(home) < per_partition:
            home.append(name)
        i += 1
    return sorted((n for names in chosen.values() for n in names), key=lambda n: int(n[7:]))


def _start(settings, worker_id: str, log: Path) -> subprocess.Popen:
    with log.open("wb") as out:  # the child keeps its own descriptor
        return _popen(settings, worker_id, out)


def _popen(settings, worker_id: str, out) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nqp.stream.worker",
            "--worker-id",
            worker_id,
            "--kafka-option",
            "consumer.session.timeout.ms=3000",
            "--kafka-option",
            "consumer.heartbeat.interval.ms=300",
        ],
        env=worker_env(settings),
        stdout=out,
        stderr=subprocess.STDOUT,
    )


@pytest.mark.parametrize(
    "commit_interval_s",
    [
        # A commits when B joins (its revoked partitions) and then not again before it
        # dies: everything it does after B's join is uncommitted and must be replayed
        60.0,
        # periodic checkpoint rounds all along: the kill may fall anywhere in one
        0.4,
    ],
)
def test_killed_worker_is_taken_over_without_loss_or_duplicates(
    kafka_bootstrap, stream_db, tmp_path, commit_interval_s
):
    url, tid = stream_db
    settings = stream_settings(
        kafka_bootstrap, url, commit_interval_s=commit_interval_s, partitions=4
    )
    s = settings.stream
    ensure_topics(settings)
    sources = _sources_on_every_partition(tid, s.partitions, per_partition=2)
    n_sources, n_points = len(sources), 60
    rng = np.random.default_rng(11)
    series = 50 + rng.normal(size=(n_sources, n_points)).cumsum(axis=1)
    rounds = [
        [
            record(tid, src, data=float(series[j, k]), timestamp=1000.0 + k)
            for j, src in enumerate(sources)
        ]
        for k in range(n_points)
    ]
    points = [
        (src, float(series[j, k]), 1000.0 + k, None)
        for k in range(n_points)
        for j, src in enumerate(sources)
    ]
    want = reference(settings, tid, points)

    logs = {name: tmp_path / f"worker-{name}.log" for name in ("A", "B")}
    procs = {"A": _start(settings, "A", logs["A"])}
    try:
        wait_for(lambda: _owned(logs["A"]), 60, "worker A's first assignment")
        procs["B"] = _start(settings, "B", logs["B"])
        wait_for(lambda: _owned(logs["B"]), 60, "worker B's share of the partitions")
        assert 0 < len(_owned(logs["B"])) < s.partitions  # the two share the partitions

        half = n_points // 2
        for k in range(half):
            produce(kafka_bootstrap, s.input_topic, rounds[k])
            time.sleep(0.02)
        # both are working on the stream: kill A with its latest points uncommitted
        wait_for(
            lambda: len(stored_predictions(url, tid)) >= n_sources * (half - 5),
            60,
            "the first half to be processed",
        )
        for k in range(half, half + 5):
            produce(kafka_bootstrap, s.input_topic, rounds[k])
        procs["A"].send_signal(signal.SIGKILL)
        procs["A"].wait(10)
        for k in range(half + 5, n_points):
            produce(kafka_bootstrap, s.input_topic, rounds[k])
            time.sleep(0.01)

        wait_for(
            lambda: len(stored_predictions(url, tid)) >= n_sources * n_points,
            90,
            "every point's prediction after the takeover",
        )
        assert _owned(logs["B"]) == set(range(s.partitions))  # B took A's partitions over
        procs["B"].send_signal(signal.SIGTERM)  # drains, checkpoints, commits, leaves
        assert procs["B"].wait(30) == 0, logs["B"].read_text()[-3000:]
        got = stored_predictions(url, tid)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)

    # B consumed every record (so no straggler can add rows after the count above)
    from confluent_kafka import Consumer, TopicPartition

    per_partition = [0] * s.partitions
    for rnd in rounds:
        for r in rnd:
            per_partition[partition_for(r["key"], s.partitions)] += 1
    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": s.group_id})
    try:
        committed = reader.committed(
            [TopicPartition(s.input_topic, p) for p in range(s.partitions)], timeout=10
        )
    finally:
        reader.close()
    # (a partition that got no record has no committed offset: -1001)
    assert [max(tp.offset, 0) for tp in committed] == per_partition
    assert len(got) == n_sources * n_points
    assert len({p["prediction_id"] for p in got}) == len(got)
    for j, src in enumerate(sources):
        mine = sorted((p for p in got if p["source"] == src), key=lambda p: p["sequence"])
        assert [p["sequence"] for p in mine] == list(range(1, n_points + 1))
        assert [p["timestamp"] for p in mine] == [1000.0 + k for k in range(n_points)]
        assert [p["value"] for p in mine] == [float(v) for v in series[j]]
    for payload in got:
        assert_same_prediction(payload, want[payload["prediction_id"]])
    # the output topic is at-least-once: every prediction is there (replays may repeat)
    published = read_topic(kafka_bootstrap, s.predictions_topic, len(got))
    assert {orjson.loads(m.value())["prediction_id"] for m in published} == set(want)
    if commit_interval_s > 30:  # A's uncommitted work was replayed by B (same ids, stored once)
        assert len(published) > len(want)
    assert "Traceback" not in logs["B"].read_text()
