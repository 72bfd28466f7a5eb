"""Benchmark ``fhir-pts run`` end to end on synthetic NDJSON cohorts (issue: cohort from FHIR files).

For each size: ``fhir-pts synth --patients N`` writes an NDJSON export (about 30 resources per patient, most of
them unrelated vital signs, labs and encounters), then ``fhir-pts run`` reads it and writes every output. Each
step runs as its own process so its peak resident memory (``ru_maxrss`` of the child) is its own.

    python benchmarks/bench_run.py                    # 10,000 and 100,000 patients, 2 workers
    python benchmarks/bench_run.py 20000 --workers 1 --keep /tmp/bench
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(command: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS MiB of that child)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    # ru_maxrss of children is the maximum over all children waited for so far (KiB on Linux).
    return seconds, max(after, before) / 1024


def count_lines(folder: Path) -> int:
    total = 0
    for path in folder.glob("*.ndjson"):
        with open(path, "rb") as fh:
            total += sum(block.count(b"\n") for block in iter(lambda fh=fh: fh.read(1 << 24), b""))
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--noise", type=float, default=20.0,
                        help="unrelated resources per patient (default 20; a real Synthea export has ~250)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the cohorts and outputs in this folder")
    parser.add_argument("--no-report", action="store_true", help="skip report.html (measure data files only)")
    args = parser.parse_args()
    cli = [sys.executable, "-m", "fhir_pts.cli"]
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-run-"))
    print(f"{'patients':>9} {'resources':>10} {'MB':>7} {'synth s':>8} {'run s':>7} {'resources/s':>12} "
          f"{'run peak MiB':>12}  (workers={args.workers}, cpus={os.cpu_count()})")
    try:
        for n in args.sizes:
            export = work / f"export-{n}-noise{args.noise:g}"
            if not export.exists():
                synth_s, _ = timed([*cli, "synth", "--patients", str(n), "--seed", "1", "--noise", str(args.noise),
                                    "--out", str(export), "-q"])
            else:
                synth_s = float("nan")
            resources = count_lines(export)
            megabytes = sum(p.stat().st_size for p in export.glob("*.ndjson")) / 1e6
            out = work / f"out-{n}"
            command = [*cli, "run", str(export), "--out", str(out), "--workers", str(args.workers), "-q"]
            if args.no_report:
                command.append("--no-report")
            # A fresh interpreter measures this run's own peak: run it through a tiny wrapper.
            wrapper = [sys.executable, "-c",
                       "import resource,subprocess,sys,time;t=time.perf_counter();"
                       "subprocess.run(sys.argv[1:],check=True);"
                       "print(time.perf_counter()-t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024)",
                       *command]
            result = subprocess.run(wrapper, check=True, capture_output=True, text=True)
            run_s, peak = (float(x) for x in result.stdout.split())
            print(f"{n:>9} {resources:>10} {megabytes:>7.0f} {synth_s:>8.1f} {run_s:>7.1f} "
                  f"{resources / run_s:>12,.0f} {peak:>12.0f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
