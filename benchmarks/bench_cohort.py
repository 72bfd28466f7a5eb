"""Benchmark of :func:`fhir_pts.cohort.build.build_cohort` on synthetic FactSets.

Prints, for each size, the number of facts, the wall-clock and CPU seconds to build the cohort (best of
``--repeat`` runs, no tracing; CPU time is the steadier figure on a shared machine), the peak Python memory
allocated while building it (a separate run under ``tracemalloc``) and the process' peak RSS.
Each synthetic patient has 1–2 index stentings, 0–2 reinterventions, 4 patency findings, 2 Villalta and
2 CIVIQ-20 QuestionnaireResponses and, for 5 %, a serious AdverseEvent.

    python benchmarks/bench_cohort.py [--sizes 10000 100000] [--repeat 3] [--seed 1]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import random
import resource
import time
import tracemalloc

from fhir_pts.adapters.facts import (
    AdverseEventFact,
    FactSet,
    PatencyFindingFact,
    PatientFact,
    ProcedureFact,
    ScoreAssessmentFact,
)
from fhir_pts.codes import CIVIQ20_ITEMS, SEGMENTS, VILLALTA_ITEMS
from fhir_pts.cohort.build import build_cohort


def synthetic_facts(n_patients: int, seed: int = 1) -> FactSet:
    """A FactSet of ``n_patients`` patients with the fact mix described in the module docstring."""
    rnd = random.Random(seed)
    start = dt.date(2012, 3, 1)
    patients: dict[str, PatientFact] = {}
    procedures: list[ProcedureFact] = []
    findings: list[PatencyFindingFact] = []
    assessments: list[ScoreAssessmentFact] = []
    adverse_events: list[AdverseEventFact] = []
    for i in range(n_patients):
        pid = f"p{i}"
        patients[pid] = PatientFact(
            pid,
            rnd.choice(("female", "male")),
            dt.date(1940 + rnd.randrange(60), 1 + rnd.randrange(12), 1 + rnd.randrange(28)),
        )
        day0 = start + dt.timedelta(days=rnd.randrange(2000))
        for k in range(rnd.choice((1, 1, 2))):
            procedures.append(
                ProcedureFact(
                    f"{pid}-s{k}",
                    pid,
                    day0,
                    True,
                    False,
                    frozenset(rnd.sample(SEGMENTS[1:5], rnd.randint(1, 3))),
                    rnd.choice(("success",) * 40 + ("failure", None)),
                    rnd.random() < 0.02,
                    None,
                )
            )
        for k in range(rnd.choice((0, 0, 0, 1, 2))):
            procedures.append(
                ProcedureFact(
                    f"{pid}-r{k}",
                    pid,
                    day0 + dt.timedelta(days=rnd.randint(20, 900)),
                    False,
                    True,
                    frozenset(),
                    rnd.choice(("success", "failure", None)),
                    False,
                    rnd.choice(("stenosis", "occlusion", None)),
                )
            )
        for k, offset in enumerate(sorted(rnd.sample(range(1, 1200), 4))):
            findings.append(
                PatencyFindingFact(
                    f"{pid}-f{k}",
                    pid,
                    day0 + dt.timedelta(days=offset),
                    rnd.choice(("patent",) * 8 + ("stenosis", "occluded")),
                    "ultrasound",
                )
            )
        for k, offset in enumerate((-rnd.randrange(60), 60 + rnd.randrange(80))):
            assessments.append(
                ScoreAssessmentFact(
                    f"{pid}-v{k}",
                    pid,
                    day0 + dt.timedelta(days=offset),
                    "villalta",
                    tuple((name, rnd.randint(0, 3)) for name in VILLALTA_ITEMS),
                    None,
                    (("ulcer", rnd.random() < 0.05),),
                )
            )
            items = [(name, rnd.randint(1, 5)) for name in CIVIQ20_ITEMS]
            if rnd.random() < 0.1:
                items.pop(rnd.randrange(20))
            assessments.append(
                ScoreAssessmentFact(
                    f"{pid}-c{k}", pid, day0 + dt.timedelta(days=offset), "civiq20", tuple(items), None
                )
            )
        if rnd.random() < 0.05:
            adverse_events.append(AdverseEventFact(f"{pid}-ae", pid, True, (f"{pid}-s0",)))
    return FactSet(patients, procedures, findings, assessments, adverse_events, [])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    header = ("patients", "facts", "wall s", "cpu s", "patients/cpu s", "peak MiB", "problems")
    widths = (9, 10, 7, 7, 15, 9, 9)
    print(" ".join(f"{h:>{w}}" for h, w in zip(header, widths, strict=True)))
    for size in args.sizes:
        facts = synthetic_facts(size, args.seed)
        n_facts = (
            len(facts.patients)
            + len(facts.procedures)
            + len(facts.findings)
            + len(facts.assessments)
            + len(facts.adverse_events)
        )
        best = best_cpu = float("inf")
        for _ in range(args.repeat):
            gc.collect()
            t0, c0 = time.perf_counter(), time.process_time()
            cohort = build_cohort(facts)
            best = min(best, time.perf_counter() - t0)
            best_cpu = min(best_cpu, time.process_time() - c0)
        del cohort
        gc.collect()
        tracemalloc.start()
        cohort = build_cohort(facts)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert len(cohort) == size
        print(
            f"{size:>9} {n_facts:>10} {best:>7.2f} {best_cpu:>7.2f} {size / best_cpu:>15,.0f} {peak / 2**20:>9.1f} "
            f"{len(cohort.problems):>9}"
        )
        del facts, cohort
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"process peak RSS: {rss:.0f} MiB (includes the synthetic facts)")


if __name__ == "__main__":
    main()
