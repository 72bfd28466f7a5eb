"""What a clinical instrument (a scored questionnaire) declares, and the generic scoring it can use.

An :class:`Instrument` is the whole declaration a plugin returns from the ``fhir_pts_instruments`` hook
(:mod:`fhir_pts.hookspecs`); everything downstream follows from it:

- the adapters recognise its ``QuestionnaireResponse`` (by :attr:`Instrument.questionnaires`) and its total
  ``Observation`` (by :attr:`Instrument.total_codes`), reading item answers by linkId as ``valueInteger``, as a
  ``valueCoding`` whose code is written as an integer, or as a ``valueCoding`` mapped to a value by
  :attr:`Instrument.answer_values` (by default taken from the Questionnaire's ``answerOption`` ``itemWeight`` /
  ``ordinalValue`` extensions);
- the cohort gets ``baseline_<id>_day``, ``baseline_<id>_resource_id``, ``baseline_<id>`` (the score), the
  instrument's extra columns, the same for ``followup_``, and ``<id>_gain`` = baseline − 3 months;
- the analyses ``<id>`` (paired medians, IQR, mean gain, Wilcoxon) and ``<id>-gain-regression`` (OLS of the
  gain) exist for it.

Scoring is a plain function ``score(answers) -> Scored`` that raises :class:`Unscorable` (a ``ValueError``)
when the assessment gives no score (too many missing items, an invalid total): the reason is reported as a
problem of the resource. :class:`SummedScore` is the usual one (sum of the items, a missing-item rule).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from fhir_pts.cohort.model import TimePointWindows

Coding = tuple[str, str]  # (system, code)

#: An instrument id: lower-case letters and digits (it names cohort columns and measure ids).
INSTRUMENT_ID = re.compile(r"^[a-z][a-z0-9]*$")
#: Extensions of ``Questionnaire.item.answerOption`` that carry the option's score (R5 backport, R4).
ITEM_WEIGHT_EXTENSIONS = (
    "http://hl7.org/fhir/StructureDefinition/itemWeight",
    "http://hl7.org/fhir/StructureDefinition/ordinalValue",
)


class Unscorable(ValueError):
    """The assessment gives no score; the message is the problem reported for its resource."""


@dataclass(slots=True)
class Answers:
    """What one assessment gives the scoring function.

    ``items``: linkId → value of every scored item with one valid answer (missing or invalid items are absent
    and were reported by the adapter). ``flags``: linkId → value of the instrument's boolean items (``None``
    when not recorded). ``total``: the value of a total-score ``Observation`` (then ``items`` is empty), else
    ``None``.
    """

    items: Mapping[str, int]
    flags: Mapping[str, bool | None] = field(default_factory=dict)
    total: int | float | None = None

    @property
    def from_total(self) -> bool:
        """True for a total-score Observation (no item answers)."""
        return self.total is not None


@dataclass(slots=True)
class Scored:
    """A scored assessment: ``total`` (the instrument's score, the ``baseline_<id>`` column), ``values`` of
    the instrument's extra columns (by :attr:`ExtraColumn.key`; absent = missing) and ``warnings`` (reasons
    reported as warnings on the resource, e.g. imputed items)."""

    total: int | float
    values: Mapping[str, Any] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtraColumn:
    """A cohort column an instrument adds at each time point besides day, resource id and score.

    ``name``: the column name with ``{when}`` for ``baseline`` / ``followup`` (``"{when}_villalta_class"``);
    ``key``: its key in :attr:`Scored.values`; ``dtype``: a pandas nullable dtype name; ``descriptions``: the
    baseline and the 3-month description (``docs/cohort.md``).
    """

    name: str
    key: str
    dtype: str
    descriptions: tuple[str, str]


@dataclass(frozen=True)
class Instrument:
    """A scored questionnaire: the declaration of the ``fhir_pts_instruments`` hook.

    id: ``[a-z][a-z0-9]*`` — the cohort columns (``baseline_<id>``, ``followup_<id>``, ``<id>_gain``) and the
        measure ids (``<id>``, ``<id>-gain-regression``) are named from it.
    title: the display name (``"VCSS"``).
    questionnaires: the Questionnaire canonical URL(s) whose responses are this instrument (no ``|version``;
        a response's ``|version`` is ignored).
    items: the scored linkIds, in questionnaire order.
    item_range: inclusive range of an item value.
    score: ``Answers -> Scored``; raises :class:`Unscorable` (with the reason) when there is no score. It
        must be a module-level function or a picklable object (it may run in other processes).
    total_range: inclusive range of the score (checked on total Observations).
    total_integer: the score is a whole number (cohort columns ``Int64``, else ``Float64``; a fractional total
        Observation is refused).
    total_codes: Observation codes ``(system, code)`` whose value is the score, standing in for a response.
    flags: linkIds of boolean items read besides the scored ones (``valueBoolean``; Villalta's ulcer).
    answer_values: linkId (or ``"*"`` for every item) → answer coding ``(system, code)`` → value; by default
        from the ``itemWeight`` / ``ordinalValue`` extensions of the Questionnaire's ``answerOption``. A coding
        matches also by its code alone when the response omits the system.
    classes: the severity classes in order (``Scored.values["class"]``), if the instrument has any.
    score_label: how the score is named in descriptions (``"total (0-30)"``).
    improvement_notation: ``decrease`` when a lower score is better (the gain baseline − 3 months is then
        positive for an improvement), else ``increase``.
    questionnaire: the Questionnaire resource itself (JSON), for ``synth``, the FHIR package and validation.
    measures: the FHIR ``Measure`` resources of ``<id>`` and ``<id>-gain-regression`` (JSON); built from the
        analysis description when not given.
    extra_columns: further cohort columns at each time point (see :class:`ExtraColumn`); with ``classes``, the
        column ``{when}_<id>_class`` is added unless declared here.
    descriptions: cohort column name → description, overriding the generic ones.
    regression_terms: predictors of ``<id>-gain-regression`` (default: ``baseline_<id>``, ``age``,
        ``stented_segments``).
    windows: the assessment windows (default ``None``: the run's windows, the contract's baseline [−90, 0] and
        3 months closest to day 91 in [60, 150]).
    """

    id: str
    title: str
    questionnaires: tuple[str, ...]
    items: tuple[str, ...]
    item_range: tuple[int, int]
    score: Callable[[Answers], Scored]
    total_range: tuple[float, float]
    total_integer: bool = True
    total_codes: tuple[Coding, ...] = ()
    flags: tuple[str, ...] = ()
    answer_values: Mapping[str, Mapping[Coding, int]] | None = None
    classes: tuple[str, ...] = ()
    score_label: str = "score"
    improvement_notation: Literal["increase", "decrease"] = "decrease"
    questionnaire: Mapping[str, Any] | None = None
    measures: tuple[Mapping[str, Any], ...] = ()
    extra_columns: tuple[ExtraColumn, ...] = ()
    descriptions: Mapping[str, str] = field(default_factory=dict)
    regression_terms: tuple[str, ...] | None = None
    windows: TimePointWindows | None = None

    def __post_init__(self) -> None:
        problems = []
        if not isinstance(self.id, str) or not INSTRUMENT_ID.match(self.id):
            problems.append(f"id {self.id!r} is not [a-z][a-z0-9]*")
        if not self.questionnaires and not self.total_codes:
            problems.append("neither a questionnaire canonical nor a total code")
        if any(not isinstance(q, str) or "|" in q for q in self.questionnaires):
            problems.append("questionnaires must be canonical URLs without |version")
        if len(set(self.items)) != len(self.items) or set(self.items) & set(self.flags):
            problems.append("items and flags must be distinct linkIds")
        low, high = self.item_range
        if low > high or self.total_range[0] > self.total_range[1]:
            problems.append("empty item_range or total_range")
        if not callable(self.score):
            problems.append("score is not callable")
        if problems:
            raise ValueError(f"instrument {self.id!r}: " + "; ".join(problems))

    # --- derived -----------------------------------------------------------------------------------
    @property
    def gain_column(self) -> str:
        return f"{self.id}_gain"

    @property
    def measure_ids(self) -> tuple[str, str]:
        """The paired measure and the gain regression: ``(<id>, <id>-gain-regression)``."""
        return self.id, f"{self.id}-gain-regression"

    @property
    def dtype(self) -> str:
        """pandas dtype of the score and gain columns."""
        return "Int64" if self.total_integer else "Float64"

    @property
    def terms(self) -> tuple[str, ...]:
        """The predictors of the gain regression."""
        if self.regression_terms is not None:
            return tuple(self.regression_terms)
        return (f"baseline_{self.id}", "age", "stented_segments")

    @property
    def time_point_columns(self) -> tuple[ExtraColumn, ...]:
        """The extra columns of each time point: :attr:`extra_columns`, and ``{when}_<id>_class`` (key ``class``)
        when the instrument has classes and does not declare that column itself."""
        if not self.classes or any(c.key == "class" for c in self.extra_columns):
            return tuple(self.extra_columns)
        names = ", ".join(self.classes)
        klass = ExtraColumn(
            f"{{when}}_{self.id}_class",
            "class",
            "string",
            (f"baseline {self.title} class: {names}", f"3-month {self.title} class"),
        )
        return (*self.extra_columns, klass)

    def answer_map(self) -> dict[str, dict[Coding, int]]:
        """linkId (or ``"*"``) → coding → value: :attr:`answer_values`, else read from the Questionnaire."""
        if self.answer_values is not None:
            return {link: dict(values) for link, values in self.answer_values.items()}
        return answer_values_of(self.questionnaire) if self.questionnaire else {}


def answer_values_of(questionnaire: Mapping[str, Any]) -> dict[str, dict[Coding, int]]:
    """linkId → answer coding ``(system, code)`` → its integer score, from the ``answerOption`` extensions
    ``itemWeight`` / ``ordinalValue`` of every (nested) item of a Questionnaire. A coding without system is
    keyed ``("", code)``. Options without a whole-number weight are left out."""
    out: dict[str, dict[Coding, int]] = {}

    def walk(items: Any) -> None:
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            link = item.get("linkId")
            for option in item.get("answerOption") or []:
                coding = option.get("valueCoding") if isinstance(option, dict) else None
                if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
                    continue
                for extension in option.get("extension") or []:
                    weight = extension.get("valueDecimal", extension.get("valueInteger"))
                    if extension.get("url") in ITEM_WEIGHT_EXTENSIONS and isinstance(weight, int | float):
                        if float(weight).is_integer() and isinstance(link, str):
                            out.setdefault(link, {})[(str(coding.get("system", "")), coding["code"])] = int(weight)
                        break
            walk(item.get("item"))

    walk(questionnaire.get("item"))
    return out


@dataclass(frozen=True)
class SummedScore:
    """The usual scoring: the score is the sum of the items.

    Missing-item rule: with at most ``max_missing`` items missing, each missing item is replaced by the mean
    of the answered items (person-mean imputation; the score is then fractional and a warning is reported);
    with more, there is no score. A total Observation is taken as the score when it is in ``total_range``.
    """

    title: str
    items: tuple[str, ...]
    total_range: tuple[float, float]
    max_missing: int = 0
    classes: tuple[tuple[float, str], ...] = ()
    """``(lower bound, class)`` pairs in increasing bounds: the class of the highest bound ≤ the score."""

    def classify(self, total: float) -> str | None:
        found = None
        for bound, name in self.classes:
            if total >= bound:
                found = name
        return found

    def __call__(self, answers: Answers) -> Scored:
        low, high = self.total_range
        if answers.from_total:
            total = answers.total
            if isinstance(total, bool) or not isinstance(total, int | float) or not low <= total <= high:
                raise Unscorable(f"{self.title} total: expected a number {low:g}-{high:g}, got {total!r}")
            return self._scored(total)
        missing = [name for name in self.items if answers.items.get(name) is None]
        if len(missing) > self.max_missing:
            raise Unscorable(
                f"{self.title} items missing '{', '.join(missing)}': no score "
                f"({len(missing)} of {len(self.items)} missing, at most {self.max_missing} allowed)"
            )
        answered = [answers.items[name] for name in self.items if name not in missing]
        if missing and not answered:
            raise Unscorable(f"{self.title}: no item answered: no score")
        total = sum(answered)
        if not missing:
            return self._scored(total)
        imputed = total + len(missing) * total / len(answered)
        return self._scored(
            imputed,
            (f"{self.title} items '{', '.join(missing)}' missing: imputed by the mean of the answered items",),
        )

    def _scored(self, total: float, warnings: tuple[str, ...] = ()) -> Scored:
        values = {"class": self.classify(total)} if self.classes else {}
        return Scored(total=total, values=values, warnings=warnings)


@dataclass(frozen=True, slots=True)
class QuestionnaireSpec:
    """What the QuestionnaireResponse adapter needs of an instrument (plain data, sent to worker processes)."""

    instrument: str
    title: str
    items: tuple[str, ...]
    low: int
    high: int
    flags: tuple[str, ...]
    answer_values: Mapping[str, Mapping[Coding, int]]


@dataclass(frozen=True, slots=True)
class TotalSpec:
    """What the Observation adapter needs of an instrument's total code (plain data)."""

    instrument: str
    low: float
    high: float
    integer: bool


@dataclass(frozen=True)
class InstrumentIndex:
    """The adapters' view of the instruments of a run: questionnaire canonical → spec, total code → spec."""

    questionnaires: Mapping[str, QuestionnaireSpec] = field(default_factory=dict)
    totals: Mapping[Coding, TotalSpec] = field(default_factory=dict)

    @classmethod
    def of(cls, instruments: tuple[Instrument, ...] | list[Instrument]) -> InstrumentIndex:
        questionnaires: dict[str, QuestionnaireSpec] = {}
        totals: dict[Coding, TotalSpec] = {}
        for inst in instruments:
            spec = QuestionnaireSpec(
                inst.id, inst.title, tuple(inst.items), *inst.item_range, tuple(inst.flags), inst.answer_map()
            )
            for canonical in inst.questionnaires:
                questionnaires.setdefault(canonical, spec)
            for code in inst.total_codes:
                totals.setdefault(tuple(code), TotalSpec(inst.id, *inst.total_range, inst.total_integer))  # type: ignore[arg-type]
        return cls(questionnaires, totals)

    def hosts(self) -> set[str]:
        """The hosts of the questionnaire canonicals and total-code systems (for the NDJSON pre-filter)."""
        from urllib.parse import urlparse

        urls = [*self.questionnaires, *(system for system, _ in self.totals)]
        return {urlparse(url).netloc or url for url in urls}
