"""Benchmark ``fhir-pts synth``: wall time, throughput and peak memory of the random cohort written as NDJSON.

Each size runs in a fresh subprocess so that its peak resident set size (``ru_maxrss``) is its own.

    python benchmarks/bench_synth.py                 # 10,000 and 100,000 patients, NDJSON
    python benchmarks/bench_synth.py 1000 --gz       # other sizes, gzip
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_one(patients: int, fmt: str, seed: int) -> dict[str, float]:
    """Synthesize in this process and measure it (called in the child)."""
    from fhir_pts.synth import synthesize

    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        start = time.perf_counter()
        summary = synthesize(Path(tmp) / "out", patients=patients, seed=seed, fmt=fmt)  # type: ignore[arg-type]
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in summary.files)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    return {
        "patients": patients,
        "resources": summary.resources,
        "seconds": seconds,
        "resources_per_second": summary.resources / seconds if seconds else float("nan"),
        "megabytes_written": size / 1e6,
        "peak_rss_mib": peak_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--gz", action="store_true", help="write .ndjson.gz instead of .ndjson")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    fmt = "ndjson.gz" if args.gz else "ndjson"
    if args.child:
        print(json.dumps(run_one(args.sizes[0], fmt, args.seed)))
        return
    print(f"{'patients':>9} {'resources':>10} {'seconds':>8} {'res/s':>8} {'MB':>8} {'peak MiB':>9}  ({fmt})")
    for n in args.sizes:
        cmd = [sys.executable, __file__, str(n), "--child", "--seed", str(args.seed)] + (["--gz"] if args.gz else [])
        result = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(
            f"{result['patients']:>9,} {result['resources']:>10,} {result['seconds']:>8.1f} "
            f"{result['resources_per_second']:>8,.0f} {result['megabytes_written']:>8,.0f} "
            f"{result['peak_rss_mib']:>9,.0f}"
        )


if __name__ == "__main__":
    main()
