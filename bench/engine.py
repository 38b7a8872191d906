"""Engine alone: predictions/s of ``Platform.process_many_json`` for waves of warmed sources.

One JSON line per wave width; BLAS pinned to one thread. Usage:
``.venv/bin/python bench/engine.py [--widths 1,256,1000] [--waves 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

from nqp import Platform
from nqp.engine.platform import ProcessItem

WARM_POINTS = 40  # past the default warm-up of 30 outcomes


def measure(width: int, waves: int, seed: int = 0) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    platform = Platform()
    sources = [f"t/s{i}" for i in range(width)]
    walk = np.cumsum(rng.standard_normal((WARM_POINTS + waves, width)), axis=0)

    def wave(k: int) -> list[ProcessItem]:
        return [
            ProcessItem(s, [float(walk[k, j])], [1.7e9 + k], None) for j, s in enumerate(sources)
        ]

    for k in range(WARM_POINTS):
        platform.process_many_json(wave(k))
    times = []
    for k in range(WARM_POINTS, WARM_POINTS + waves):
        items = wave(k)
        start = time.perf_counter()
        platform.process_many_json(items)
        times.append(time.perf_counter() - start)
    median = float(np.median(times))
    return {"median_wave_ms": round(median * 1e3, 3), "predictions_per_s": round(width / median)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="1,256,1000")
    parser.add_argument("--waves", type=int, default=20)
    args = parser.parse_args()
    with threadpool_limits(1):
        for width in (int(w) for w in args.widths.split(",")):
            out = measure(width, args.waves)
            line = {"figure": "engine_wave", "sources": width, **out}
            print(json.dumps(line | {"loadavg_1m": round(os.getloadavg()[0], 2)}), flush=True)


if __name__ == "__main__":
    main()
