"""The contract's two instruments, Villalta and CIVIQ-20 (contract §2), declared as any plugin declares one.

Registered by import under the plugin name ``instruments`` in every
:func:`fhir_pts.plugin_manager.get_plugin_manager` (so a checkout without installed metadata has them; they cannot
be blocked). Scoring: :mod:`fhir_pts.instruments.scoring`.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from fhir_pts import codes
from fhir_pts.hookspecs import hookimpl
from fhir_pts.instruments.model import Answers, ExtraColumn, Instrument, InstrumentIndex, Scored, Unscorable
from fhir_pts.instruments.scoring import (
    CIVIQ20_RAW_MAX,
    CIVIQ20_RAW_MIN,
    VILLALTA_ITEM_MAX,
    VILLALTA_ITEM_MIN,
    VILLALTA_TOTAL_MAX,
    VILLALTA_TOTAL_MIN,
    civiq20_from_total,
    score_civiq20,
    villalta_class,
    villalta_total,
)

#: The plugin (entry-point) name of the built-in instruments.
PLUGIN_NAME = "instruments"


def _packaged(name: str) -> dict[str, Any]:
    data = resources.files("fhir_pts").joinpath("data", "profiles", name).read_text(encoding="utf-8")
    return dict(json.loads(data))


def score_villalta(answers: Answers) -> Scored:
    """Villalta: total 0–33 (the 11 items; any missing → no total), class from the total and the ulcer flag."""
    if answers.from_total:
        written = answers.total
        if not isinstance(written, int) or not VILLALTA_TOTAL_MIN <= written <= VILLALTA_TOTAL_MAX:
            raise Unscorable(f"Villalta total: expected an integer 0-33, got {written!r}")
        total = written
    else:
        found = villalta_total(answers.items)
        if found is None:
            missing = [name for name in codes.VILLALTA_ITEMS if answers.items.get(name) is None]
            raise Unscorable(f"Villalta items missing '{', '.join(missing)}': no total (all 11 items 0-3 are needed)")
        total = found
    ulcer = answers.flags.get(codes.VILLALTA_ULCER_ITEM)
    return Scored(total, {"class": villalta_class(total, ulcer), "ulcer": ulcer})


CIVIQ20_DIMENSION_COLUMNS = ("pain", "physical", "social", "psychological")


def score_civiq20_answers(answers: Answers) -> Scored:
    """CIVIQ-20: raw sum 20–100 (1–2 missing items imputed within their dimension), GIS and dimensions."""
    if answers.from_total:
        assert answers.total is not None
        score = civiq20_from_total(answers.total)
        imputed: bool | None = None  # a total-only Observation does not say whether items were imputed
    else:
        found = score_civiq20(answers.items)
        if found is None:
            missing = [name for name in codes.CIVIQ20_ITEMS if name not in answers.items]
            raise Unscorable(
                f"CIVIQ-20: {len(missing)} items missing '{', '.join(missing)}': no score "
                "(3 or more missing, or a dimension without any answer)"
            )
        score, imputed = found, found.imputed
    warnings = (
        (
            f"CIVIQ-20 items '{', '.join(score.imputed_items)}' missing: imputed by the mean of the answered "
            "items of their dimension",
        )
        if score.imputed
        else ()
    )
    values = {"gis": score.gis, "imputed": imputed, **{d: getattr(score, d) for d in CIVIQ20_DIMENSION_COLUMNS}}
    return Scored(score.raw, values, warnings)


def _both(baseline: str, followup: str) -> tuple[str, str]:
    return baseline, followup


VILLALTA = Instrument(
    id="villalta",
    title="Villalta",
    questionnaires=(codes.VILLALTA_QUESTIONNAIRE,),
    items=codes.VILLALTA_ITEMS,
    item_range=(VILLALTA_ITEM_MIN, VILLALTA_ITEM_MAX),
    score=score_villalta,
    total_range=(VILLALTA_TOTAL_MIN, VILLALTA_TOTAL_MAX),
    total_integer=True,
    total_codes=(codes.VILLALTA_TOTAL,),
    flags=(codes.VILLALTA_ULCER_ITEM,),
    answer_values={},  # codes written as the integer score
    classes=("none", "mild", "moderate", "severe"),
    score_label="total (0-33)",
    questionnaire=_packaged("Questionnaire-villalta.json"),
    extra_columns=(
        ExtraColumn(
            "{when}_villalta_class",
            "class",
            "string",
            _both("baseline Villalta class: none, mild, moderate, severe", "3-month Villalta class"),
        ),
        ExtraColumn(
            "{when}_ulcer",
            "ulcer",
            "boolean",
            _both("baseline venous ulcer flag; <NA> when not recorded", "3-month venous ulcer flag"),
        ),
    ),
    descriptions={
        "baseline_villalta": "baseline Villalta total (sum of 11 items, 0-33; ulcer not added)",
        "followup_villalta": "3-month Villalta total (0-33)",
        "villalta_gain": "baseline - 3-month Villalta total (positive = improvement)",
    },
    regression_terms=("baseline_villalta", "baseline_civiq20", "age", "stented_segments"),
)

_CIVIQ20_DIMENSION_RANGES = {"pain": "4-20", "physical": "4-20", "social": "3-15", "psychological": "9-45"}

CIVIQ20 = Instrument(
    id="civiq20",
    title="CIVIQ-20",
    questionnaires=(codes.CIVIQ20_QUESTIONNAIRE,),
    items=codes.CIVIQ20_ITEMS,
    item_range=(1, 5),
    score=score_civiq20_answers,
    total_range=(CIVIQ20_RAW_MIN, CIVIQ20_RAW_MAX),
    total_integer=False,
    total_codes=(codes.CIVIQ20_TOTAL,),
    answer_values={},
    score_label="raw sum (20-100)",
    questionnaire=_packaged("Questionnaire-civiq-20.json"),
    extra_columns=(
        ExtraColumn(
            "{when}_civiq20_gis",
            "gis",
            "Float64",
            _both("baseline CIVIQ-20 Global Index Score, (raw - 20) / 80 x 100", "3-month CIVIQ-20 Global Index Score"),
        ),
        ExtraColumn(
            "{when}_civiq20_imputed",
            "imputed",
            "boolean",
            _both("baseline CIVIQ-20 had 1-2 items imputed", "3-month CIVIQ-20 had 1-2 items imputed"),
        ),
        *(
            ExtraColumn(
                f"{{when}}_civiq20_{d}",
                d,
                "Float64",
                _both(
                    f"baseline CIVIQ-20 {d} dimension raw sum ({_CIVIQ20_DIMENSION_RANGES[d]})",
                    f"3-month CIVIQ-20 {d} dimension raw sum",
                ),
            )
            for d in CIVIQ20_DIMENSION_COLUMNS
        ),
    ),
    descriptions={
        "baseline_civiq20": "baseline CIVIQ-20 raw sum (20-100); fractional only when imputed",
        "followup_civiq20": "3-month CIVIQ-20 raw sum (20-100)",
        "civiq20_gain": "baseline - 3-month CIVIQ-20 raw sum (positive = improvement)",
    },
    regression_terms=("baseline_villalta", "baseline_civiq20", "age", "stented_segments"),
)

#: The contract's instruments, in the order of their cohort columns and measures.
BUILTIN_INSTRUMENTS: tuple[Instrument, ...] = (VILLALTA, CIVIQ20)
#: The adapters' view of the contract's instruments (questionnaire canonicals, total codes).
BUILTIN_INDEX = InstrumentIndex.of(BUILTIN_INSTRUMENTS)


@hookimpl
def fhir_pts_instruments() -> list[Instrument]:
    """Villalta and CIVIQ-20."""
    return list(BUILTIN_INSTRUMENTS)
