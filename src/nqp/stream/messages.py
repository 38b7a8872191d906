"""Wire format of the distributed mode: input, reply, result and dead-letter messages.

Every value is UTF-8 JSON; every key is ``"<tenant_id>/<source>"`` (so Kafka's default
partitioner puts all of a source's points on one partition, in order). The schema of
the input topic is public: external producers may write to it directly (docs/streaming.md
repeats it with examples).

Input message (topic ``realtime-data-input``)::

    {"tenant_id": "9f0c...",            required; the tenant's id (not its name)
     "source": "BTC-USD",               required; 1-200 printable characters
     "data": 1.5 | [1.5, 1.6] | [[1.5, 20.0], [1.6, 21.0]],
                                        required for op "process": points in time order
     "timestamp": 1700000000.0 | [..],  optional; epoch seconds, one per point or one for
                                        the last; default: the record's Kafka timestamp
     "config": {"neuromorphic_enabled": true, "quantum_enabled": true, "priority": 0,
                "horizon": 1, "target_channel": 0},   optional (ProcessConfig)
     "sequence": 42,                    optional; the producer's per-source counter: a
                                        message whose sequence is not above the last one
                                        seen for its source is a retry and is skipped
     "op": "process" | "erase",         optional, default "process"; "erase" deletes the
                                        source's state, checkpoint and predictions
     "reply_to": "nqp-replies.gw1",     optional, with request_id: where the worker sends
     "request_id": "4be1..."}           the reply (gateways use it for realtime calls)

Unknown fields, numbers given as strings or booleans, NaN/Infinity (not JSON anyway) and
a key other than ``tenant_id + "/" + source`` are rejected: the record goes to the
dead-letter topic, unchanged, with the reason in its headers (:func:`dead_letter_headers`).

Reply (topic ``reply_to``, key = request_id)::

    {"request_id": "4be1...", "ok": true, "predictions": [<prediction>, ...]}
    {"request_id": "4be1...", "ok": false, "error": {"code": "invalid_data", "message": ...}}

Results: ``predictions`` carries each prediction exactly as the REST API returns it
(``source`` is the tenant's own name), ``neuromorphic-results`` / ``quantum-results`` the
engine parts with ``tenant_id, source, prediction_id, sequence, timestamp``; keys are
``tenant/source`` and header ``nqp-tenant`` repeats the tenant. Delivery is
at-least-once: a consumer deduplicates by ``prediction_id``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from nqp.exceptions import InvalidInputError
from nqp.types import ProcessConfig

__all__ = [
    "DEAD_LETTER_REASONS",
    "DEFAULT_WS_CHANNEL_PREFIX",
    "H_DLQ_ERROR",
    "H_DLQ_OFFSET",
    "H_DLQ_PARTITION",
    "H_DLQ_REASON",
    "H_DLQ_TIMESTAMP",
    "H_DLQ_TOPIC",
    "H_DLQ_WORKER",
    "H_TENANT",
    "H_WORKER",
    "BadMessage",
    "DeadLetter",
    "InputMessage",
    "ReplyError",
    "ReplyMessage",
    "dead_letter_headers",
    "decode_input",
    "encode_input",
    "message_key",
    "point_count",
    "ws_channel",
]

#: Redis pub/sub channels of live predictions are ``PREFIX + tenant_id``.
DEFAULT_WS_CHANNEL_PREFIX = "nqp:ws:"

H_TENANT = "nqp-tenant"
H_WORKER = "nqp-worker"
H_DLQ_REASON = "nqp-dlq-reason"
H_DLQ_ERROR = "nqp-dlq-error"
H_DLQ_TOPIC = "nqp-dlq-topic"
H_DLQ_PARTITION = "nqp-dlq-partition"
H_DLQ_OFFSET = "nqp-dlq-offset"
H_DLQ_TIMESTAMP = "nqp-dlq-timestamp"
H_DLQ_WORKER = "nqp-dlq-worker"

#: Why a record was dead-lettered (the ``nqp-dlq-reason`` header).
DEAD_LETTER_REASONS = (
    "invalid_json",  # not UTF-8 JSON
    "invalid_schema",  # JSON, but not an input message (field named in the error)
    "key_mismatch",  # key missing or not tenant_id/source
    "wrong_partition",  # not on the partition Kafka's default partitioner gives the key
    "too_large",  # more points than service.max_points_per_request
    "unknown_tenant",  # no tenant with that id
    "invalid_data",  # rejected by the engine (non-finite, channels, time order, ...)
)

_TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
_MAX_SOURCE_LEN = 200
_MAX_ERROR_HEADER = 1000


def _no_bools(value: Any) -> Any:
    def walk(v: Any) -> None:
        if isinstance(v, bool):
            raise ValueError("values must be numbers, not booleans")
        if isinstance(v, list):
            for x in v:
                walk(x)

    walk(value)
    return value


Points = Annotated[
    float | list[float] | list[list[float]],
    BeforeValidator(_no_bools),
    Field(description="A number, numbers (univariate points) or lists (multivariate points)."),
]


class InputMessage(BaseModel):
    """One record of the input topic (see the module docstring for the schema)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    tenant_id: str = Field(min_length=1, max_length=32, pattern=r"^[^/\s]+$")
    source: str = Field(min_length=1, max_length=_MAX_SOURCE_LEN)
    op: Literal["process", "erase"] = "process"
    data: Points | None = None
    timestamp: float | list[float] | None = None
    config: ProcessConfig | None = None
    sequence: int | None = Field(None, ge=1, le=2**63 - 1)
    reply_to: str | None = Field(None, pattern=_TOPIC_PATTERN)
    request_id: str | None = Field(None, min_length=1, max_length=128)

    @model_validator(mode="after")
    def _consistent(self) -> InputMessage:
        if not self.source.isprintable():
            raise ValueError("source must be printable")
        if (self.reply_to is None) != (self.request_id is None):
            raise ValueError("reply_to and request_id go together")
        if self.op == "process" and self.data is None:
            raise ValueError("data is required")
        if self.op == "erase" and (
            self.data is not None or self.timestamp is not None or self.config is not None
        ):
            raise ValueError("an erase message has no data, timestamp or config")
        return self

    @property
    def key(self) -> bytes:
        """The record key: ``tenant_id/source``."""
        return message_key(self.tenant_id, self.source)


