"""Long polling: requests that wait for a batch job or validation run to end.

``GET /api/v1/jobs/{id}?wait=…`` and ``GET /api/v1/validation/runs/{id}?wait=…`` answer
when the job or run ends rather than at once, so a client need not poll. Whatever ends
background work on this gateway calls :meth:`Ends.announce`, which wakes every waiting
request; each reads its own resource again and goes on waiting if that one is still running.
Work another gateway runs (or one closed by lease expiry) ends in the database only, so a
waiting request also reads again every :data:`RECHECK_S`. When the server starts shutting
down, :meth:`Ends.close` answers every wait at once (``nqp.service.server``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TypeVar

__all__ = ["MAX_WAIT_S", "RECHECK_S", "Ends"]

#: Longest ``wait`` a request may ask for, in seconds (a client waiting longer asks again).
MAX_WAIT_S = 30.0
#: How often a waiting request reads its resource again without being woken, in seconds.
RECHECK_S = 0.5

T = TypeVar("T")


class Ends:
    """Wakes requests waiting for background work of this gateway to end."""

    def __init__(self) -> None:
        self._ended = asyncio.Event()  # set, then replaced, at each announcement
        self._closing = False

    def announce(self) -> None:
        """Something ended: wake every waiting request to read its resource again."""
        ended, self._ended = self._ended, asyncio.Event()
        ended.set()

    def close(self) -> None:
        """End every wait now and wait no more from here on (the server is stopping)."""
        self._closing = True
        self.announce()

    async def wait_until(
        self,
        read: Callable[[], Awaitable[T]],
        done: Callable[[T], bool],
        wait: float,
        *,
        release: Callable[[], Awaitable[object]] | None = None,
    ) -> T:
        """``read()`` again until ``done`` of it, ``wait`` seconds have passed or closing.

        Returns the last value read. ``release`` is awaited before each wait (e.g. to give
        a database connection back to its pool while nothing is read).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while True:
            ended = self._ended  # before the read: an end after it still wakes this wait
            value = await read()
            remaining = deadline - loop.time()
            if done(value) or remaining <= 0 or self._closing:
                return value
            if release is not None:
                await release()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(ended.wait(), min(remaining, RECHECK_S))
