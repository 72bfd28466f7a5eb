"""Time every built-in analysis on a large random cohort frame (default 100,000 patients).

Usage::

    python benchmarks/bench_analyses.py [--patients 100000] [--seed 1] [--repeat 1] [--outputs]

The cohort is made directly as a DataFrame with the columns of ``COHORT_COLUMNS`` (no FHIR parsing, no
cohort building), with realistic distributions: ages 18-90, ~64 % women, 1-4 stented segments, ~2 %
technical failures, patency times up to 8 years with ~10-30 % losses, Villalta/CIVIQ-20 at baseline and
3 months with ~10 % missing. Prints the seconds per analysis and in total.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from fhir_pts.cohort.model import COHORT_COLUMNS, Cohort
from fhir_pts.plugin_manager import get_plugin_manager, list_analyses, run_analyses

DAYS_PER_MONTH = 30.4375


def random_cohort(n: int, seed: int = 1) -> Cohort:
    """A random cohort of ``n`` patients with every cohort column at its dtype."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    data["patient_id"] = [f"p{i}" for i in range(n)]
    data["sex"] = rng.choice(["female", "male"], size=n, p=[0.64, 0.36])
    data["age"] = rng.integers(18, 91, size=n)
    data["index_date"] = (pd.Timestamp("2012-03-01") + pd.to_timedelta(rng.integers(0, 2000, size=n), "D")).strftime(
        "%Y-%m-%d"
    )
    segments = rng.integers(1, 5, size=n)
    data["stented_segments"] = segments
    failure = rng.random(n) < 0.02
    data["technical_success"] = ~failure
    data["major_complication"] = (rng.random(n) < 0.01).astype(int)
    follow_up = np.where(failure, 0, rng.integers(30, 8 * 365, size=n))
    data["imaging_follow_up_days"] = follow_up
    data["imaging_follow_up_months"] = follow_up / DAYS_PER_MONTH
    for name, p_loss in (("primary_patency", 0.30), ("primary_assisted_patency", 0.20), ("secondary_patency", 0.10)):
        lost = failure | (rng.random(n) < p_loss)
        days = np.where(failure, 0, np.where(lost, (rng.random(n) * follow_up).astype(int), follow_up))
        data[f"{name}_days"] = days
        data[f"{name}_months"] = days / DAYS_PER_MONTH
        data[f"{name}_lost"] = lost
    bv = rng.integers(5, 25, size=n)
    fv = np.clip(bv - rng.integers(-2, 15, size=n), 0, 33)
    bc = rng.integers(30, 90, size=n).astype(float)
    fc = np.clip(bc - rng.normal(20, 12, size=n).round(), 20, 100)
    missing_b, missing_f = rng.random(n) < 0.1, rng.random(n) < 0.1
    classes = np.array(["none", "mild", "moderate", "severe"])
    data["baseline_villalta"] = pd.array(np.where(missing_b, -1, bv), dtype="Int64")
    data["followup_villalta"] = pd.array(np.where(missing_f, -1, fv), dtype="Int64")
    data["baseline_villalta_class"] = classes[np.digitize(bv, [5, 10, 15])]
    data["followup_villalta_class"] = classes[np.digitize(fv, [5, 10, 15])]
    data["baseline_civiq20"] = np.where(missing_b, np.nan, bc)
    data["followup_civiq20"] = np.where(missing_f, np.nan, fc)
    frame = pd.DataFrame({c.name: pd.Series(data.get(c.name), index=range(n)) for c in COHORT_COLUMNS})
    for c in COHORT_COLUMNS:
        frame[c.name] = frame[c.name].astype(pd.api.types.pandas_dtype(c.dtype))
    for col in ("baseline_villalta", "followup_villalta"):
        frame[col] = frame[col].mask(frame[col] == -1)
    frame["villalta_gain"] = frame["baseline_villalta"] - frame["followup_villalta"]
    frame["civiq20_gain"] = frame["baseline_civiq20"] - frame["followup_civiq20"]
    return Cohort(patients=frame)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="runs per analysis; the best is printed")
    parser.add_argument("--outputs", action="store_true", help="also time write_outputs (the four output files)")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    cohort = random_cohort(args.patients, args.seed)
    print(f"cohort of {len(cohort):,} patients built in {time.perf_counter() - started:.2f} s")
    pm = get_plugin_manager()
    total = 0.0
    failed = 0
    for info, plugin in list_analyses(pm):
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            [outcome] = run_analyses(pm, cohort, [info.id])
            best = min(best, time.perf_counter() - t0)
        total += best
        status = "ok" if outcome.ok else f"FAILED: {outcome.error}"
        failed += not outcome.ok
        print(f"{info.id:<28} {plugin:<12} {best:8.3f} s  {status}")
    print(f"{'total':<41} {total:8.3f} s")
    if args.outputs:
        from fhir_pts.outputs.writer import write_outputs

        outcomes = run_analyses(pm, cohort)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            written = write_outputs(Path(tmp), cohort, outcomes)
            elapsed = time.perf_counter() - t0
            sizes = ", ".join(f"{name} {path.stat().st_size / 1e6:.1f} MB" for name, path in written.items())
        print(f"{'write_outputs':<41} {elapsed:8.3f} s  ({sizes})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
