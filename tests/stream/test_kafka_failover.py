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

_ASSIGNED = re.compile(r"assigned partitions \[([0-9, ]*)\]")


def _assignments(log: Path) -> list[list[int]]:
    text = log.read_text() if log.exists() else ""
    return [[int(p) for p in m.split(",") if p.strip()] for m in _ASSIGNED.findall(text)]


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
    n_sources, n_points = 8, 60
    rng = np.random.default_rng(11)
    series = 50 + rng.normal(size=(n_sources, n_points)).cumsum(axis=1)
    sources = [f"sensor-{i}" for i in range(n_sources)]
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
        wait_for(lambda: any(_assignments(logs["A"])), 60, "worker A's first assignment")
        procs["B"] = _start(settings, "B", logs["B"])
        wait_for(lambda: any(_assignments(logs["B"])), 60, "worker B's share of the partitions")
        owned_b = _assignments(logs["B"])[-1]
        assert 0 < len(owned_b) < s.partitions  # the two share the partitions

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
        assert set(_assignments(logs["B"])[-1]) | set(owned_b) == set(range(s.partitions))
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