class ReplyError(BaseModel):
    """Why a request failed: a :data:`DEAD_LETTER_REASONS` code and a message."""

    code: str
    message: str


class ReplyMessage(BaseModel):
    """A worker's answer to a request that named ``reply_to``."""

    model_config = ConfigDict(extra="forbid")

    request_id: str
    ok: bool
    predictions: list[dict[str, Any]] = Field(default_factory=list)
    error: ReplyError | None = None
    erased: bool | None = Field(None, description="For op 'erase': whether the source existed.")


class BadMessage(InvalidInputError):
    """A record that is not a valid input message; ``reason`` is its dead-letter code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def message_key(tenant_id: str, source: str) -> bytes:
    """The record key of a source: ``b"tenant_id/source"``.

    Examples
    --------
    >>> message_key("acme", "BTC-USD")
    b'acme/BTC-USD'
    """
    return f"{tenant_id}/{source}".encode()


def ws_channel(prefix: str, tenant_id: str) -> str:
    """The Redis pub/sub channel of a tenant's live predictions: ``prefix + tenant_id``."""
    return f"{prefix}{tenant_id}"


def point_count(data: Any) -> int:
    """Points in a message's ``data`` (a number is one point, a list one per item)."""
    return len(data) if isinstance(data, list) else 1


def encode_input(message: InputMessage) -> bytes:
    """The JSON value of an input record (fields left at ``None`` are omitted).

    Examples
    --------
    >>> encode_input(InputMessage(tenant_id="acme", source="s", data=[1.0, 2.0]))
    b'{"tenant_id":"acme","source":"s","op":"process","data":[1.0,2.0]}'
    """
    return orjson.dumps(message.model_dump(mode="json", exclude_none=True))


