"""One BLAS thread in every process that steps the engine: processes are its parallelism."""

from __future__ import annotations

from threadpoolctl import threadpool_info, threadpool_limits

__all__ = ["blas_threads", "use_one_blas_thread"]


def blas_threads() -> int:
    """The most threads any BLAS library loaded in this process may use (1 if none)."""
    return max(
        (pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"), default=1
    )


def use_one_blas_thread() -> None:
    """Limit this process's BLAS and OpenMP thread pools to one thread, from now on.

    The engine's BLAS calls are small (a wave's ``(B, 256) @ (256, 64)`` projection and the
    like); with OpenBLAS's default of one thread per core, its threads wait spinning on the
    cores that the other engine process and the gateway need. Measured on a 2-core machine,
    ``nqp serve`` without ``OPENBLAS_NUM_THREADS`` stepped a 50,000-point batch job at
    6,751-6,977 points/s with 6.0-6.7 s of CPU per engine process, against 15,290-19,210
    points/s and 1.9-2.5 s with one thread (``bench/load.py --batch-only``). Called by the
    engine's child processes, ``nqp serve`` (whose process may step the engine itself) and
    ``nqp worker``; an environment variable such as ``OPENBLAS_NUM_THREADS`` would come too
    late for the children, which inherit numpy already imported.
    """
    threadpool_limits(limits=1)
