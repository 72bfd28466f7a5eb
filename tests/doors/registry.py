"""The doors of the door-equivalence suite: every way data can enter fhir-pts, as a registry.

A door takes the :class:`World` (one synthetic cohort with site-local codes, written in every file form and
loaded into a real FHIR server) and a scratch folder, runs fhir-pts through that door with the cohort's
ConceptMap, and returns what came out (:class:`DoorOutput`). ``test_doors.py`` requires every door to give the
reference's ``cohort.csv`` and ``results.csv``.

To add a door (e.g. another engine), register a function here, or in a module this one imports::

    @door("spark-ndjson")
    def spark_ndjson(world: World, out: Path) -> DoorOutput:
        return run_cli(["run", str(world.ndjson), "--engine", "spark", "--concept-map", str(world.concept_map)], out)
"""

from __future__ import annotations

import csv
import io
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from unittest import mock

import requests

from fhir_pts.cli import main
from fhir_pts.codes import CONTRACT_MEASURES
from fhir_pts.outputs.measure_report import EXT_STATISTIC

ResultKey = tuple[str, str]  # (measure, statistic)
ResultRow = tuple[str, str, str, str, str]  # value, ci_low, ci_high, p_value, n (as text; "" when empty)


@dataclass
class World:
    """The one cohort every door reads (see ``conftest.py``)."""

    root: Path
    concept_map: Path  # the cohort's ConceptMap as a file
    bundle: Path  # one transaction Bundle
    ndjson: Path  # one NDJSON file, every type mixed
    gz_folder: Path  # a folder of <Type>.ndjson.gz
    folder: Path  # a folder of <Type>.ndjson plus the Bundle of the QuestionnaireResponses (two forms mixed)
    resources: list[dict]  # the site-coded resources, in file order (superseded versions included)
    server_url: str | None = None  # a real FHIR server holding the cohort and the ConceptMap
    server_env: dict[str, str] = field(default_factory=dict)  # SMART client id / key for the CLI
    canonical: str | None = None  # url|version of the ConceptMap on the server
    group_id: str | None = None  # a Group of every patient, for Group-level export


@dataclass
class DoorOutput:
    """What a door gave: cohort.csv rows (None when the door has no cohort.csv, e.g. serve) and results."""

    cohort: list[dict[str, str]] | None
    results: dict[ResultKey, ResultRow]
    exit_status: int = 0


Door = Callable[[World, Path], DoorOutput]
DOORS: dict[str, Door] = {}
#: Doors that need the FHIR test server.
SERVER_DOORS: set[str] = set()
#: Doors that need Spark (the ``spark_session`` fixture: one local[2] session, which the CLI's engine uses).
SPARK_DOORS: set[str] = set()


def door(name: str, *, server: bool = False, spark: bool = False) -> Callable[[Door], Door]:
    """Register a door under ``name`` (``server``: it needs the FHIR test server; ``spark``: a SparkSession)."""

    def register(function: Door) -> Door:
        DOORS[name] = function
        if server:
            SERVER_DOORS.add(name)
        if spark:
            SPARK_DOORS.add(name)
        return function

    return register


# ------------------------------------------------------------------------------------------ reading outputs
def read_outputs(out: Path, exit_status: int = 0) -> DoorOutput:
    """cohort.csv and results.csv of an output folder."""
    with (out / "cohort.csv").open(newline="", encoding="utf-8") as f:
        cohort = list(csv.DictReader(f))
    return DoorOutput(cohort, read_results((out / "results.csv").read_text(encoding="utf-8")), exit_status)


def read_results(text: str) -> dict[ResultKey, ResultRow]:
    rows: dict[ResultKey, ResultRow] = {}
    for row in csv.DictReader(io.StringIO(text)):
        key = (row["measure"], row["statistic"])
        assert key not in rows, f"results.csv repeats {key}"
        rows[key] = (row["value"], row["ci_low"], row["ci_high"], row["p_value"], row["n"])
    return rows


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    with mock.patch.dict(os.environ, env):
        yield


def run_cli(argv: list[str], out: Path, env: dict[str, str] | None = None) -> DoorOutput:
    """``fhir-pts`` with ``argv`` plus ``--out out --no-report -q``; its outputs."""
    with environment(env or {}):
        status = main([*argv, "--out", str(out), "--no-report", "-q"])
    assert status == 0, f"fhir-pts {' '.join(argv)} exited {status}"
    return read_outputs(out, status)


# ------------------------------------------------------------------------------------------ file doors
@door("bundle")
def bundle(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.bundle), "--concept-map", str(world.concept_map)], out)


@door("ndjson")
def ndjson(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.ndjson), "--concept-map", str(world.concept_map), "--workers", "1"], out)


@door("ndjson.gz")
def ndjson_gz(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.gz_folder), "--concept-map", str(world.concept_map)], out)


@door("folder")
def folder(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.folder), "--concept-map", str(world.concept_map), "--workers", "2"], out)