def decode_input(
    key: bytes | None, value: bytes | None, *, max_points: int | None = None
) -> InputMessage:
    """Parse and validate one input record.

    Parameters
    ----------
    key, value : bytes or None
        The record's key and value.
    max_points : int, optional
        Most points one message may carry.

    Returns
    -------
    InputMessage

    Raises
    ------
    BadMessage
        With ``reason`` one of :data:`DEAD_LETTER_REASONS` and a message naming the field.

    Examples
    --------
    >>> decode_input(b"acme/s", b'{"tenant_id": "acme", "source": "s", "data": 1}').data
    1.0
    >>> decode_input(b"acme/s", b'{"tenant_id": "acme", "source": "s", "data": NaN}')
    Traceback (most recent call last):
    ...
    nqp.stream.messages.BadMessage: data holds NaN or Infinity (not JSON numbers).
    """
    if value is None:
        raise BadMessage("invalid_json", "The record has no value.")
    try:
        obj = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise _json_error(value, exc) from None
    if not isinstance(obj, dict):
        raise BadMessage("invalid_schema", "The value must be a JSON object.")
    try:
        message = InputMessage.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        text = f"{where}: {err['msg']}" if where else str(err["msg"])
        raise BadMessage("invalid_schema", text) from None
    if key != message.key:
        shown = key.decode("utf-8", "replace") if key is not None else None
        raise BadMessage(
            "key_mismatch",
            f"The record key must be tenant_id/source ({message.key.decode()!r}), got {shown!r}.",
        )
    if max_points is not None and message.data is not None:
        n = point_count(message.data)
        if n > max_points:
            raise BadMessage("too_large", f"data has {n} points; at most {max_points}.")
        if n == 0:
            raise BadMessage("invalid_data", "data must hold at least one point.")
    return message


def _json_error(value: bytes, exc: Exception) -> BadMessage:
    """Tell non-finite numbers (NaN, Infinity, 1e400) apart from broken JSON."""
    try:
        json.loads(value)
    except (ValueError, UnicodeDecodeError):
        return BadMessage("invalid_json", f"The value is not UTF-8 JSON: {exc}")
    return BadMessage(
        "invalid_data",
        "data holds NaN or Infinity (not JSON numbers).",
    )


def dead_letter_headers(
    *,
    reason: str,
    error: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    worker_id: str,
    original: list[tuple[str, bytes]] | None = None,
) -> list[tuple[str, bytes]]:
    """Headers of a dead-lettered record: the original headers plus why and where from."""
    if reason not in DEAD_LETTER_REASONS:
        raise ValueError(f"Unknown dead-letter reason {reason!r}.")
    headers = [(k, v) for k, v in (original or []) if not k.startswith("nqp-dlq-")]
    headers += [
        (H_DLQ_REASON, reason.encode()),
        (H_DLQ_ERROR, error[:_MAX_ERROR_HEADER].encode()),
        (H_DLQ_TOPIC, topic.encode()),
        (H_DLQ_PARTITION, str(partition).encode()),
        (H_DLQ_OFFSET, str(offset).encode()),
        (H_DLQ_TIMESTAMP, str(timestamp_ms if timestamp_ms is not None else -1).encode()),
        (H_DLQ_WORKER, worker_id.encode()),
    ]
    return headers


@dataclass(frozen=True)
class DeadLetter:
    """A record read back from the dead-letter topic.

    Attributes
    ----------
    key, value : bytes or None
        The original record's key and value, unchanged (fix and re-produce them).
    reason : str
        One of :data:`DEAD_LETTER_REASONS`.
    error : str
        What was wrong, naming the field.
    topic : str
    partition : int
    offset : int
        Where the original record was.
    """

    key: bytes | None
    value: bytes | None
    reason: str
    error: str
    topic: str
    partition: int
    offset: int

    @classmethod
    def from_record(
        cls, key: bytes | None, value: bytes | None, headers: list[tuple[str, bytes]] | None
    ) -> DeadLetter:
        """Read the dead-letter headers of a consumed record."""
        h = {k: v.decode() for k, v in (headers or []) if k.startswith("nqp-dlq-")}
        return cls(
            key=key,
            value=value,
            reason=h.get(H_DLQ_REASON, ""),
            error=h.get(H_DLQ_ERROR, ""),
            topic=h.get(H_DLQ_TOPIC, ""),
            partition=int(h.get(H_DLQ_PARTITION, "-1")),
            offset=int(h.get(H_DLQ_OFFSET, "-1")),
        )
