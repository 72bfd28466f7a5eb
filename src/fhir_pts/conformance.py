"""The project's FHIR conformance artefacts, and a checker of the MeasureReports we write.

The FHIR package compiled from ``profiles/`` (FSH, built by SUSHI) ships inside the wheel under
``fhir_pts/data/profiles/``: CodeSystems, ValueSets, the ConceptMap template, the two Questionnaires, the
profiles and extensions, and one Measure per measure id of the contract (§4). It is the machine-readable
single source of truth for the contract; ``docs/profiles.md`` describes it for integration engineers.

- :func:`load_package` — every packaged resource, by canonical URL.
- :func:`measure`, :func:`questionnaire` — one Measure / Questionnaire by id (or canonical).
- :func:`check_measure_report` — conformance of a MeasureReport (a JSON dict) to our profile
  ``pts-measure-report`` and the DEQM summary invariants deqm-0 … deqm-9; returns the list of problems.
- :func:`check_resource` — an input resource (index stenting, reintervention, patency finding, score total)
  against its input profile, for integration engineers checking what their server sends.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Iterator
from functools import cache
from importlib import resources
from typing import Any, Literal

from fhir_pts.codes import CANONICAL_BASE, EXTENSION_BASE, MEASURE_BASE

__all__ = [
    "INPUT_PROFILES",
    "MEASURE_REPORT_PROFILE",
    "check_measure_report",
    "check_resource",
    "fhirpath_available",
    "infer_profile",
    "load_package",
    "measure",
    "package_manifest",
    "questionnaire",
]

#: Canonical of our MeasureReport profile.
MEASURE_REPORT_PROFILE = f"{EXTENSION_BASE}/pts-measure-report"
#: Extensions from outside the project that a MeasureReport may carry: FHIR core, HL7 IGs (DEQM, CQM, SDC) and
#: the R5 cross-version extensions, all under this prefix.
_FOREIGN_EXTENSION_PREFIX = "http://hl7.org/fhir/"
_SCORINGS_NEEDING_NOTATION = frozenset({"proportion", "ratio", "continuous-variable"})

Json = dict[str, Any]


# --- the package ----------------------------------------------------------------------------------------------


def _package_files() -> Iterator[tuple[str, bytes]]:
    root = resources.files("fhir_pts").joinpath("data", "profiles")
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            yield entry.name, entry.read_bytes()


@cache
def _package() -> tuple[dict[str, Json], Json]:
    by_url: dict[str, Json] = {}
    manifest: Json = {}
    for name, data in _package_files():
        resource = json.loads(data)
        if name == "package.json":
            manifest = resource
        elif "url" in resource:
            by_url[resource["url"]] = resource
    return by_url, manifest


def load_package() -> dict[str, Json]:
    """Every resource of the packaged FHIR package, keyed by canonical URL (without version).

    The dicts are copies: callers may change them freely.
    """
    return copy.deepcopy(_package()[0])


def package_manifest() -> Json:
    """The ``package.json`` of the packaged FHIR package (name, version, canonical, fhirVersions)."""
    return copy.deepcopy(_package()[1])


def _resource(resource_type: str, key: str) -> Json:
    url = key.split("|", 1)[0]
    if "/" not in url:
        url = f"{CANONICAL_BASE}/{resource_type}/{url}"
    found = _package()[0].get(url)
    if found is None or found.get("resourceType") != resource_type:
        raise KeyError(f"no packaged {resource_type} {key!r}")
    return copy.deepcopy(found)


def measure(measure_id: str) -> Json:
    """The packaged Measure ``measure_id`` (e.g. ``technical-success``; a canonical, versioned or not, works too).

    :raises KeyError: no such Measure in the package.
    """
    return _resource("Measure", measure_id)


def questionnaire(name: str) -> Json:
    """The packaged Questionnaire ``name`` (``villalta`` or ``civiq-20``; a canonical, versioned or not, works too).

    :raises KeyError: no such Questionnaire in the package.
    """
    return _resource("Questionnaire", name)


# --- invariants: FHIRPath (fhirpathpy) with a plain-Python twin ----------------------------------------------------

Engine = Literal["auto", "fhirpath", "python"]
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


def fhirpath_available() -> bool:
    """Whether fhirpathpy is installed (the invariants are then evaluated as FHIRPath)."""
    try:
        import fhirpathpy  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _fhirpath(expression: str, resource_level: bool) -> Callable[..., list[Any]]:
    from fhirpathpy import compile as fhirpath_compile
    from fhirpathpy.models import models as fhirpath_models

    return fhirpath_compile(expression, fhirpath_models["r4"] if resource_level else None)


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


# --- input resources against the input profiles -----------------------------------------------------------------

#: The input profiles, by short name (their canonical is ``{base}/StructureDefinition/<name>``).
INPUT_PROFILES: tuple[str, ...] = (
    "pts-index-stenting-procedure",
    "pts-reintervention-procedure",
    "pts-stent-patency-observation",
    "pts-villalta-total-observation",
    "pts-civiq20-total-observation",
)


def _valueset_contains(vs_url: str, system: str | None, code: str | None, _seen: frozenset[str] = frozenset()) -> bool:
    """Whether ``(system, code)`` is in a packaged ValueSet (explicit concepts, included ValueSets, regex filters).

    For a ``code`` element (no system) only the code is compared.
    """
    vs = _package()[0].get(vs_url.split("|", 1)[0])
    if vs is None or vs_url in _seen or code is None:
        return False
    for include in vs.get("compose", {}).get("include", []):
        if any(_valueset_contains(v, system, code, _seen | {vs_url}) for v in include.get("valueSet", [])):
            return True
        if system is not None and include.get("system") not in (None, system):
            continue
        if any(c.get("code") == code for c in include.get("concept", [])):
            return True
        for flt in include.get("filter", []):
            if flt.get("property") == "code" and flt.get("op") == "regex" and re.fullmatch(flt["value"], code):
                return True
        if (
            "concept" not in include
            and "filter" not in include
            and "valueSet" not in include
            and include.get("system") in _package()[0]
        ):
            codes_of_system = {c.get("code") for c in _package()[0][include["system"]].get("concept", [])}
            if code in codes_of_system:
                return True
    return False


def _codings_of(value: Any) -> list[tuple[str | None, str | None]]:
    if isinstance(value, dict) and "coding" in value:
        return [(c.get("system"), c.get("code")) for c in value.get("coding", []) if isinstance(c, dict)]
    if isinstance(value, dict):
        return [(value.get("system"), value.get("code"))]
    if isinstance(value, str):
        return [(None, value)]
    return []


def _choice_keys(resource: Json, stem: str) -> list[str]:
    return [k for k in resource if k.startswith(stem) and k[len(stem) : len(stem) + 1].isupper()]


def _values(resource: Json, path: list[str]) -> list[Any]:
    """The values at a differential path below the resource (``value[x]`` → whichever valueX is present)."""
    nodes: list[Any] = [resource]
    for part in path:
        nxt: list[Any] = []
        for node in nodes:
            if not isinstance(node, dict):
                continue
            keys = _choice_keys(node, part[:-3]) if part.endswith("[x]") else [part]
            for key in keys:
                value = node.get(key)
                if isinstance(value, list):
                    nxt.extend(value)
                elif value is not None:
                    nxt.append(value)
        nodes = nxt
    return nodes


def infer_profile(resource: Json) -> str | None:
    """The input profile a resource is meant to meet: its ``meta.profile`` if one is ours, else by its code.

    A Procedure coded as index stenting gets the index profile (a re-stenting after day 0 is also a
    reintervention; pass the profile explicitly to check it as one).
    """
    for url in (resource.get("meta") or {}).get("profile", []) or []:
        name = str(url).split("|", 1)[0].rsplit("/", 1)[-1]
        if name in INPUT_PROFILES and str(url).startswith(EXTENSION_BASE):
            return name
    kind = resource.get("resourceType")
    codings = _codings_of(resource.get("code"))
    base = f"{CANONICAL_BASE}/ValueSet"
    if kind == "Procedure":
        if any(_valueset_contains(f"{base}/index-stenting", s, c) for s, c in codings):
            return "pts-index-stenting-procedure"
        if any(_valueset_contains(f"{base}/reintervention", s, c) for s, c in codings):
            return "pts-reintervention-procedure"
    if kind == "Observation":
        for name in INPUT_PROFILES[2:]:
            profile = _package()[0][f"{EXTENSION_BASE}/{name}"]
            for element in profile["differential"]["element"]:
                pattern = element.get("patternCodeableConcept")
                if element["path"] == "Observation.code" and pattern:
                    wanted = {(c.get("system"), c.get("code")) for c in pattern["coding"]}
                    if wanted & set(codings):
                        return name
    return None


def check_resource(resource: Json, profile: str | None = None, *, engine: Engine = "auto") -> list[str]:
    """Check an input resource (a dict) against one of the input profiles (:data:`INPUT_PROFILES`).

    What the profiles say, read from their differentials: required elements, fixed codes and patterns (status
    ``completed``, the Observation code), required bindings to the packaged ValueSets (at least one coding in the
    ValueSet), the allowed value types and integer ranges, and the profile's FHIRPath invariants (``pts-1``,
    ``pts-2``; evaluated only when fhirpathpy is installed, unless ``engine="python"`` skips them). Extensible
    bindings are not enforced: local codes reach the adapters through a ConceptMap. The resource is also parsed
    with ``fhir.resources.R4B``.

    :param profile: a profile name or canonical; default :func:`infer_profile`.
    :returns: the problems, each prefixed by the profile's name; empty = conformant.
    """
    name = (profile or infer_profile(resource) or "").split("|", 1)[0].rsplit("/", 1)[-1]
    if name not in INPUT_PROFILES:
        return [f"no fhir-pts input profile applies to {resource.get('resourceType')}/{resource.get('id')}"]
    definition = _package()[0][f"{EXTENSION_BASE}/{name}"]
    problems: list[str] = []
    kind = definition["type"]
    if resource.get("resourceType") != kind:
        return [f"{name}: expected a {kind}, got {resource.get('resourceType')}"]
    from fhir.resources.R4B import get_fhir_model_class

    try:
        get_fhir_model_class(kind).model_validate(resource)
    except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
        problems.append(f"{name}: fhir: {str(exc).splitlines()[0]}")

    for element in definition["differential"]["element"]:
        parts = element["path"].split(".")[1:]
        label = element["id"]
        if not parts:
            for constraint in element.get("constraint", []):
                use_fhirpath = engine == "fhirpath" or (engine == "auto" and fhirpath_available())
                if use_fhirpath:
                    result = _fhirpath(constraint["expression"], True)(resource, {})
                    if len(result) == 1 and result[0] is False:
                        problems.append(f"{name}: {constraint['key']}: {constraint['human']}")
            continue
        if element.get("sliceName") and parts[-1].endswith("[x]"):  # a type slice, e.g. value[x]:valueQuantity
            values = [resource[element["sliceName"]]] if resource.get(element["sliceName"]) is not None else []
        elif ":" in label:  # e.g. Observation.value[x]:valueQuantity.system — only when that type is used
            choice = label.split(":", 1)[1].split(".", 1)[0]
            values = [resource[choice].get(parts[-1])] if isinstance(resource.get(choice), dict) else []
            values = [v for v in values if v is not None]
        else:
            values = _values(resource, parts)
        if element.get("min", 0) >= 1 and not values:
            problems.append(f"{name}: {label} is required")
        if parts[-1].endswith("[x]") and "type" in element and not element.get("sliceName"):
            allowed = {parts[-1][:-3] + t["code"][0].upper() + t["code"][1:] for t in element["type"]}
            used = set(_choice_keys(resource, parts[-1][:-3])) if len(parts) == 1 else set()
            if used - allowed:
                problems.append(f"{name}: {label} must be one of {sorted(allowed)}, got {sorted(used)}")
        for key in ("patternCode", "patternUri", "fixedCode", "fixedUri"):
            if key in element and any(v != element[key] for v in values):
                problems.append(f"{name}: {label} must be {element[key]!r}")
        pattern = element.get("patternCodeableConcept")
        if pattern:
            wanted = {(c.get("system"), c.get("code")) for c in pattern["coding"]}
            if values and not all(wanted <= set(_codings_of(v)) for v in values):
                problems.append(f"{name}: {label} must carry {sorted(wanted)}")
        binding = element.get("binding") or {}
        if binding.get("strength") == "required":
            for value in values:
                if not any(_valueset_contains(binding["valueSet"], s, c) for s, c in _codings_of(value)):
                    problems.append(f"{name}: {label}: no code from ValueSet {binding['valueSet']}")
        for key, check in (("minValueInteger", lambda v, b: v >= b), ("maxValueInteger", lambda v, b: v <= b)):
            if key in element:
                for value in values:
                    if isinstance(value, int) and not check(value, element[key]):
                        low, high = element.get("minValueInteger", ""), element.get("maxValueInteger", "")
                        problems.append(f"{name}: {label} {value} is outside {low}..{high}")
    return problems
