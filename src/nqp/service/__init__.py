"""The HTTP/WebSocket service around :class:`nqp.Platform` (DESIGN.md §5).

Infrastructure pieces, each independent of FastAPI: :mod:`nqp.service.batcher`
(micro-batching onto one engine thread), :mod:`nqp.service.hub` (WebSocket fan-out per
tenant), :mod:`nqp.service.breaker` (circuit breaker for Redis/Kafka/callbacks).
"""
