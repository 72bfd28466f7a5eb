"""Conformance of a MeasureReport to ``pts-measure-report`` and the DEQM summary invariants deqm-0 … deqm-9
(those in FHIRPath, :mod:`fhir_pts.conformance.deqm`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_pts.codes import CANONICAL_BASE, EXTENSION_BASE, MEASURE_BASE
from fhir_pts.conformance.deqm import deqm_problems
from fhir_pts.conformance.fhirpath import _fhirpath
from fhir_pts.conformance.package import Json, _package

#: Canonical of our MeasureReport profile.
MEASURE_REPORT_PROFILE = f"{EXTENSION_BASE}/pts-measure-report"
#: Extensions from outside the project that a MeasureReport may carry: FHIR core, HL7 IGs (DEQM, CQM, SDC) and
#: the R5 cross-version extensions, all under this prefix.
_FOREIGN_EXTENSION_PREFIX = "http://hl7.org/fhir/"

#: The profile's fixed values: (FHIRPath on the MeasureReport, message), reported as ``pts-profile``.
_PROFILE_INVARIANTS: tuple[tuple[str, str], ...] = (
    ("status = 'complete'", "status must be complete"),
    ("type = 'summary'", "type must be summary"),
    ("group.exists()", "a summary report must have at least one group"),
)


def _measure_scoring(packaged: Json | None) -> str | None:
    if packaged is None:
        return None
    for coding in (packaged.get("scoring") or {}).get("coding", []):
        return coding.get("code")
    return None


def _iter_extensions(node: Any, path: str) -> Iterator[tuple[str, Json]]:
    """Every top-level extension (not sub-extensions of complex extensions) anywhere in ``node``, with its path."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("extension", "modifierExtension") and isinstance(value, list):
                for i, ext in enumerate(value):
                    if isinstance(ext, dict):
                        yield f"{path}.{key}[{i}]", ext
            else:
                yield from _iter_extensions(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from _iter_extensions(item, f"{path}[{i}]")


def _slices(definition: Json) -> dict[str, Any]:
    """The sub-extensions of a complex extension definition, from its differential: a tree
    ``{slice: {"min": int, "max": str, "types": set[str], "children": {...}}}``."""
    root: dict[str, Any] = {}
    for element in definition.get("differential", {}).get("element", []):
        parts = element["id"].split(".")[1:]  # drop "Extension"
        node = root
        slice_names = []
        for part in parts:
            if part.startswith("extension:"):
                slice_names.append(part.split(":", 1)[1])
        if not slice_names:
            continue
        for name in slice_names[:-1]:
            node = node.setdefault(name, {"min": 0, "max": "*", "types": set(), "children": {}})["children"]
        entry = node.setdefault(slice_names[-1], {"min": 0, "max": "*", "types": set(), "children": {}})
        last = parts[-1]
        if last.startswith("extension:"):
            entry["min"] = element.get("min", entry["min"])
            entry["max"] = element.get("max", entry["max"])
        elif last == "value[x]":
            entry["types"] = {t["code"] for t in element.get("type", [])} or entry["types"]
    return root


def _check_complex(ext: Json, slices: dict[str, Any], where: str, problems: list[str]) -> None:
    subs = ext.get("extension", []) or []
    counts: dict[str, int] = {}
    for i, sub in enumerate(subs):
        name = sub.get("url")
        spec = slices.get(name)
        if spec is None:
            problems.append(f"pts-ext: {where}.extension[{i}]: unknown sub-extension {name!r}")
            continue
        counts[name] = counts.get(name, 0) + 1
        values = [k for k in sub if k.startswith("value")]
        if spec["children"]:
            if values:
                problems.append(f"pts-ext: {where}.extension[{i}] ({name}): a complex sub-extension has no value")
            _check_complex(sub, spec["children"], f"{where}.extension[{i}]", problems)
        else:
            allowed = {"value" + t[0].upper() + t[1:] for t in spec["types"]}
            if len(values) != 1 or (allowed and values[0] not in allowed):
                problems.append(
                    f"pts-ext: {where}.extension[{i}] ({name}): expected one of {sorted(allowed)}, got {values}"
                )
    for name, spec in slices.items():
        n = counts.get(name, 0)
        if n < int(spec["min"]):
            problems.append(f"pts-ext: {where}: sub-extension {name!r} is required")
        if spec["max"] != "*" and n > int(spec["max"]):
            problems.append(f"pts-ext: {where}: sub-extension {name!r} occurs {n} times, at most {spec['max']}")


def _check_extensions(report: Json, problems: list[str]) -> None:
    package = _package()[0]
    for where, ext in _iter_extensions(report, "MeasureReport"):
        url = str(ext.get("url", ""))
        if url.startswith(CANONICAL_BASE):
            definition = package.get(url)
            if definition is None or definition.get("type") != "Extension":
                problems.append(f"pts-ext: {where}: extension {url} is not defined by the fhir-pts package")
                continue
            slices = _slices(definition)
            if slices:
                _check_complex(ext, slices, where, problems)
        elif not url.startswith(_FOREIGN_EXTENSION_PREFIX):
            problems.append(f"pts-ext: {where}: extension {url!r} is neither fhir-pts's nor an HL7 one")


def _parse_problems(report: Json) -> list[str]:
    from fhir.resources.R4B.measurereport import MeasureReport
    from pydantic import ValidationError

    try:
        MeasureReport.model_validate(report)
    except ValidationError as exc:
        return [
            f"fhir: {'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in exc.errors(include_url=False, include_context=False)
        ]
    except (TypeError, ValueError) as exc:  # fhir.resources raises plain errors for some structural faults
        return [f"fhir: {exc}"]
    return []


def check_measure_report(report: Json) -> list[str]:
    """Check a MeasureReport (R4 JSON as a dict) against our profile and the DEQM summary invariants.

    Checks, each problem one string prefixed by its rule:

    - ``fhir``: it parses as a ``fhir.resources.R4B`` MeasureReport (structure, types, cardinalities);
    - ``deqm-0`` … ``deqm-9``: the DEQM summary MeasureReport invariants that apply to a summary report
      (:func:`fhir_pts.conformance.deqm.deqm_problems`, in FHIRPath): versioned measure (0), date with day
      precision (1), improvement notation for proportion, ratio and continuous-variable scoring at report (2) or
      group level (4), scoring extension on the root or every group (3), a population in every group (5), a
      proportion score in 0..1 (6), stratifier code xor component code (7), count xor countQuantity for group (8)
      and stratum (9) populations. The scoring is the report's DEQM scoring extension when present, else the
      referenced packaged Measure's;
    - ``pts-profile``: status ``complete``, type ``summary``, at least one group (the profile's fixed values;
      its invariant ``pts-mr-1``, a versioned fhir-pts Measure canonical, is deqm-0 plus ``pts-measure``);
    - ``pts-measure``: the measure canonical names a packaged Measure and its version; the report's
      improvementNotation and population codes agree with that Measure;
    - ``pts-ext``: every extension under the project's canonical base is a packaged extension definition and
      its sub-extensions follow it (names, cardinalities, value types); other extensions must be HL7's.

    :returns: the problems; an empty list means conformant.
    """
    if not isinstance(report, dict) or report.get("resourceType") != "MeasureReport":
        return ["fhir: not a MeasureReport (resourceType must be 'MeasureReport')"]
    problems = _parse_problems(report)
    groups = [g for g in report.get("group", []) or [] if isinstance(g, dict)]

    # The packaged Measure this report is about.
    canonical = str(report.get("measure", ""))
    url, _, version = canonical.partition("|")
    packaged = _package()[0].get(url)
    measure_problems = []
    if not url.startswith(MEASURE_BASE + "/") or packaged is None or packaged.get("resourceType") != "Measure":
        measure_problems.append(f"pts-measure: measure {canonical!r} is not a packaged fhir-pts Measure")
        packaged = None
    elif version and version != packaged.get("version"):
        measure_problems.append(
            f"pts-measure: measure version {version!r} differs from the packaged Measure's {packaged.get('version')!r}"
        )

    problems += deqm_problems(report, measure_scoring=_measure_scoring(packaged))
    for expression, message in _PROFILE_INVARIANTS:
        result = _fhirpath(expression, True)(report, {})
        if len(result) == 1 and result[0] is False:
            problems.append(f"pts-profile: {message}")
    problems += measure_problems
    if packaged is not None and report.get("improvementNotation") is not None:
        expected = {c.get("code") for c in (packaged.get("improvementNotation") or {}).get("coding", [])}
        got = {c.get("code") for c in (report.get("improvementNotation") or {}).get("coding", [])}
        if expected != got:
            problems.append(
                f"pts-measure: improvementNotation {sorted(got)} differs from the Measure's {sorted(expected)!r}"
            )
    declared: set[str] = set()
    if packaged is not None:
        for mgroup in packaged.get("group", []):
            for pop in mgroup.get("population", []):
                declared.update(c.get("code") for c in (pop.get("code") or {}).get("coding", []))
    if declared:
        for i, group in enumerate(groups):
            for j, pop in enumerate(group.get("population", []) or []):
                for coding in (pop.get("code") or {}).get("coding", []):
                    if coding.get("code") not in declared:
                        problems.append(
                            f"pts-measure: group[{i}].population[{j}]: {coding.get('code')!r} is not a population "
                            f"of Measure {url}"
                        )

    _check_extensions(report, problems)
    return problems
