"""The DEQM summary-MeasureReport invariants deqm-0 … deqm-9, in FHIRPath: the project's one DEQM check.

Every invariant is a FHIRPath expression evaluated with fhirpathpy on the report or on one group; only an
explicit ``false`` is a violation (an empty result is not). The scoring a rule depends on is passed in as the
environment variable ``%scoring`` (the report's DEQM measure-scoring extension, else the packaged Measure's;
for a group its own extension first), and ``%rootNotation`` says whether the report carries an
``improvementNotation``. :func:`deqm_problems` returns one message per violation, naming the rule, the group
and (deqm-6) the offending score. A report with ``status = error`` has no group: only deqm-0 and deqm-1 apply.

:func:`fhir_pts.conformance.check_measure_report` calls it (with the profile's own checks besides); the tests of
the writer (:mod:`fhir_pts.outputs.measure_report`) check its reports with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fhir_pts.conformance.fhirpath import _fhirpath

Json = Mapping[str, Any]

#: Scorings whose reports need an improvement notation (deqm-2 on the report, deqm-4 on a group).
SCORINGS_NEEDING_NOTATION: tuple[str, ...] = ("proportion", "ratio", "continuous-variable")
_NEEDS_NOTATION = "%scoring in ('proportion' | 'ratio' | 'continuous-variable')"
_NOTATION_EXT = "extension.where(url.endsWith('mprovementNotation')).exists()"
_COUNT_XOR_QUANTITY = "all(count.exists() xor extension.where(url.endsWith('countQuantity')).exists())"

#: (key, FHIRPath on the MeasureReport, message) — every report, an ``error`` one included.
ALWAYS: tuple[tuple[str, str, str], ...] = (
    ("deqm-0", "measure.exists() and measure.contains('|')", "measure must be a versioned canonical (url|version)"),
    ("deqm-1", "date.exists() and date.toString().length() >= 10", "date must be present with at least day precision"),
)
#: (key, FHIRPath on the MeasureReport, message) — a report with results.
REPORT: tuple[tuple[str, str, str], ...] = (
    (
        "deqm-2",
        f"({_NEEDS_NOTATION}) implies (improvementNotation.exists() or group.all({_NOTATION_EXT}))",
        "improvementNotation is required for {scoring} scoring",
    ),
    (
        "deqm-3",
        "(extension.where(url.endsWith('measureScoring')).exists() and "
        "group.extension.where(url.endsWith('measureScoring')).exists()).not()",
        "the scoring extension must be on the root only, or on the groups only",
    ),
    (
        "deqm-3",
        "group.extension.where(url.endsWith('measureScoring')).empty() or "
        "group.all(extension.where(url.endsWith('measureScoring')).exists())",
        "when the scoring extension is on the groups it must be on every group",
    ),
)
#: (key, FHIRPath on one group, message); ``%scoring`` is the group's scoring, ``%groupScoring`` its own extension's.
GROUP: tuple[tuple[str, str, str], ...] = (
    (
        "deqm-4",
        f"({_NEEDS_NOTATION.replace('%scoring', '%groupScoring')}) implies (%rootNotation or {_NOTATION_EXT})",
        "an improvement notation is required for {scoring} scoring",
    ),
    (
        "deqm-5",
        "(%scoring ~ 'composite').not() implies population.exists()",
        "a non-composite report needs at least one population",
    ),
    (
        "deqm-6",
        "(%scoring = 'proportion' and measureScore.value.exists()) implies "
        "(measureScore.value >= 0 and measureScore.value <= 1)",
        "a proportion measureScore must lie in 0..1 (it is {score})",
    ),
    (
        "deqm-7",
        "stratifier.all((code.exists() and stratum.component.exists().not()) or "
        "(code.exists().not() and stratum.component.exists() and stratum.component.all(code.exists())))",
        "a stratifier has a code or component codes, not both and not neither",
    ),
    ("deqm-8", f"population.{_COUNT_XOR_QUANTITY}", "every population has count xor countQuantity"),
    (
        "deqm-9",
        f"stratifier.stratum.population.{_COUNT_XOR_QUANTITY}",
        "every stratum population has count xor countQuantity",
    ),
)


def scoring_code(node: Json) -> str | None:
    """The measure-scoring code of a report or group's DEQM ``measureScoring`` extension (None without one)."""
    for ext in node.get("extension", []) or []:
        if isinstance(ext, Mapping) and str(ext.get("url", "")).endswith("measureScoring"):
            for coding in (ext.get("valueCodeableConcept") or {}).get("coding", []):
                return coding.get("code")
            return ext.get("valueCode")
    return None


def _holds(expression: str, node: Json, resource_level: bool, variables: Mapping[str, Any]) -> bool:
    """Whether the invariant holds on ``node``: in FHIRPath only an explicit ``false`` is a violation."""
    result = _fhirpath(expression, resource_level)(dict(node), dict(variables))
    return not (len(result) == 1 and result[0] is False)


def deqm_problems(report: Json, *, measure_scoring: str | None = None) -> list[str]:
    """The DEQM summary-MeasureReport invariants ``report`` breaks, one message each (empty: none).

    ``measure_scoring``: the scoring of the Measure the report is about, used when the report has no DEQM
    scoring extension. Messages start with the rule (``deqm-6: group[0]: …``).
    """
    problems = [f"{key}: {text}" for key, expression, text in ALWAYS if not _holds(expression, report, True, {})]
    if report.get("status") == "error":
        return problems
    root_scoring = scoring_code(report) or measure_scoring
    variables = {"scoring": root_scoring if root_scoring is not None else []}
    for key, expression, text in REPORT:
        if not _holds(expression, report, True, variables):
            problems.append(f"{key}: {text.format(scoring=root_scoring)}")
    root_notation = report.get("improvementNotation") is not None
    for i, group in enumerate(g for g in report.get("group", []) or [] if isinstance(g, Mapping)):
        own = scoring_code(group)
        scoring = own or root_scoring
        variables = {
            "scoring": scoring if scoring is not None else [],
            "groupScoring": own if own is not None else [],
            "rootNotation": root_notation,
        }
        score = (group.get("measureScore") or {}).get("value")
        for key, expression, text in GROUP:
            if not _holds(expression, group, False, variables):
                problems.append(f"{key}: group[{i}]: {text.format(scoring=scoring, score=score)}")
    return problems