@door("host-resources")
def host_resources(world: World, out: Path) -> DoorOutput:
    from fhir_pts.host import FhirPtsHost

    result = FhirPtsHost(concept_maps=[world.concept_map]).run(resources=iter(world.resources))
    result.write(out)
    return read_outputs(out)


@door("host-server", server=True)
def host_server(world: World, out: Path) -> DoorOutput:
    """The host API fetching from the server itself, the ConceptMap as a canonical the server holds."""
    from fhir_pts.host import FhirPtsHost
    from fhir_pts.sources.server.config import ServerConfig

    assert world.server_url and world.canonical
    config = ServerConfig(url=world.server_url, auth="smart", client_id=world.server_env["FHIR_PTS_CLIENT_ID"],
                          private_key=Path(world.server_env["FHIR_PTS_PRIVATE_KEY"]), page_size=50)  # fmt: skip
    result = FhirPtsHost(concept_maps=[world.canonical]).run(server=config)
    result.write(out)
    return read_outputs(out)


# ------------------------------------------------------------------------------------------ the Spark engine
@door("spark-bundle", spark=True)
def spark_bundle(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.bundle), "--engine", "spark", "--concept-map", str(world.concept_map)], out)


@door("spark-ndjson", spark=True)
def spark_ndjson(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.ndjson), "--engine", "spark", "--concept-map", str(world.concept_map)], out)


@door("spark-ndjson.gz", spark=True)
def spark_ndjson_gz(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.gz_folder), "--engine", "spark", "--concept-map", str(world.concept_map)], out)


@door("spark-folder", spark=True)
def spark_folder(world: World, out: Path) -> DoorOutput:
    return run_cli(["run", str(world.folder), "--engine", "spark", "--concept-map", str(world.concept_map)], out)


# ------------------------------------------------------------------------------------------ server doors
def _server_argv(world: World, *extra: str) -> list[str]:
    assert world.server_url and world.canonical
    # the ConceptMap as the hospital keeps it: a canonical on its server
    return ["run", "--server", world.server_url, "--concept-map", world.canonical, *extra]


@door("search", server=True)
def search(world: World, out: Path) -> DoorOutput:
    return run_cli(_server_argv(world, "--page-size", "50", "--server-workers", "2"), out, world.server_env)


@door("search-file-conceptmap", server=True)
def search_file_conceptmap(world: World, out: Path) -> DoorOutput:
    assert world.server_url
    argv = ["run", "--server", world.server_url, "--concept-map", str(world.concept_map), "--page-size", "37"]
    return run_cli(argv, out, world.server_env)


@door("bulk-system", server=True)
def bulk_system(world: World, out: Path) -> DoorOutput:
    return run_cli(_server_argv(world, "--bulk", "--export-level", "system"), out, world.server_env)


@door("bulk-patient", server=True)
def bulk_patient(world: World, out: Path) -> DoorOutput:
    return run_cli(_server_argv(world, "--bulk", "--export-level", "patient"), out, world.server_env)


@door("bulk-group", server=True)
def bulk_group(world: World, out: Path) -> DoorOutput:
    assert world.group_id
    argv = _server_argv(world, "--bulk", "--export-level", "group", "--group-id", world.group_id)
    return run_cli(argv, out, world.server_env)


# ------------------------------------------------------------------------------------------ serve
def measure_report_results(report: dict) -> dict[ResultKey, ResultRow]:
    """The results rows a MeasureReport carries in its ``statistic`` extensions."""
    measure = str(report["measure"]).split("|")[0].rsplit("/", 1)[-1]
    rows: dict[ResultKey, ResultRow] = {}
    for group in report.get("group", []):
        for extension in group.get("extension", []):
            if extension.get("url") != EXT_STATISTIC:
                continue
            parts = {e["url"]: next(v for k, v in e.items() if k.startswith("value")) for e in extension["extension"]}
            rows[(measure, parts["name"])] = tuple(
                "" if parts.get(k) is None else str(parts[k])
                for k in ("value", "ciLow", "ciHigh", "pValue", "sampleSize")
            )  # type: ignore[assignment]
    return rows


@door("serve")
def serve(world: World, out: Path) -> DoorOutput:
    from fhir_pts.serve import ServeConfig, build_server

    # min_cell_count=1: suppression off, so that every number can be compared (disclosure is tested elsewhere)
    config = ServeConfig(files=(world.bundle,), concept_maps=(world.concept_map,), port=0, min_cell_count=1)
    server = build_server(config)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/fhir"
        results: dict[ResultKey, ResultRow] = {}
        for measure in CONTRACT_MEASURES:
            response = requests.get(f"{base}/Measure/{measure}/$evaluate-measure",
                                    params={"periodStart": "1900-01-01", "periodEnd": "2100-12-31"}, timeout=60)
            assert response.status_code == 200, response.text
            report = response.json()
            (out / f"{measure}.json").write_text(json.dumps(report))
            results.update(measure_report_results(report))
    finally:
        server.shutdown()
        server.server_close()
    return DoorOutput(None, results)
