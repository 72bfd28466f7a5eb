"""Cohort facts: what the adapters extract from one FHIR resource.

Facts are small, frozen, engine-neutral records (plain values only: str, int, bool, ``datetime.date``), so the
same adapter functions can run inside another engine (e.g. Spark) and their output be collected here.
Every fact carries the ``resource_type`` / ``resource_id`` it came from and the ``patient_id`` it is about
(the id part of ``Patient/<id>``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from fhir_pts.problems import Problem

PatencyStatus = Literal["patent", "stenosis", "occluded"]
Outcome = Literal["success", "failure"]
#: An instrument id (``villalta``, ``civiq20``, or a plugin's, see :mod:`fhir_pts.instruments`).
Instrument = str


@dataclass(frozen=True, slots=True)
class PatientFact:
    """``Patient``: sex (FHIR ``gender``) and birth date (``None`` when absent or unparseable)."""

    resource_id: str
    gender: str | None
    birth_date: dt.date | None

    @property
    def patient_id(self) -> str:
        return self.resource_id


@dataclass(frozen=True, slots=True)
class ProcedureFact:
    """A completed ``Procedure`` that is a venous stenting and/or a reintervention (contract §1).

    ``is_stenting``: coded as venous stenting (can set day 0, or be a reintervention when later).
    ``is_reintervention_code``: coded as angioplasty / thrombectomy / thrombolysis / reintervention.
    ``segments``: stented segments recognised from ``bodySite`` (else the ICD-10-PCS body part), names from
    :data:`fhir_pts.codes.SEGMENTS`; empty when none recognisable. ``segments_source`` says which
    (``bodySite`` / ``icd10pcs``; ``None`` when not said, read as ``bodySite``): contract §1 takes the index
    procedure's ``bodySite`` segments and falls back to the index day's ICD-10-PCS body parts only when no
    index-day Procedure has a recognised ``bodySite``.
    ``outcome``: from ``Procedure.outcome``; ``None`` when absent or not recognised.
    ``major_complication``: a ``complication`` coded ``pts#major-complication``.
    ``reason``: ``reasonCode`` ``pts#stenosis`` / ``pts#occlusion``; ``reason_observation_ids``: ids of
    ``reasonReference`` Observations (to be looked up among patency findings).
    """

    resource_id: str
    patient_id: str
    day: dt.date
    is_stenting: bool
    is_reintervention_code: bool
    segments: frozenset[str]
    outcome: Outcome | None
    major_complication: bool
    reason: Literal["stenosis", "occlusion"] | None
    reason_observation_ids: tuple[str, ...] = ()
    resource_type: str = "Procedure"
    segments_source: Literal["bodySite", "icd10pcs"] | None = None


@dataclass(frozen=True, slots=True)
class PatencyFindingFact:
    """An ``Observation`` ``pts#stent-patency`` with an accepted status: a dated patency finding."""

    resource_id: str
    patient_id: str
    day: dt.date
    status: PatencyStatus
    method: Literal["ultrasound", "ct"] | None
    resource_type: str = "Observation"


@dataclass(frozen=True, slots=True)
class ScoreAssessmentFact:
    """One assessment of an instrument (Villalta, CIVIQ-20, a plugin's), from a ``QuestionnaireResponse`` or a
    total ``Observation``.

    For a questionnaire, ``items`` maps every linkId that had a valid answer to its value (items missing or
    out of range are absent and were reported); ``total`` is ``None``. For an Observation total, ``items`` is
    empty and ``total`` holds the value. ``flags``: the instrument's boolean items (Villalta ``ulcer``), empty
    for an Observation (not recorded).
    Scoring (sum, class, imputation) is done by :mod:`fhir_pts.instruments.scoring`, not here.
    """

    resource_id: str
    patient_id: str
    day: dt.date
    instrument: Instrument
    items: tuple[tuple[str, int], ...]
    total: int | float | None
    flags: tuple[tuple[str, bool], ...] = ()
    resource_type: str = "QuestionnaireResponse"


@dataclass(frozen=True, slots=True)
class AdverseEventFact:
    """A serious ``AdverseEvent`` whose ``suspectEntity.instance`` references Procedures (ids given)."""

    resource_id: str
    patient_id: str
    serious: bool
    procedure_ids: tuple[str, ...]
    resource_type: str = "AdverseEvent"


Fact = PatientFact | ProcedureFact | PatencyFindingFact | ScoreAssessmentFact | AdverseEventFact


@dataclass
class FactSet:
    """All facts of a run after duplicates were resolved (one winning version per resource type and id).

    ``problems`` holds the problems of the winning versions plus those met while reading (malformed lines,
    resources without an id, ...). Lists keep input order (file order, then line order). ``origins`` says
    where each resource that gave facts was read: ``(resource type, id) -> (file, line)`` (empty when the
    engine does not know), so problems found later (scoring, the cohort) can name the file and line too.
    """

    patients: dict[str, PatientFact]
    procedures: list[ProcedureFact]
    findings: list[PatencyFindingFact]
    assessments: list[ScoreAssessmentFact]
    adverse_events: list[AdverseEventFact]
    problems: list[Problem]
    resources_read: int = 0
    #: Input file → fingerprint, when the engine hashed the files while reading them
    #: (:mod:`fhir_pts.sources.fingerprint`); empty otherwise.
    input_fingerprints: dict[str, str] = field(default_factory=dict)
    origins: dict[tuple[str, str], tuple[str | None, int | None]] = field(default_factory=dict)
