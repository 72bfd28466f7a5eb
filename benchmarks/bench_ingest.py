"""Benchmark of the ingest layer: ``collect_facts`` on a Synthea-like Bulk Data export.

The export is mostly irrelevant resources — vital signs and labs (Observation, ~85 %), Encounters — with a
few relevant ones (patients, stenting procedures, patency findings, questionnaire responses), written as
Bulk Data does: one NDJSON file per resource type. A second layout puts every resource in one file,
interleaved, which defeats the block search of the pre-filter (the worst case).

Each measurement runs in a fresh process and prints resources/s (wall clock), the peak resident memory of
the main process (``VmHWM``; with one worker that is all the reading), the load average
(wall-clock figures mean little on a busy machine) and the CPU time of all processes (workers included
when they are forked children), which is less sensitive to other load: on an idle machine, the wall-clock
rate approaches min(workers, cores) x the rate per CPU-second. Run twice with different sizes to see
that memory does not grow with the export::

    python benchmarks/bench_ingest.py                       # 1,000,000 resources
    python benchmarks/bench_ingest.py --resources 250000 --layouts bulk
    python benchmarks/bench_ingest.py --baseline            # + orjson.loads on every line, for reference

Nothing is asserted: figures are printed (tests never assert wall-clock times).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PTS = "https://fhir-pts.org/fhir/CodeSystem/pts"

VITALS = [
    ("8310-5", "Body temperature", "Cel", 37.1),
    ("8867-4", "Heart rate", "/min", 72.0),
    ("9279-1", "Respiratory rate", "/min", 14.0),
    ("29463-7", "Body weight", "kg", 81.3),
    ("8302-2", "Body height", "cm", 172.4),
    ("39156-5", "Body mass index", "kg/m2", 27.4),
    ("2339-0", "Glucose [Mass/volume] in Blood", "mg/dL", 92.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 182.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 14.2),
]


def _vital(i: int, patient: str, rng: random.Random) -> dict:
    code, display, unit, value = VITALS[i % len(VITALS)]
    return {
        "resourceType": "Observation",
        "id": f"obs-{i:09d}",
        "meta": {"profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-vital-signs"]},
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs" if i % 3 else "laboratory",
                        "display": "vital-signs" if i % 3 else "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code, "display": display}], "text": display},
        "subject": {"reference": f"Patient/{patient}"},
        "encounter": {"reference": f"Encounter/enc-{i // 20:08d}"},
        "effectiveDateTime": f"20{10 + i % 12:02d}-0{1 + i % 9}-1{i % 9}T10:2{i % 10}:00-05:00",
        "issued": f"20{10 + i % 12:02d}-0{1 + i % 9}-1{i % 9}T10:2{i % 10}:00.123-05:00",
        "valueQuantity": {
            "value": round(value * rng.uniform(0.8, 1.2), 3),
            "unit": unit,
            "system": "http://unitsofmeasure.org",
            "code": unit,
        },
    }


def _encounter(i: int, patient: str) -> dict:
    return {
        "resourceType": "Encounter",
        "id": f"enc-{i:08d}",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [{"coding": [{"system": "http://snomed.info/sct", "code": "185349003", "display": "Check up"}]}],
        "subject": {"reference": f"Patient/{patient}"},
        "period": {"start": "2015-03-01T10:00:00-05:00", "end": "2015-03-01T10:30:00-05:00"},
    }


def _relevant(patient: str, k: int) -> dict[str, list[dict]]:
    return {
        "Patient": [
            {"resourceType": "Patient", "id": patient, "gender": "female", "birthDate": f"1968-04-0{1 + k % 9}"}
        ],
        "Procedure": [
            {
                "resourceType": "Procedure",
                "id": f"stent-{k}",
                "status": "completed",
                "code": {"coding": [{"system": "http://www.cms.gov/Medicare/Coding/ICD10", "code": "067C3DZ"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "performedDateTime": "2019-02-01",
            }
        ],
        "Observation": [
            {
                "resourceType": "Observation",
                "id": f"pat-{k}",
                "status": "final",
                "code": {"coding": [{"system": PTS, "code": "stent-patency"}]},
                "subject": {"reference": f"Patient/{patient}"},
                "effectiveDateTime": "2019-08-01",
                "valueCodeableConcept": {"coding": [{"system": PTS, "code": "patent"}]},
            }
        ],
        "QuestionnaireResponse": [
            {
                "resourceType": "QuestionnaireResponse",
                "id": f"qr-{k}",
                "questionnaire": "https://fhir-pts.org/fhir/Questionnaire/civiq-20",
                "status": "completed",
                "subject": {"reference": f"Patient/{patient}"},
                "authored": "2019-01-20",
                "item": [{"linkId": f"q{i}", "answer": [{"valueInteger": 2}]} for i in range(1, 21)],
            }
        ],
    }


def generate(folder: Path, n_resources: int, layout: str, seed: int = 1) -> int:
    """Write an export of about ``n_resources`` resources into ``folder``; returns the number written."""
    rng = random.Random(seed)
    n_patients = max(1, n_resources // 2000)
    n_study = max(1, n_patients // 10)  # a tenth of the patients had a stent
    n_encounters = n_resources // 20
    n_observations = n_resources - n_encounters - n_patients - 3 * n_study
    files: dict[str, list[str]] = {}

    def emit(resource_type: str, text: str) -> None:
        key = resource_type if layout == "bulk" else "all"
        files.setdefault(key, []).append(text)

    dumps = json.JSONEncoder(separators=(",", ":")).encode
    study: list[tuple[str, str]] = []
    for p in range(n_patients):
        patient = f"p{p:07d}"
        if p < n_study:
            for resource_type, resources in _relevant(patient, p).items():
                for r in resources:
                    study.append((resource_type, dumps(r)))
        else:
            other = {"resourceType": "Patient", "id": patient, "gender": "male", "birthDate": "1950-01-01"}
            emit("Patient", dumps(other))
    written = n_patients - n_study + len(study)
    stride = max(1, n_observations // (len(study) + 1))
    handles = {}
    for i in range(n_observations + n_encounters):
        if i < n_encounters:
            emit("Encounter", dumps(_encounter(i, f"p{i % n_patients:07d}")))
        else:
            emit("Observation", dumps(_vital(i, f"p{i % n_patients:07d}", rng)))
        if i % stride == 0 and study:
            emit(*study.pop())
        if len(files.get("Observation", files.get("all", []))) > 20000:
            _flush(folder, files, handles)
    for item in study:
        emit(*item)
    _flush(folder, files, handles)
    for handle in handles.values():
        handle.close()
    return written + n_observations + n_encounters


def _flush(folder: Path, files: dict[str, list[str]], handles: dict) -> None:
    for key, lines in files.items():
        if not lines:
            continue
        if key not in handles:
            handles[key] = open(folder / f"{key}.000.ndjson", "w")  # noqa: SIM115
        handles[key].write("\n".join(lines) + "\n")
        lines.clear()


def _peak_rss_mb() -> float:
    """Peak resident memory of this process (``VmHWM``; ``ru_maxrss`` would include the parent's, on Linux)."""
    try:
        for row in Path("/proc/self/status").read_text().splitlines():
            if row.startswith("VmHWM:"):
                return int(row.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(folder: Path, workers: int, baseline: bool) -> None:
    """One measurement (run in its own process); prints a JSON line."""
    from fhir_pts.engines.local import collect_facts

    start, cpu_start, times_start = time.perf_counter(), time.process_time(), os.times()
    if baseline:
        import orjson

        n = 0
        for path in sorted(folder.glob("*.ndjson")):
            with open(path, "rb") as stream:
                for line in stream:
                    orjson.loads(line)
                    n += 1
        facts = None
    else:
        facts = collect_facts([folder], workers=workers)
        n = facts.resources_read
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    times_end = os.times()
    children_cpu = (times_end.children_user + times_end.children_system) - (
        times_start.children_user + times_start.children_system
    )
    own = _peak_rss_mb()
    print(
        json.dumps(
            {
                "resources": n,
                "seconds": elapsed,
                "rate": n / elapsed,
                "cpu_seconds": cpu,
                "worker_cpu_seconds": children_cpu,
                "load_average": os.getloadavg()[0],
                "peak_rss_mb": own,
                "facts": None
                if facts is None
                else [len(facts.patients), len(facts.procedures), len(facts.findings), len(facts.assessments)],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--resources", type=int, default=1_000_000)
    parser.add_argument("--layouts", nargs="+", default=["bulk", "mixed"], choices=["bulk", "mixed"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--baseline", action="store_true", help="also time orjson.loads of every line")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--measure-workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--measure-baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure is not None:
        measure(args.measure, args.measure_workers, args.measure_baseline)
        return
    for layout in args.layouts:
        with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
            folder = Path(tmp)
            n = generate(folder, args.resources, layout)
            size = sum(p.stat().st_size for p in folder.iterdir()) / 1e6
            n_files = len(list(folder.iterdir()))
            print(f"\nlayout={layout}: {n:,} resources, {size:,.0f} MB of NDJSON in {n_files} file(s)")
            runs = [(w, False) for w in args.workers] + ([(1, True)] if args.baseline else [])
            for workers, baseline in runs:
                command = [sys.executable, __file__, "--measure", str(folder), "--measure-workers", str(workers)]
                if baseline:
                    command.append("--measure-baseline")
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                figures = json.loads(out.strip().splitlines()[-1])
                label = "orjson.loads every line (1 core)" if baseline else f"collect_facts workers={workers}"
                total_cpu = figures["cpu_seconds"] + figures["worker_cpu_seconds"]
                cpu_note = (
                    f"  (CPU {total_cpu:5.2f} s in all processes = "
                    f"{figures['resources'] / max(total_cpu, 1e-9):>10,.0f} resources per CPU-second)"
                )
                print(
                    f"  {label:<34} {figures['rate']:>10,.0f} resources/s  wall {figures['seconds']:6.2f} s  "
                    f"peak RSS {figures['peak_rss_mb']:5.0f} MB  load avg {figures['load_average']:4.1f}" + cpu_note
                )


if __name__ == "__main__":
    main()
