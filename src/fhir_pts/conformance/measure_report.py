"""Conformance of a MeasureReport to ``pts-measure-report`` and the DEQM summary invariants deqm-0 … deqm-9
(each written in FHIRPath, with a plain-Python twin used when fhirpathpy is not installed)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fhir_pts.codes import CANONICAL_BASE, EXTENSION_BASE, MEASURE_BASE
from fhir_pts.conformance.fhirpath import Engine, _fhirpath, fhirpath_available
from fhir_pts.conformance.package import Json, _package

#: Canonical of our MeasureReport profile.
MEASURE_REPORT_PROFILE = f"{EXTENSION_BASE}/pts-measure-report"
#: Extensions from outside the project that a MeasureReport may carry: FHIR core, HL7 IGs (DEQM, CQM, SDC) and
#: the R5 cross-version extensions, all under this prefix.
_FOREIGN_EXTENSION_PREFIX = "http://hl7.org/fhir/"
_SCORINGS_NEEDING_NOTATION = frozenset({"proportion", "ratio", "continuous-variable"})

Predicate = Callable[[Json], bool]


def _ext_urls(node: Json) -> list[str]:
    return [str(e.get("url", "")) for e in node.get("extension", []) or [] if isinstance(e, dict)]


def _has_ext(node: Json, suffix: str) -> bool:
    return any(url.endswith(suffix) for url in _ext_urls(node))


def _groups(node: Json) -> list[Json]:
    return [g for g in node.get("group", []) or [] if isinstance(g, dict)]


def _count_xor_quantity(populations: list[Json]) -> bool:
    return all((p.get("count") is not None) != _has_ext(p, "countQuantity") for p in populations)


def _stratifier_ok(stratifier: Json) -> bool:
    components = [c for s in stratifier.get("stratum", []) or [] for c in s.get("component", []) or []]
    if stratifier.get("code"):
        return not components
    return bool(components) and all(c.get("code") for c in components)


def _proportion_ok(group: Json) -> bool:
    value = (group.get("measureScore") or {}).get("value")
    return value is None or (isinstance(value, int | float) and 0 <= value <= 1)


#: Report-level invariants: (key, FHIRPath on the MeasureReport, the same in Python, message).
_REPORT_INVARIANTS: tuple[tuple[str, str, Predicate, str], ...] = (
    (
        "deqm-0",
        "measure.exists() and measure.contains('|')",
        lambda r: "|" in str(r.get("measure") or ""),
        "measure must be a versioned canonical (url|version)",
    ),
    (
        "deqm-1",
        "date.exists() and date.toString().length() >= 10",
        lambda r: isinstance(r.get("date"), str) and len(r["date"]) >= 10,
        "date must be present with at least day precision",
    ),
    (
        "deqm-3",
        "(extension.where(url.endsWith('measureScoring')).exists() and "
        "group.extension.where(url.endsWith('measureScoring')).exists()).not()",
        lambda r: not (_has_ext(r, "measureScoring") and any(_has_ext(g, "measureScoring") for g in _groups(r))),
        "the scoring extension must be on the root only, or on the groups only",
    ),
    (
        "deqm-3",
        "group.extension.where(url.endsWith('measureScoring')).empty() or "
        "group.all(extension.where(url.endsWith('measureScoring')).exists())",
        lambda r: len({_has_ext(g, "measureScoring") for g in _groups(r)}) <= 1,
        "when the scoring extension is on the groups it must be on every group",
    ),
    ("pts-profile", "status = 'complete'", lambda r: r.get("status") == "complete", "status must be complete"),
    ("pts-profile", "type = 'summary'", lambda r: r.get("type") == "summary", "type must be summary"),
    ("pts-profile", "group.exists()", lambda r: bool(_groups(r)), "a summary report must have at least one group"),
)
#: Group-level invariants: (key, FHIRPath on one group, the same in Python, message).
_GROUP_INVARIANTS: tuple[tuple[str, str, Predicate, str], ...] = (
    (
        "deqm-7",
        "stratifier.all((code.exists() and stratum.component.exists().not()) or "
        "(code.exists().not() and stratum.component.exists() and stratum.component.all(code.exists())))",
        lambda g: all(_stratifier_ok(s) for s in g.get("stratifier", []) or []),
        "a stratifier has a code or component codes, not both and not neither",
    ),
    (
        "deqm-8",
        "population.all(count.exists() xor extension.where(url.endsWith('countQuantity')).exists())",
        lambda g: _count_xor_quantity(g.get("population", []) or []),
        "every population has count xor countQuantity",
    ),
    (
        "deqm-9",
        "stratifier.stratum.population.all(count.exists() xor extension.where(url.endsWith('countQuantity')).exists())",
        lambda g: _count_xor_quantity(
            [
                p
                for s in g.get("stratifier", []) or []
                for t in s.get("stratum", []) or []
                for p in t.get("population", [])
            ]
        ),
        "every stratum population has count xor countQuantity",
    ),
)
_PROPORTION_INVARIANT: tuple[str, str, Predicate, str] = (
    "deqm-6",
    "measureScore.value.exists() implies (measureScore.value >= 0 and measureScore.value <= 1)",
    _proportion_ok,
    "a proportion measureScore must lie in 0..1",
)


def _holds(invariant: tuple[str, str, Predicate, str], node: Json, engine: Engine, resource_level: bool) -> bool:
    """Whether an invariant holds on ``node``. In FHIRPath only an explicit ``false`` is a violation."""
    _, expression, predicate, _ = invariant
    if engine == "python" or (engine == "auto" and not fhirpath_available()):
        return predicate(node)
    result = _fhirpath(expression, resource_level)(node, {})
    return not (len(result) == 1 and result[0] is False)


def _scoring_code(node: Json) -> str | None:
    for ext in node.get("extension", []) or []:
        if str(ext.get("url", "")).endswith("measureScoring"):
            for coding in (ext.get("valueCodeableConcept") or {}).get("coding", []):
                return coding.get("code")
            return ext.get("valueCode")
    return None


def _has_group_notation(group: Json) -> bool:
    return any(str(ext.get("url", "")).endswith("mprovementNotation") for ext in group.get("extension", []) or [])


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


def check_measure_report(report: Json, *, engine: Engine = "auto") -> list[str]:
    """Check a MeasureReport (R4 JSON as a dict) against our profile and the DEQM summary invariants.

    Checks, each problem one string prefixed by its rule:

    - ``fhir``: it parses as a ``fhir.resources.R4B`` MeasureReport (structure, types, cardinalities);
    - ``deqm-0`` … ``deqm-9``: the DEQM summary MeasureReport invariants that apply to a summary report:
      versioned measure (0), date with day precision (1), improvement notation for proportion, ratio and
      continuous-variable scoring at report (2) or group level (4), scoring extension on the root or every group
      (3), a population in every group (5), a proportion score in 0..1 (6), stratifier code xor component code
      (7), count xor countQuantity for group (8) and stratum (9) populations. The scoring is the report's DEQM
      scoring extension when present, else the referenced packaged Measure's;
    - ``pts-profile``: status ``complete``, type ``summary``, at least one group (the profile's fixed values;
      its invariant ``pts-mr-1``, a versioned fhir-pts Measure canonical, is deqm-0 plus ``pts-measure``);
    - ``pts-measure``: the measure canonical names a packaged Measure and its version; the report's
      improvementNotation and population codes agree with that Measure;
    - ``pts-ext``: every extension under the project's canonical base is a packaged extension definition and
      its sub-extensions follow it (names, cardinalities, value types); other extensions must be HL7's.

    :param engine: ``fhirpath`` evaluates the invariants as FHIRPath with fhirpathpy, ``python`` with their
        plain-Python twins (same verdicts; tests check that), ``auto`` FHIRPath when fhirpathpy is installed.
    :returns: the problems; an empty list means conformant.
    """
    if not isinstance(report, dict) or report.get("resourceType") != "MeasureReport":
        return ["fhir: not a MeasureReport (resourceType must be 'MeasureReport')"]
    problems = _parse_problems(report)
    groups = [g for g in report.get("group", []) or [] if isinstance(g, dict)]

    for invariant in _REPORT_INVARIANTS:
        if not _holds(invariant, report, engine, resource_level=True):
            problems.append(f"{invariant[0]}: {invariant[3]}")

    # The packaged Measure this report is about.
    canonical = str(report.get("measure", ""))
    url, _, version = canonical.partition("|")
    packaged = _package()[0].get(url)
    if not url.startswith(MEASURE_BASE + "/") or packaged is None or packaged.get("resourceType") != "Measure":
        problems.append(f"pts-measure: measure {canonical!r} is not a packaged fhir-pts Measure")
        packaged = None
    elif version and version != packaged.get("version"):
        problems.append(
            f"pts-measure: measure version {version!r} differs from the packaged Measure's {packaged.get('version')!r}"
        )

    root_scoring = _scoring_code(report) or _measure_scoring(packaged)
    root_notation = report.get("improvementNotation") is not None
    if root_scoring in _SCORINGS_NEEDING_NOTATION and not root_notation and not all(map(_has_group_notation, groups)):
        problems.append(f"deqm-2: improvementNotation is required for {root_scoring} scoring")
    if packaged is not None and root_notation:
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

    for i, group in enumerate(groups):
        scoring = _scoring_code(group) or root_scoring
        if _scoring_code(group) in _SCORINGS_NEEDING_NOTATION and not root_notation and not _has_group_notation(group):
            problems.append(f"deqm-4: group[{i}]: an improvement notation is required for {scoring} scoring")
        if scoring != "composite" and not group.get("population"):
            problems.append(f"deqm-5: group[{i}]: a non-composite report needs at least one population")
        checks = (*_GROUP_INVARIANTS, _PROPORTION_INVARIANT) if scoring == "proportion" else _GROUP_INVARIANTS
        for invariant in checks:
            if not _holds(invariant, group, engine, resource_level=False):
                problems.append(f"{invariant[0]}: group[{i}]: {invariant[3]}")
        if declared:
            for j, pop in enumerate(group.get("population", []) or []):
                for coding in (pop.get("code") or {}).get("coding", []):
                    if coding.get("code") not in declared:
                        problems.append(
                            f"pts-measure: group[{i}].population[{j}]: {coding.get('code')!r} is not a population "
                            f"of Measure {url}"
                        )

    _check_extensions(report, problems)
    return problems
