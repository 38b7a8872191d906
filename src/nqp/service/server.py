"""``nqp serve``'s HTTP server: uvicorn, with long polls ended as shutdown begins.

On SIGINT/SIGTERM uvicorn stops accepting connections and waits (up to its graceful
timeout) for the requests in flight before the app's lifespan drains the runtime. A
``GET …?wait=…`` in flight (a batch job's or a validation run's) would hold that up for as
long as it waits, so :class:`Server` ends every wait at once
(:meth:`nqp.service.waits.Ends.close`): those requests answer with the status as it is.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn

from nqp.service.waits import Ends

__all__ = ["Server"]


class Server(uvicorn.Server):
    """:class:`uvicorn.Server` that ends the app's long polls (``ends``) at shutdown.

    ``ends`` is the app's ``runtime.ends`` (an app made by
    :func:`nqp.service.app.create_app`).
    """

    def __init__(self, config: uvicorn.Config, ends: Ends) -> None:
        super().__init__(config)
        self.ends = ends

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        try:
            loop = asyncio.get_running_loop()  # a signal handler runs on the loop's thread
        except RuntimeError:  # not serving yet: no request can be waiting
            return
        loop.call_soon_threadsafe(self.ends.close)
