"""deploy/tools/measure_storage.py, the source of the sizing figures, runs and adds up."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

TOOL = Path(__file__).resolve().parents[2] / "deploy" / "tools" / "measure_storage.py"


def test_measure_storage_on_sqlite_reports_consistent_sizes():
    out = subprocess.run(
        [sys.executable, str(TOOL), "--sources", "12", "--points", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    figures = {line["figure"]: line for line in map(json.loads, out.splitlines())}
    state = figures["engine state arrays per source"]["value"] * 1024  # bytes
    checkpoint = figures["checkpoint size"]["value"]
    # a checkpoint is the state's arrays plus a header of a few kilobytes
    assert state < checkpoint < state + 8192
    assert figures["prediction payload JSON"]["rows"] == 36
    assert 500 < figures["prediction payload JSON"]["value"] < 5000
    stored = figures["SQLite bytes per checkpoint row"]["value"]
    assert checkpoint <= stored < 1.2 * checkpoint
    assert figures["SQLite bytes per prediction row"]["value"] > 0
