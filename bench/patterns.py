"""Pattern scan throughput: ``PatternDetector.detect`` against its former numpy version.

Run: ``.venv/bin/python bench/patterns.py``. One JSON line per figure; BLAS is pinned to
one thread and every line carries the 1-minute load average (the machine may be shared).

Figures
-------
* ``detect``: ms per call of the engine's scan, ``PatternDetector(kinds=every kind but
  "emergent").detect(raster)`` on bool rasters of shape (batch, 200, 32), one Bernoulli
  rate in [0.01, 0.5] per window, for batch 25, 100 and 256; median over repeats, side
  by side with the frozen numpy reference (``tests/neuromorphic/_patterns_reference.py``,
  the implementation before the numba kernels) on the same rasters, with the largest
  absolute difference between the two.
* ``kind``: the same per kind, calling the public function on a float64 raster
  (``chaotic`` on the population rate), for batch 25 and 256; the reference is given
  the input check the public functions make (``as_raster``, ``check_finite_array``).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from nqp._validation import check_finite_array
from nqp.neuromorphic import patterns
from nqp.neuromorphic._patterns._common import as_raster
from nqp.neuromorphic.patterns import KINDS, PatternDetector

SCAN_KINDS = tuple(k for k in KINDS if k != "emergent")
BATCHES = (25, 100, 256)
KIND_BATCHES = (25, 256)
N_BINS, N_NEURONS = 200, 32


def load_reference() -> Any:
    path = Path(__file__).resolve().parents[1] / "tests/neuromorphic/_patterns_reference.py"
    spec = importlib.util.spec_from_file_location("_patterns_reference", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checked_reference(ref: Any, kind: str) -> Callable[[np.ndarray], Any]:
    """The reference ``kind`` behind the input check its public function made."""
    fn = getattr(ref, kind)
    if kind == "chaotic":
        return lambda a: fn(check_finite_array(a, name="series"))
    return lambda a: fn(as_raster(a)[0])


def emit(**fields: Any) -> None:
    fields = {"bench": "patterns", **fields, "loadavg_1m": round(os.getloadavg()[0], 2)}
    print(json.dumps(fields), flush=True)


def median_ms(fn: Callable[[], Any], repeats: int) -> float:
    fn()  # warm-up (numba compilation or cache load)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def rasters(batch: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.01, 0.5, (batch, 1, 1))
    return rng.random((batch, N_BINS, N_NEURONS)) < rates


def main() -> None:
    ref = load_reference()
    detector = PatternDetector(kinds=SCAN_KINDS)
    for batch in BATCHES:
        raster = rasters(batch)
        repeats = max(5, 400 // batch)
        got = detector.detect(raster).strength
        want = ref.detect(raster)
        diff = max(float(np.abs(got[k] - want[k]).max(initial=0.0)) for k in SCAN_KINDS)
        nqp_ms = median_ms(functools.partial(detector.detect, raster), repeats)
        ref_ms = median_ms(functools.partial(ref.detect, raster), repeats)
        emit(
            figure="detect",
            batch=batch,
            shape=[N_BINS, N_NEURONS],
            nqp_ms=round(nqp_ms, 3),
            reference_ms=round(ref_ms, 3),
            speedup=round(ref_ms / nqp_ms, 2),
            max_abs_diff=diff,
        )
    for batch in KIND_BATCHES:
        r3 = rasters(batch, seed=1).astype(np.float64)
        rate = r3.mean(axis=2)
        repeats = max(5, 400 // batch)
        for kind in SCAN_KINDS:
            arg = rate if kind == "chaotic" else r3
            new = getattr(patterns, kind)
            old = checked_reference(ref, kind)
            emit(
                figure="kind",
                kind=kind,
                batch=batch,
                nqp_ms=round(median_ms(functools.partial(new, arg), repeats), 3),
                reference_ms=round(median_ms(functools.partial(old, arg), repeats), 3),
            )


if __name__ == "__main__":
    with threadpool_limits(limits=1):
        main()
