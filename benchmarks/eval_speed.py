"""Wall time of the whole ``tamvt eval`` command on the DAVIS metric fixture (6 sequences, 18 objects).

Runs the console script in a subprocess several times (start-up, imports, reading, scoring and
the report all count) and prints the median and its ratio to the official DAVIS-2017 toolkit's
15.8 s measured on the same 2-core machine for the same set.

    .venv/bin/python benchmarks/eval_speed.py [--runs 5] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

OFFICIAL_SECONDS = 15.8  # davis2017-evaluation on tests/fixtures/davis_metrics, 2 CPU cores
FIX = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "davis_metrics"


def tamvt_command() -> list[str]:
    exe = Path(sys.executable).with_name("tamvt")
    if exe.is_file():
        return [str(exe)]
    found = shutil.which("tamvt")
    return [found] if found else [sys.executable, "-m", "tamvt.cli"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None, help="passed to tamvt eval (default: its own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            *tamvt_command(),
            "eval",
            "--protocol",
            "davis",
            "--gt",
            str(FIX / "gt"),
            "--pred",
            str(FIX / "pred"),
            "--json",
            str(Path(tmp) / "scores.json"),
        ]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        times, cpus = [], []
        for i in range(args.runs):
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpus.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
            print(f"run {i + 1}: {times[-1]:.2f} s wall, {cpus[-1]:.2f} s CPU (user + sys, all processes)")
    med = statistics.median(times)
    # other processes on the machine slow the wall time down; the load average says how busy it was
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.2f}; median CPU time {statistics.median(cpus):.2f} s")
    print(
        f"median of {args.runs}: {med:.2f} s; official DAVIS toolkit {OFFICIAL_SECONDS} s -> "
        f"{med / OFFICIAL_SECONDS:.3f} of it ({OFFICIAL_SECONDS / med:.1f}x faster; the bound is 0.2)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
