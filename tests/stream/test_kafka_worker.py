"""One worker on a real broker: validation and dead letters, results equal to the embedded
engine, producer-sequence retries, erasure, and replays after a crash between the
checkpoint and the offset commit."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request

import numpy as np
import orjson
import pytest
from confluent_kafka.admin import AdminClient

from nqp.engine import Platform, ProcessItem
from nqp.stream.kafka import partition_for
from nqp.stream.messages import DeadLetter
from nqp.stream.tansu import free_port

from .conftest import (
    create_tenant,
    produce,
    read_topic,
    stored_predictions,
    stream_settings,
    wait_for,
    worker_thread,
)

pytestmark = pytest.mark.services

_FLOAT_FIELDS = ("confidence", "magnitude", "expected_change", "uncertainty", "anomaly_score")


def assert_same_prediction(got: dict, want: dict) -> None:
    """Equal in every field but processing_time_ms.

    Identity, order and discrete fields are exact; real-valued fields to 1e-9 relative:
    the engine's BLAS kernels differ in the last bits with the batch composition (a
    worker's batches are not the reference's), see docs/streaming.md.
    """
    for key in (
        "prediction_id",
        "source",
        "sequence",
        "timestamp",
        "value",
        "horizon",
        "warming_up",
        "direction",
    ):
        assert got[key] == want[key], (key, got[key], want[key])
    for key in (*_FLOAT_FIELDS, "time_horizon_ms"):
        assert math.isclose(got[key], want[key], rel_tol=1e-9, abs_tol=1e-12), key
    for part in ("neuromorphic_results", "quantum_results"):
        assert (got[part] is None) == (want[part] is None)
    if want["quantum_results"] is not None:
        gq, wq = got["quantum_results"], want["quantum_results"]
        assert math.isclose(gq["energy"], wq["energy"], rel_tol=1e-9, abs_tol=1e-12)
        assert gq["convergence"]["converged"] == wq["convergence"]["converged"]
    if want["neuromorphic_results"] is not None:
        gn, wn = got["neuromorphic_results"], want["neuromorphic_results"]
        assert gn["spike_analysis"]["spike_count"] == wn["spike_analysis"]["spike_count"]
        for kind, strength in wn["patterns"].items():
            assert math.isclose(gn["patterns"][kind], strength, rel_tol=1e-9, abs_tol=1e-12)


def reference(settings, tenant_id, points, platform=None):
    """Predictions of one embedded Platform fed ``points`` [(source, data, ts, config)]."""
    platform = Platform(settings) if platform is None else platform
    out = {}
    for source, data, ts, config in points:
        for pred in platform.process_many([ProcessItem(f"{tenant_id}/{source}", data, ts, config)])[
            0
        ]:
            payload = pred.model_dump(mode="json")
            payload["source"] = source
            out[payload["prediction_id"]] = payload
    return out


def record(tenant_id: str, source: str, **fields) -> dict:
    value = {"tenant_id": tenant_id, "source": source, **fields}
    return {"key": f"{tenant_id}/{source}".encode(), "value": orjson.dumps(value)}


def test_bad_records_go_to_the_dead_letter_topic_and_nothing_is_dropped(kafka_bootstrap, stream_db):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    s = settings.stream
    good = [record(tid, "s1", data=[1.0 + i], timestamp=100.0 + i) for i in range(5)]
    wrong_p = next(
        p for p in range(s.partitions) if p != partition_for(f"{tid}/s2".encode(), s.partitions)
    )
    bad = [
        ({"key": f"{tid}/s1".encode(), "value": b"{broken"}, "invalid_json"),
        (record(tid, "s1", data="1.0"), "invalid_schema"),
        ({"key": b"other/s1", "value": record(tid, "s1", data=1.0)["value"]}, "key_mismatch"),
        (
            {
                "key": f"{tid}/s1".encode(),
                "value": f'{{"tenant_id": "{tid}", "source": "s1", "data": [NaN]}}'.encode(),
            },
            "invalid_data",
        ),
        (record(tid, "s1", data=[[1.0, 2.0]], timestamp=200.0), "invalid_data"),  # channels
        (record(tid, "s1", data=1.0, timestamp=1.0), "invalid_data"),  # earlier than last
        (record("no-such-tenant", "s1", data=1.0), "unknown_tenant"),
        ({**record(tid, "s2", data=1.0), "partition": wrong_p}, "wrong_partition"),
        (record(tid, "s1", data=[1.0] * 10_001), "too_large"),
    ]
    records = good[:3] + [b for b, _ in bad] + good[3:]
    port = free_port()
    with worker_thread(settings, metrics_port=port) as w:
        produce(kafka_bootstrap, s.input_topic, records)
        dead = read_topic(kafka_bootstrap, s.dead_letter_topic, len(bad))
        wait_for(lambda: len(stored_predictions(url, tid)) >= len(good), 30, "predictions")
        wait_for(lambda: sum(w.worker.counts.values()) >= len(records), 30, "all records")
        counts = w.worker.counts
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        for probe in ("healthz", "readyz"):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/{probe}", timeout=5) as r:
                assert json.loads(r.read()) == {"status": "ok"}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nothing-here", timeout=5)
        assert missing.value.code == 404
        missing.value.close()
        w.worker._last_loop -= 120.0  # as if the loop had stalled for two minutes
        assert "has not turned" in (w.worker._liveness() or "")
        assert w.worker._readiness() == w.worker._liveness()
        w.worker._last_loop += 120.0
        w.worker.stop()
        assert w.worker._readiness() == "draining"
    assert "nqp_worker_up 1.0" in metrics
    assert 'nqp_worker_records_total{outcome="processed"} 5.0' in metrics
    assert 'nqp_worker_dead_letters_total{reason="invalid_data"} 3.0' in metrics
    assert "nqp_worker_partitions 4.0" in metrics
    letters = [DeadLetter.from_record(m.key(), m.value(), m.headers()) for m in dead]
    assert sorted(dl.reason for dl in letters) == sorted(r for _, r in bad)
    originals = {bytes(b["value"]) for b, _ in bad}
    for dl in letters:
        assert dl.value in originals  # unchanged, ready to fix and re-produce
        assert dl.topic == s.input_topic
        assert dl.offset >= 0
        assert dl.error
    errors = " | ".join(dl.error for dl in letters if dl.reason == "invalid_data")
    for fragment in ("NaN or Infinity", "channel(s) but source 's1' has 1", "earlier than"):
        assert fragment in errors
    assert tid not in errors  # the tenant's internal source name is not shown
    assert "murmur2" in next(dl.error for dl in letters if dl.reason == "wrong_partition")
    # nothing silently dropped: every record is a prediction or a dead letter
    preds = stored_predictions(url, tid)
    assert len(preds) == len(good)
    assert counts == {
        "processed": len(good),
        "dead_letter": len(bad),
        "duplicate": 0,
        "replayed": 0,
    }
    assert [p["sequence"] for p in preds] == [1, 2, 3, 4, 5]


def test_external_producer_results_equal_the_embedded_engine(kafka_bootstrap, stream_db):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url, worker_batch_max=16)
    s = settings.stream
    rng = np.random.default_rng(7)
    sources = [f"src-{i}" for i in range(6)]
    walks = {src: 100 + rng.normal(size=40).cumsum() for src in sources}
    points, records = [], []
    t0 = 1_700_000_000.0
    for k in range(0, 40, 4):  # messages of 1-4 points, some without a timestamp
        for j, src in enumerate(sources):
            n = 1 + (k + j) % 4
            data = [float(v) for v in walks[src][k : k + n]]
            config = {"quantum_enabled": j % 3 != 0} if k == 0 else None
            fields = {"data": data, **({"config": config} if config else {})}
            if j % 2:
                ts = [t0 + k + i for i in range(n)]
                fields["timestamp"] = ts
                rec = record(tid, src, **fields)
                points.append((src, data, ts, config))
            else:  # no timestamp: the record's Kafka timestamp is the points' time
                ms = int((t0 + k) * 1000)
                rec = {**record(tid, src, **fields), "timestamp": ms}
                points.append((src, data, ms / 1000.0, config))
            records.append(rec)
    embedded = Platform(settings)
    want = reference(settings, tid, points, embedded)
    port = free_port()
    with worker_thread(settings, metrics_port=port):
        produce(kafka_bootstrap, s.input_topic, records)
        wait_for(lambda: len(stored_predictions(url, tid)) >= len(want), 60, "predictions")
        topic = read_topic(kafka_bootstrap, s.predictions_topic, len(want))
        neuro = read_topic(kafka_bootstrap, s.neuromorphic_topic, len(want))
        quantum = read_topic(kafka_bootstrap, s.quantum_topic, 1)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            metrics = r.read().decode()
        described = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    # every topic the worker uses was created with the configured partition count
    for name in (s.input_topic, s.predictions_topic, s.neuromorphic_topic, s.quantum_topic):
        assert len(described.topics[name].partitions) == s.partitions, name
    # the worker exports each source's rolling hit rate (alert NQPLowRollingHitRate), equal
    # to the embedded engine's for the same points
    rates = embedded.rolling_hit_rates([f"{tid}/{src}" for src in sources])
    assert rates, "no source is past its warm-up"
    for internal, rate in rates.items():
        line = f'nqp_source_rolling_hit_rate{{source="{internal.split("/", 1)[1]}",tenant="{tid}"}}'
        exported = [float(x.split()[-1]) for x in metrics.splitlines() if x.startswith(line)]
        assert exported == [pytest.approx(rate, abs=1e-12)], internal
    got = stored_predictions(url, tid)
    assert len(got) == len(want)
    for payload in got:
        assert payload["_sequence_column"] == payload["sequence"]
        assert_same_prediction(payload, want[payload["prediction_id"]])
    for src in sources:
        seqs = [p["sequence"] for p in got if p["source"] == src]
        assert sorted(seqs) == list(range(1, len(seqs) + 1))
    # the predictions topic carries the same payloads, keyed tenant/source
    produced = {}
    for m in topic:
        payload = orjson.loads(m.value())
        assert m.key() == f"{tid}/{payload['source']}".encode()
        assert dict(m.headers())["nqp-tenant"] == tid.encode()
        produced[payload["prediction_id"]] = payload
    assert set(produced) == set(want)
    for pid, payload in produced.items():
        assert_same_prediction(payload, want[pid])
    assert {orjson.loads(m.value())["prediction_id"] for m in neuro} == set(want)
    q_ids = {orjson.loads(m.value())["prediction_id"] for m in quantum}
    assert q_ids == {pid for pid, p in want.items() if p["quantum_results"] is not None}
    assert all("quantum_results" in orjson.loads(m.value()) for m in quantum)


def test_producer_sequence_retries_are_applied_once(kafka_bootstrap, stream_db):
    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    s = settings.stream
    sent = [(1, 10.0), (2, 11.0), (2, 11.0), (3, 12.0), (1, 10.0), (4, 13.0)]
    records = [record(tid, "s", data=v, timestamp=100.0 + v, sequence=q) for q, v in sent]
    records.insert(
        3,
        record(
            tid,
            "s",
            data=99.0,
            timestamp=111.5,
            sequence=2,
            reply_to="my-replies",
            request_id="dup-1",
        ),
    )
    with worker_thread(settings) as w:
        produce(kafka_bootstrap, s.input_topic, records)
        wait_for(lambda: sum(w.worker.counts.values()) >= len(records), 30, "all records")
        replies = read_topic(kafka_bootstrap, "my-replies", 1)
        counts = w.worker.counts
    preds = stored_predictions(url, tid)
    assert [p["value"] for p in preds] == [10.0, 11.0, 12.0, 13.0]
    assert [p["sequence"] for p in preds] == [1, 2, 3, 4]
    assert counts["processed"] == 4
    assert counts["duplicate"] == 3
    reply = orjson.loads(replies[0].value())
    assert reply["request_id"] == "dup-1"
    assert reply["ok"] is False
    assert reply["error"]["code"] == "duplicate"


def test_erase_removes_state_checkpoint_and_predictions_in_order(kafka_bootstrap, stream_db):
    url, tid = stream_db
    other = create_tenant(url, "other")
    settings = stream_settings(kafka_bootstrap, url)
    s = settings.stream
    before = [record(tid, "s", data=float(i), timestamp=10.0 + i) for i in range(4)]
    erase = {
        **record(tid, "s", op="erase"),
        "value": orjson.dumps(
            {
                "tenant_id": tid,
                "source": "s",
                "op": "erase",
                "reply_to": "erase-replies",
                "request_id": "e1",
            }
        ),
    }
    after = [record(tid, "s", data=float(i), timestamp=20.0 + i) for i in range(2)]
    kept = [record(other, "s", data=1.0, timestamp=5.0)]  # another tenant's same name
    with worker_thread(settings) as w:
        produce(kafka_bootstrap, s.input_topic, [*before, erase, *after, *kept])
        wait_for(lambda: sum(w.worker.counts.values()) >= 8, 30, "all records")
        replies = read_topic(kafka_bootstrap, "erase-replies", 1)
    assert orjson.loads(replies[0].value()) == {"request_id": "e1", "ok": True, "erased": True}
    preds = stored_predictions(url, tid)
    # the source started again from scratch after the erase
    assert [(p["sequence"], p["timestamp"]) for p in preds] == [(1, 20.0), (2, 21.0)]
    assert len(stored_predictions(url, other)) == 1


def test_replay_after_a_crash_between_checkpoint_and_commit_applies_nothing_twice(
    kafka_bootstrap, stream_db
):
    """The stored checkpoint is ahead of the committed offset (the crash window between
    the database commit and the Kafka commit): the next owner must skip, per source,
    exactly the records the checkpoint holds."""
    from confluent_kafka import Consumer, TopicPartition

    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    s = settings.stream
    sources = ["a", "b", "c"]
    first = [
        record(tid, src, data=float(i), timestamp=100.0 + i) for i in range(6) for src in sources
    ]
    second = [
        record(tid, src, data=float(i), timestamp=100.0 + i)
        for i in range(6, 10)
        for src in sources
    ]
    points = [(src, float(i), 100.0 + i, None) for i in range(10) for src in sources]
    want = reference(settings, tid, points)
    with worker_thread(settings) as w:
        produce(kafka_bootstrap, s.input_topic, first)
        wait_for(lambda: w.worker.counts["processed"] >= len(first), 30, "first records")
    # the worker stopped cleanly: checkpoints and offsets are saved. Now rewind the
    # group's committed offsets to 0, as if the crash had come before the Kafka commit.
    rewind = Consumer(
        {"bootstrap.servers": kafka_bootstrap, "group.id": s.group_id, "enable.auto.commit": False}
    )
    rewind.commit(
        offsets=[TopicPartition(s.input_topic, p, 0) for p in range(s.partitions)],
        asynchronous=False,
    )
    rewind.close()
    with worker_thread(settings) as w2:
        produce(kafka_bootstrap, s.input_topic, second)
        wait_for(lambda: w2.worker.counts["processed"] >= len(second), 30, "second records")
        counts = w2.worker.counts
    assert counts["replayed"] == len(first)  # skipped, not applied again
    got = stored_predictions(url, tid)
    assert len(got) == len(want)
    for payload in got:
        assert_same_prediction(payload, want[payload["prediction_id"]])


def test_positions_of_a_deleted_and_recreated_topic_do_not_skip_new_records(
    kafka_bootstrap, stream_db
):
    """Regression: a re-created input topic starts at offset 0 again; the stored positions
    of its previous life (same name, partition, higher offsets) must not be taken for
    "already applied"."""
    from confluent_kafka.admin import AdminClient

    from nqp.stream.kafka import ensure_topics

    url, tid = stream_db
    settings = stream_settings(kafka_bootstrap, url)
    s = settings.stream
    with worker_thread(settings) as w:
        produce(
            kafka_bootstrap,
            s.input_topic,
            [record(tid, "s", data=float(i), timestamp=10.0 + i) for i in range(8)],
        )
        wait_for(lambda: w.worker.counts["processed"] >= 8, 30, "the first life's records")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.delete_topics([s.input_topic])[s.input_topic].result(10)
    wait_for(lambda: s.input_topic not in admin.list_topics(timeout=5).topics, 10, "deletion")
    assert ensure_topics(settings) == [s.input_topic]
    with worker_thread(settings) as w2:
        produce(
            kafka_bootstrap,
            s.input_topic,
            [record(tid, "s", data=float(i), timestamp=30.0 + i) for i in range(3)],
        )
        wait_for(lambda: sum(w2.worker.counts.values()) >= 3, 30, "the new records")
        counts = w2.worker.counts
    assert counts["replayed"] == 0
    preds = stored_predictions(url, tid)
    assert [p["sequence"] for p in preds] == list(range(1, 12))  # state continued
