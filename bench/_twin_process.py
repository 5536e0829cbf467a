"""Run ``twin run`` in a fresh process and measure it (shared by the whole-day benches)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

# a parent process of its own, so that each run's peak memory (its max RSS) is its own
_MEASURE = """
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:]).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)
"""


def twin_run(scenario: Path, out: Path, *options: str) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) and standard output of ``twin run SCENARIO -o OUT
    --no-progress OPTIONS``; SystemExit with its output if it fails."""
    cmd = [sys.executable, "-m", "twin.cli", "run", str(scenario), "-o", str(out),
           "--no-progress", *options]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    peak_kib, rc = proc.stdout.strip().splitlines()[-1].split()
    if int(rc):
        raise SystemExit(f"twin run {scenario} failed (exit {rc}):\n{proc.stdout}\n{proc.stderr}")
    return wall, int(peak_kib) / 1024.0, proc.stdout
