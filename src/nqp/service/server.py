"""``nqp serve``'s HTTP server: uvicorn, with job waits ended as shutdown begins.

On SIGINT/SIGTERM uvicorn stops accepting connections and waits (up to its graceful
timeout) for the requests in flight before the app's lifespan drains the runtime. A
``GET /api/v1/jobs/{id}?wait=…`` in flight would hold that up for as long as it waits, so
:class:`Server` tells the app's job runner to end every wait at once
(:meth:`~nqp.service.jobs.JobRunner.close_waits`): those requests answer with the job's
status as it is.
"""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn

from nqp.service.api.routes.batch import job_runner_of

__all__ = ["Server"]


class Server(uvicorn.Server):
    """:class:`uvicorn.Server` for an app made by :func:`nqp.service.app.create_app`."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        runner = job_runner_of(self.config.app)  # the app object itself, not an import string
        try:
            loop = asyncio.get_running_loop()  # a signal handler runs on the loop's thread
        except RuntimeError:  # not serving yet: no request can be waiting
            return
        loop.call_soon_threadsafe(runner.close_waits)
