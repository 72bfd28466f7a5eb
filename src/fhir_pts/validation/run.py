"""The entry points: :func:`validate` (inputs -> :class:`~fhir_pts.validation.report.ValidationReport`) and
:func:`run_validate` (the ``fhir-pts validate`` command)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fhir_pts.adapters.facts import FactSet
from fhir_pts.atomic import atomic_write_text
from fhir_pts.cohort.build import build_cohort
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines.local import collect_facts
from fhir_pts.instruments.model import Instrument
from fhir_pts.problems import Problem
from fhir_pts.sources.files import expand_inputs
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.validation.explain import _Explainer
from fhir_pts.validation.report import PatientReport, ResourceViolation, ValidationReport, analyses_of
from fhir_pts.validation.scan import _scan
from fhir_pts.vocabulary import Vocabulary


def _expected_exclusions(problems: Iterable[Problem], facts: FactSet, index_dates: Mapping[str, str]) -> list[Problem]:
    """The skipped records the contract itself prescribes: patency findings dated on day 0 (completion imaging)."""
    finding_day = {f.resource_id: f.day for f in facts.findings}
    found = []
    for problem in problems:
        if problem.resource_type != "Observation" or problem.severity != "skipped" or problem.patient_id is None:
            continue
        day = finding_day.get(problem.resource_id or "")
        index = index_dates.get(problem.patient_id)
        if day is not None and index is not None and day.isoformat() == index and problem.field.startswith("effective"):
            found.append(problem)
    return found


def validate(
    inputs: Sequence[Path | str],
    *,
    concept_maps: Sequence[Path | str] = (),
    windows: TimePointWindows | None = None,
    workers: int = 1,
    vocabulary: Vocabulary | None = None,
    instruments: Sequence[Instrument] | None = None,
) -> ValidationReport:
    """Validate FHIR input files / folders (as ``fhir-pts run`` reads them) and explain every patient.

    :param inputs: INPUT arguments: Bundle / NDJSON files or folders.
    :param concept_maps: ConceptMap files mapping site-local codes (``--concept-map``).
    :param windows: assessment windows (default: the contract's).
    :param workers: processes reading the input for the facts.
    :param vocabulary: the run's vocabulary when already built (then ``concept_maps`` is not read).
    :param instruments: the instruments read and explained (default: the installed ones, as ``fhir-pts run``).
    :raises InputError: an INPUT is missing or unusable (exit status 2 on the command line).
    """
    windows = windows or TimePointWindows()
    vocabulary = vocabulary if vocabulary is not None else Vocabulary.build(list(concept_maps))
    if instruments is None:
        from fhir_pts.pipeline import installed_instruments

        instruments = installed_instruments()
    vocabulary = vocabulary.with_instruments(instruments)
    files = expand_inputs(list(inputs))
    facts = collect_facts(files, vocabulary, workers=workers)
    cohort: Cohort = build_cohort(facts, windows, vocabulary.instruments)
    hosts = vocabulary.instrument_index.hosts()
    candidates = CandidateFilter.for_contract(vocabulary.source_codes, instrument_hosts=hosts)
    violations, records, checked = _scan(files, candidates, vocabulary.instruments)

    # The cohort's problems name resources but not where they were read: locate them (the copy the run used).
    for i, problem in enumerate(cohort.problems):
        record = records.get(f"{problem.resource_type}/{problem.resource_id}")
        if record is not None and problem.file is None:
            cohort.problems[i] = problem.located(record.file, record.line)
    problems = [*facts.problems, *cohort.problems]
    frame_rows = cohort.patients.to_dict("records")
    rows: dict[str, dict[str, Any]] = {str(r["patient_id"]): {str(k): v for k, v in r.items()} for r in frame_rows}
    index_dates = {pid: str(r["index_date"]) for pid, r in rows.items()}
    expected = _expected_exclusions(cohort.problems, facts, index_dates)

    by_resource: dict[str, list[Problem]] = defaultdict(list)
    for problem in facts.problems:
        if problem.resource_id:
            by_resource[f"{problem.resource_type}/{problem.resource_id}"].append(problem)
    unscorable: dict[str, list[Problem]] = defaultdict(list)
    for problem in cohort.problems:
        if problem.resource_id and problem.resource_type in ("QuestionnaireResponse", "Observation"):
            unscorable[f"{problem.resource_type}/{problem.resource_id}"].append(problem)
    explainer = _Explainer(facts, windows, records, by_resource, unscorable, vocabulary.instruments)

    problems_by_patient: dict[str, list[Problem]] = defaultdict(list)
    for problem in problems:
        if problem.patient_id is not None:
            problems_by_patient[problem.patient_id].append(problem)
    violations_by_patient: dict[str, list[ResourceViolation]] = defaultdict(list)
    for violation in violations:
        if violation.patient_id is not None:
            violations_by_patient[violation.patient_id].append(violation)

    patients = [
        PatientReport(
            patient_id,
            index_dates.get(patient_id),
            explainer.statuses(patient_id, rows.get(patient_id)),
            problems_by_patient.get(patient_id, []),
            violations_by_patient.get(patient_id, []),
        )
        for patient_id in facts.patients
    ]
    flow = dict(cohort.flow)
    flow.setdefault("resources_read", facts.resources_read)
    return ValidationReport(
        inputs=[str(p) for p in inputs],
        resources_read=facts.resources_read,
        resources_checked=checked,
        patients=patients,
        violations=violations,
        problems=problems,
        expected=expected,
        flow=flow,
        windows=windows,
        analyses=analyses_of(vocabulary.instruments),
    )


def run_validate(
    inputs: Sequence[Path],
    server_config: Any | None,
    concept_maps: Sequence[Path | str],
    windows: TimePointWindows,
    workers: int,
    fmt: str,
    out: Path | None,
    progress: Any = None,
) -> int:
    """The ``fhir-pts validate`` command: read files (or fetch the server into a temporary raw folder), validate,
    write the report to ``out`` (or stdout) and return the exit status (0 ok, 1 failed). ``progress``: the
    server fetch's progress callback (:data:`fhir_pts.sources.server.search.ProgressCallback`).

    The verdict is the last line of the text report; with ``--out`` or another format it is also printed to
    stderr. A server that cannot be reached or refuses raises :class:`~fhir_pts.sources.files.InputError`
    (unusable input, exit status 2).
    """
    import sys
    import tempfile

    from fhir_pts.pipeline import plan_analyses
    from fhir_pts.sources.files import InputError

    plan = plan_analyses()  # the plugins asked once: their instruments (read, explained) and analyses (listed)
    with tempfile.TemporaryDirectory(prefix="fhir-pts-validate-") as tmp:
        files: list[Path | str] = list(inputs)
        fetch_problems: list[Problem] = []
        if server_config is not None:
            from fhir_pts.sources.server import ServerError, ServerSource
            from fhir_pts.sources.server.search import no_progress

            try:
                source = ServerSource.open(server_config)  # asked for the installed instruments' codes too
                vocabulary = source.vocabulary(concept_maps).with_instruments(plan.instruments)
                fetched = source.fetch(Path(tmp) / "raw", vocabulary, progress or no_progress)
            except ServerError as error:
                raise InputError(f"server {server_config.base_url}: {error}") from error
            files, fetch_problems = list(fetched.paths), fetched.problems
            if not files:
                raise InputError(f"server {server_config.base_url}: nothing fetched")
        else:
            vocabulary = Vocabulary.build(list(concept_maps))
        report = validate(files, windows=windows, workers=workers, vocabulary=vocabulary,
                          instruments=plan.instruments)
        report.problems[:0] = fetch_problems
        report.other_analyses = [
            (info.id, plugin, info.title) for info, plugin in plan.available if info.id not in report.analyses
        ]
        if server_config is not None:
            report.inputs = [server_config.base_url]
    text = report.render(fmt)
    if out is None:
        sys.stdout.write(text)
        if fmt != "text":
            print(report.verdict(), file=sys.stderr)
    else:
        atomic_write_text(out, text)
        print(report.verdict(), file=sys.stderr)
    return report.exit_status
