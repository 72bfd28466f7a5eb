"""Small-cell suppression of a summary MeasureReport (the rule of :mod:`fhir_pts.disclosure`).

:func:`suppress_report` takes a MeasureReport as :mod:`fhir_pts.outputs.measure_report` builds it (any
analysis, plugins' included) and hides every figure that shows, or lets one compute, fewer than
``min_cell_count`` patients:

- a population ``count`` of 1..k-1: removed, and ``_count`` carries ``data-absent-reason`` = ``masked``;
- a ``statistic`` computed on 1..k-1 patients (``sampleSize``): everything but its ``name`` removed;
- an extreme (a statistic named ``*_min`` / ``*_max``, e.g. ``age_min``): its value, which is one patient's;
- a count statistic (no unit, no CI, no p-value, a whole number: ``numerator``, ``events``, ``at_risk_12m``,
  ``baseline_class_none`` ...) of 1..k-1: its value removed;
- when a group lost a count, the figures computed from it: the ``measureScore`` (then carrying ``masked``)
  and the proportions (statistics named ``proportion*``);
- a Kaplan-Meier estimate ``km_<t>`` whose ``at_risk_<t>`` was suppressed, and every survival-curve point
  with fewer than k patients at risk (the curve ends where fewer than k remain, as published curves do).

The narrative (``MeasureReport.text``) then says what was suppressed and why. Complementary cells are not
suppressed (Cumulus' rule too): a denominator of 43 with a numerator of 40 still implies 3 others.
"""

from __future__ import annotations

import copy
import html
import re
from typing import Any

from fhir_pts.disclosure import MIN_CELL_COUNT, is_disclosive, masked

__all__ = ["suppress_report"]

_STATISTIC = "https://fhir-pts.org/fhir/StructureDefinition/statistic"
_CURVE = "https://fhir-pts.org/fhir/StructureDefinition/survival-curve"
_MEASURED = ("value", "ciLow", "ciHigh", "ciLevel", "pValue", "sampleSize", "method")


def _sub(extension: dict[str, Any], url: str) -> Any:
    for sub in extension.get("extension", []) or []:
        if sub.get("url") == url:
            return next((v for k, v in sub.items() if k.startswith("value")), None)
    return None


def _is_count(extension: dict[str, Any]) -> bool:
    value = _sub(extension, "value")
    return (
        isinstance(value, int | float)
        and float(value).is_integer()
        and _sub(extension, "unit") is None
        and _sub(extension, "ciLow") is None
        and _sub(extension, "ciHigh") is None
        and _sub(extension, "pValue") is None
    )


def _strip(extension: dict[str, Any], parts: tuple[str, ...]) -> None:
    extension["extension"] = [s for s in extension.get("extension", []) or [] if s.get("url") not in parts]


def _suppress_group(group: dict[str, Any], k: int) -> list[str]:
    """Suppress in place; return what was suppressed (names, for the narrative)."""
    hidden: list[str] = []
    counts_hidden = False
    for population in group.get("population", []) or []:
        count = population.get("count")
        if isinstance(count, int) and is_disclosive(count, k):
            del population["count"]
            population["_count"] = {"extension": [masked()]}
            code = ((population.get("code") or {}).get("coding") or [{}])[0].get("code", "population")
            hidden.append(f"{code} count")
            counts_hidden = True
    statistics = [e for e in group.get("extension", []) or [] if e.get("url") == _STATISTIC]
    hidden_names: set[str] = set()
    for statistic in statistics:
        name = str(_sub(statistic, "name"))
        n = _sub(statistic, "sampleSize")
        if isinstance(n, int) and is_disclosive(n, k):
            _strip(statistic, _MEASURED)
            hidden_names.add(name)
        elif k > 1 and name.endswith(("_min", "_max")) and _sub(statistic, "value") is not None:
            _strip(statistic, ("value", "ciLow", "ciHigh", "ciLevel", "pValue"))  # one patient's value
            hidden_names.add(name)
        elif _is_count(statistic) and is_disclosive(int(_sub(statistic, "value")), k):
            _strip(statistic, ("value",))
            hidden_names.add(name)
            counts_hidden = True
    for statistic in statistics:
        name = str(_sub(statistic, "name"))
        if name in hidden_names:
            continue
        at_risk = re.fullmatch(r"km_(.+)", name)
        derived = counts_hidden and name.startswith("proportion")
        if derived or (at_risk and f"at_risk_{at_risk.group(1)}" in hidden_names):
            _strip(statistic, ("value", "ciLow", "ciHigh", "ciLevel", "pValue"))
            hidden_names.add(name)
    hidden.extend(sorted(hidden_names))
    if counts_hidden and isinstance(group.get("measureScore"), dict) and "value" in group["measureScore"]:
        group["measureScore"] = {"extension": [masked()]}
        hidden.append("measureScore")
    for curve in (e for e in group.get("extension", []) or [] if e.get("url") == _CURVE):
        kept = []
        dropped = 0
        for sub in curve.get("extension", []) or []:
            if sub.get("url") == "point":
                at = _sub(sub, "atRisk")
                if isinstance(at, int) and is_disclosive(at, k):
                    dropped += 1
                    continue
            kept.append(sub)
        if dropped:
            curve["extension"] = kept
            hidden.append(f"{dropped} survival-curve points")
    return hidden


def suppress_report(report: dict[str, Any], min_cell_count: int = MIN_CELL_COUNT) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``report`` with every disclosive figure suppressed (see the module), and what was suppressed.

    ``min_cell_count`` 1 returns an unchanged copy.
    """
    out = copy.deepcopy(report)
    hidden: list[str] = []
    for group in out.get("group", []) or []:
        hidden.extend(_suppress_group(group, min_cell_count))
    if hidden:
        note = (
            f"<p>Disclosure control: figures about 1 to {min_cell_count - 1} patients are suppressed (masked): "
            f"{html.escape(', '.join(hidden))}.</p>"
        )
        text = out.get("text") or {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"></div>'}
        div = str(text.get("div", ""))
        text["div"] = div[: -len("</div>")] + note + "</div>" if div.endswith("</div>") else div + note
        out["text"] = text
    return out, hidden
