"""Message transport between the engine and its consumers.

:mod:`nqp.stream.bus` is the in-process bus of embedded mode; the distributed mode's
Kafka transport lives beside it.
"""

from nqp.stream.bus import BusSubscription, InProcessBus

__all__ = ["BusSubscription", "InProcessBus"]
