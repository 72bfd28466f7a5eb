"""The cohort model: one row per patient with an index stenting procedure.

:class:`Cohort` is what every analysis receives. Its ``patients`` DataFrame has exactly the columns of
:data:`COHORT_COLUMNS` (documented here, and column by column in ``docs/cohort.md``), followed by those of the
plugins' instruments when any is installed (:func:`cohort_columns`), so an analysis can run
on a cohort that another engine (e.g. Spark) produced, as long as it has these columns.

Conventions: day numbers are whole days from the index procedure day (day 0); months = days / 30.4375;
missing values are ``<NA>`` (pandas nullable dtypes), never 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fhir_pts.instruments.builtin import BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument
from fhir_pts.problems import Problem
from fhir_pts.vocabulary import MapSource

if TYPE_CHECKING:  # pandas is imported where frames are made: reading starts before its ~0.5 s import
    import pandas as pd


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # pandas dtype name
    description: str


def _patency_columns(definition: str, title: str) -> list[Column]:
    return [
        Column(
            f"{definition}_days",
            "Int64",
            f"{title}: days from day 0 to loss of patency (event) or to the last patency finding (censored)",
        ),
        Column(f"{definition}_months", "Float64", f"{title}: the same time in months (days / 30.4375)"),
        Column(f"{definition}_lost", "boolean", f"{title}: True = patency lost at that time, False = censored"),
    ]


def _score_columns(prefix: str, title: str) -> list[Column]:
    return [
        Column(f"{prefix}_day", "Int64", f"{title}: day of the assessment used"),
        Column(f"{prefix}_resource_id", "string", f"{title}: id of the resource the score comes from"),
    ]


#: The columns before the instruments' (demographics, index procedure, patency).
BASE_COLUMNS: tuple[Column, ...] = (
    Column("patient_id", "string", "Patient resource id"),
    Column("sex", "string", "Patient.gender as written (female, male, other, unknown); <NA> when absent"),
    Column("birth_date", "string", "Patient.birthDate (ISO date)"),
    Column("index_date", "string", "calendar date of the index stenting procedure (day 0), ISO date"),
    Column("age", "Int64", "age in whole years at the index date"),
    Column("index_procedure_ids", "string", "ids of the index-day stenting Procedures, ';'-separated"),
    Column("stented_segments", "Int64", "number of distinct stented segments (side ignored); <NA> when unknown"),
    Column("stented_segment_names", "string", "the segments, ';'-separated, heart to leg"),
    Column("below_inguinal_ligament", "boolean", "any common femoral / femoral / deep femoral segment stented"),
    Column("technical_success", "boolean", "index procedure outcome: True success, False failure, <NA> unknown"),
    Column("major_complication", "Int64", "1 when a major complication of the index procedure is recorded, else 0"),
    Column("patency_findings", "Int64", "number of patency findings after day 0"),
    Column("reinterventions", "Int64", "number of reinterventions after day 0"),
    Column("imaging_follow_up_days", "Int64", "day of the last patency finding (0 when none)"),
    Column("imaging_follow_up_months", "Float64", "the same in months"),
    *_patency_columns("primary_patency", "Primary patency"),
    *_patency_columns("primary_assisted_patency", "Primary-assisted patency"),
    *_patency_columns("secondary_patency", "Secondary patency"),
)


def instrument_columns(instrument: Instrument) -> list[Column]:
    """The cohort columns of one instrument: per time point day, resource id, score and the declared extra
    columns; then the gain (baseline − 3 months)."""
    columns: list[Column] = []
    for when, title, which in (("baseline", "Baseline", 0), ("followup", "3-month", 1)):
        stem = f"{when}_{instrument.id}"
        columns += _score_columns(stem, f"{title} {instrument.title}")
        columns.append(
            Column(
                stem,
                instrument.dtype,
                instrument.descriptions.get(stem, f"{title.lower()} {instrument.title} {instrument.score_label}"),
            )
        )
        columns += [
            Column(extra.name.format(when=when), extra.dtype, extra.descriptions[which])
            for extra in instrument.time_point_columns
        ]
    gain = instrument.gain_column
    better = "improvement" if instrument.improvement_notation == "decrease" else "worsening"
    columns.append(
        Column(
            gain,
            instrument.dtype,
            instrument.descriptions.get(
                gain, f"baseline - 3-month {instrument.title} {instrument.score_label} (positive = {better})"
            ),
        )
    )
    return columns


def cohort_columns(instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS) -> tuple[Column, ...]:
    """The columns of a cohort scored with ``instruments`` (the contract's, Villalta and CIVIQ-20, by default)."""
    return (*BASE_COLUMNS, *(column for instrument in instruments for column in instrument_columns(instrument)))


#: The columns of the contract's cohort (``cohort.csv``): :data:`BASE_COLUMNS` then Villalta's and CIVIQ-20's.
COHORT_COLUMNS: tuple[Column, ...] = cohort_columns()
COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in COHORT_COLUMNS)


def empty_patients_frame(columns: Sequence[Column] = COHORT_COLUMNS) -> pd.DataFrame:
    """A zero-row patients frame with every column at its dtype."""
    import pandas as pd

    return pd.DataFrame({c.name: pd.Series([], dtype=c.dtype) for c in columns})


@dataclass(frozen=True)
class TimePointWindows:
    """Assessment windows in days from day 0 (contract §2); both are parameters of a run.

    Baseline: the latest scorable assessment in ``[baseline_start, baseline_end]``.
    3 months: the one closest to ``followup_target`` in ``[followup_start, followup_end]``, ties to the earlier.
    """

    baseline_start: int = -90
    baseline_end: int = 0
    followup_target: int = 91
    followup_start: int = 60
    followup_end: int = 150


@dataclass
class Cohort:
    """The analysable cohort.

    ``patients``: one row per patient with an index procedure (columns :data:`COHORT_COLUMNS`).
    ``problems``: every skipped or doubtful record met while building it.
    ``period_start`` / ``period_end``: earliest index day / latest date used (MeasureReport.period).
    ``flow``: patient counts for the flow diagram (``patients_in_data``, ``with_index_procedure``, ...).
    ``data_gaps``: contract inputs the source could not provide (e.g. a server that holds no AdverseEvent, an
    export whose error files report failures), one sentence each; when there are any, every result is
    marked incomplete (report, MeasureReports) and ``fhir-pts run`` exits 3 unless ``--allow-partial``.
    ``concept_maps``: the ConceptMaps whose site-local codes were read (provenance for the report and every
    MeasureReport).
    ``instruments``: the instruments it was scored with (their columns follow :data:`BASE_COLUMNS`).
    """

    patients: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    windows: TimePointWindows = field(default_factory=TimePointWindows)
    flow: dict[str, int] = field(default_factory=dict)
    data_gaps: list[str] = field(default_factory=list)
    concept_maps: tuple[MapSource, ...] = ()
    instruments: tuple[Instrument, ...] = BUILTIN_INSTRUMENTS
    #: Input file → fingerprint, when the engine hashed the inputs while reading them (the report uses them).
    input_fingerprints: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.patients)
