"""Input resources (index stenting, reintervention, patency finding, score total) against their input
profiles, for integration engineers checking what their server sends."""

from __future__ import annotations

import re
from typing import Any

from fhir_pts.codes import CANONICAL_BASE, EXTENSION_BASE
from fhir_pts.conformance.fhirpath import Engine, _fhirpath, fhirpath_available
from fhir_pts.conformance.package import Json, _package

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
