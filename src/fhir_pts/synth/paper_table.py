# ruff: noqa: E501
"""The paper cohort: 42 constructed patients, frozen (no randomness at run time).

One :class:`PaperPatient` per patient of the abstract (see ``docs/synthetic-cohort.md``). The score and covariate
columns (Villalta, CIVIQ-20, age, number of stented segments) come from
:mod:`fhir_pts.synth.paper_construction`; follow-up days, patency histories, dates, sexes and encodings were
assigned once, deterministically, and written down here. :mod:`fhir_pts.synth.paper` turns each row into FHIR
resources.
"""

from __future__ import annotations

from typing import Final, Literal, NamedTuple

PatencyHistory = Literal["patent", "stenosis", "occlusion-reopened", "occlusion-lost", "technical-failure"]
StentingEncoding = Literal["cpt-bodysite", "cpt-pair", "icd10pcs", "pts-bodysite"]


class PaperPatient(NamedTuple):
    """One constructed patient.

    ``segments``: stented segments, space-separated abbreviations (:data:`SEGMENT_ABBREVIATIONS`), on the ``side`` leg;
    :meth:`segment_names` gives the names of :data:`fhir_pts.codes.SEGMENTS`.
    ``encoding``: how the index stenting is coded — ``cpt-bodysite`` (one CPT 37238 Procedure with SNOMED
    bodySites), ``cpt-pair`` (CPT 37238 + 37239 Procedures, bodySites split between them), ``icd10pcs`` (one
    ICD-10-PCS ``067?3DZ`` Procedure per segment, no bodySite), ``pts-bodysite`` (``pts#venous-stenting`` with
    bodySites).
    ``patency``: the event history over imaging follow-up (see :mod:`fhir_pts.synth.paper`).
    ``follow_up_days``: day of the last patency finding (days from the index date, day 0).
    Scores: Villalta totals (0-33) and CIVIQ-20 raw sums (20-100) at baseline (``baseline_day``, in [-90, 0])
    and at 3 months (``followup_day``, in [60, 150]); ``baseline_ulcer`` is the Villalta ulcer flag at baseline.
    """

    patient_id: str
    gender: Literal["female", "male"]
    birth_date: str
    index_date: str
    segments: str
    side: Literal["left", "right"]
    encoding: StentingEncoding
    patency: PatencyHistory
    follow_up_days: int
    baseline_villalta: int
    followup_villalta: int
    baseline_civiq20: int
    followup_civiq20: int
    baseline_day: int
    followup_day: int
    baseline_ulcer: bool

    def segment_names(self) -> tuple[str, ...]:
        """The stented segments as names of :data:`fhir_pts.codes.SEGMENTS`, heart to leg."""
        return tuple(SEGMENT_ABBREVIATIONS[a] for a in self.segments.split())


#: Short names of the segments used in the table below.
SEGMENT_ABBREVIATIONS: Final[dict[str, str]] = {
    "IVC": "inferior_vena_cava",
    "CIV": "common_iliac_vein",
    "EIV": "external_iliac_vein",
    "CFV": "common_femoral_vein",
    "FV": "femoral_vein",
    "DFV": "deep_femoral_vein",
}

P = PaperPatient
# fmt: off
PAPER_PATIENTS: Final[tuple[PaperPatient, ...]] = (
    P("pts-paper-01", "female", "1967-01-01", "2012-03-13", "CIV EIV CFV", "left", "cpt-bodysite", "patent", 266, 7, 4, 71, 66, -1, 79, False),
    P("pts-paper-02", "male", "1968-06-12", "2015-09-01", "IVC CIV EIV FV", "left", "icd10pcs", "patent", 167, 8, 5, 30, 28, -8, 84, False),
    P("pts-paper-03", "female", "1932-11-23", "2013-07-02", "CIV EIV CFV FV", "right", "cpt-pair", "patent", 141, 8, 1, 26, 21, -15, 89, False),
    P("pts-paper-04", "male", "1974-04-06", "2017-01-01", "EIV CFV", "left", "pts-bodysite", "technical-failure", 92, 15, 15, 39, 36, 0, 94, False),
    P("pts-paper-05", "female", "1985-09-17", "2014-11-03", "CIV EIV", "left", "cpt-bodysite", "stenosis", 640, 14, 7, 86, 80, -29, 99, False),
    P("pts-paper-06", "female", "1974-02-28", "2012-06-18", "IVC CIV EIV", "left", "icd10pcs", "patent", 1652, 10, 4, 39, 24, -36, 79, False),
    P("pts-paper-07", "female", "1929-07-11", "2016-03-05", "CIV EIV", "left", "cpt-pair", "occlusion-reopened", 364, 25, 0, 74, 45, -3, 84, True),
    P("pts-paper-08", "male", "1990-12-22", "2013-08-02", "IVC CIV EIV", "right", "pts-bodysite", "patent", 1270, 12, 9, 35, 24, -10, 89, False),
    P("pts-paper-09", "male", "1977-05-05", "2017-03-17", "CIV EIV", "left", "cpt-bodysite", "occlusion-lost", 910, 10, 6, 82, 55, -17, 94, False),
    P("pts-paper-10", "female", "1962-10-16", "2015-01-22", "IVC CIV EIV", "left", "icd10pcs", "patent", 981, 16, 8, 37, 24, 0, 99, False),
    P("pts-paper-11", "female", "1956-03-27", "2013-03-09", "CIV EIV CFV FV", "left", "cpt-pair", "patent", 733, 5, 2, 38, 32, -31, 79, False),
    P("pts-paper-12", "female", "1987-08-10", "2015-03-23", "IVC CIV EIV", "left", "pts-bodysite", "patent", 1461, 11, 6, 45, 23, -38, 84, False),
    P("pts-paper-13", "male", "1963-01-21", "2014-07-10", "CIV", "right", "cpt-bodysite", "patent", 702, 26, 13, 72, 20, -5, 89, True),
    P("pts-paper-14", "male", "1947-06-04", "2012-05-11", "IVC CIV EIV CFV FV", "left", "cpt-bodysite", "patent", 201, 6, 2, 28, 25, -12, 94, False),
    P("pts-paper-15", "female", "1979-11-15", "2015-11-11", "CIV EIV", "left", "cpt-pair", "patent", 281, 19, 3, 92, 57, -19, 99, False),
    P("pts-paper-16", "female", "1965-04-26", "2013-07-04", "EIV CFV", "left", "pts-bodysite", "stenosis", 1047, 27, 2, 84, 50, 0, 79, False),
    P("pts-paper-17", "female", "1992-09-09", "2017-03-14", "CIV EIV CFV", "left", "cpt-bodysite", "patent", 497, 13, 8, 47, 22, -33, 84, False),
    P("pts-paper-18", "female", "1955-02-20", "2013-05-05", "CIV EIV", "right", "icd10pcs", "patent", 2012, 18, 6, 89, 60, -40, 89, False),
    P("pts-paper-19", "female", "1957-07-03", "2012-11-13", "CIV EIV", "left", "cpt-pair", "occlusion-lost", 226, 16, 9, 53, 21, -7, 94, False),
    P("pts-paper-20", "female", "1982-12-14", "2016-05-16", "EIV", "left", "pts-bodysite", "patent", 118, 23, 11, 59, 22, -14, 99, False),
    P("pts-paper-21", "female", "1972-05-25", "2014-03-17", "CIV EIV CFV", "left", "cpt-bodysite", "patent", 530, 14, 10, 39, 24, -21, 79, False),
    P("pts-paper-22", "female", "1977-10-08", "2017-10-09", "CIV EIV", "left", "icd10pcs", "patent", 371, 18, 11, 56, 30, 0, 84, False),
    P("pts-paper-23", "male", "1971-03-19", "2015-02-16", "CIV EIV", "right", "cpt-pair", "patent", 1047, 6, 2, 72, 63, -35, 89, False),
    P("pts-paper-24", "female", "1944-08-02", "2013-03-12", "IVC CIV EIV", "left", "pts-bodysite", "patent", 1110, 10, 4, 57, 38, -2, 94, False),
    P("pts-paper-25", "female", "1944-01-13", "2016-10-07", "CIV EIV CFV FV", "left", "cpt-bodysite", "patent", 842, 11, 1, 33, 34, -9, 99, False),
    P("pts-paper-26", "female", "1955-06-24", "2014-09-20", "IVC CIV EIV", "left", "icd10pcs", "occlusion-reopened", 781, 13, 1, 61, 48, -16, 79, False),
    P("pts-paper-27", "female", "1936-11-07", "2012-07-21", "CIV EIV", "left", "cpt-pair", "patent", 248, 29, 7, 80, 23, -23, 84, True),
    P("pts-paper-28", "male", "1985-04-18", "2016-01-21", "IVC CIV EIV", "right", "pts-bodysite", "patent", 462, 7, 0, 78, 72, 0, 89, False),
    P("pts-paper-29", "male", "1991-09-01", "2013-11-22", "CIV", "left", "cpt-bodysite", "patent", 551, 21, 19, 51, 30, -37, 94, False),
    P("pts-paper-30", "female", "1953-02-12", "2014-12-12", "IVC CIV EIV", "left", "icd10pcs", "patent", 1760, 12, 1, 57, 50, -4, 99, False),
    P("pts-paper-31", "female", "1959-07-23", "2014-05-17", "CIV EIV", "left", "cpt-pair", "occlusion-lost", 1368, 15, 3, 95, 76, -11, 79, False),
    P("pts-paper-32", "male", "1948-12-06", "2012-09-27", "IVC CIV EIV", "left", "pts-bodysite", "stenosis", 1540, 14, 0, 49, 42, -18, 84, False),
    P("pts-paper-33", "female", "1979-05-17", "2016-07-26", "CIV EIV", "right", "cpt-bodysite", "occlusion-lost", 551, 20, 12, 42, 20, -25, 89, False),
    P("pts-paper-34", "female", "1984-10-28", "2013-03-26", "CIV EIV", "left", "icd10pcs", "occlusion-reopened", 1873, 20, 17, 55, 26, 0, 94, False),
    P("pts-paper-35", "female", "1955-03-11", "2012-03-28", "CIV EIV CFV", "left", "cpt-pair", "patent", 425, 17, 4, 68, 52, -39, 99, False),
    P("pts-paper-36", "male", "1969-08-22", "2015-09-28", "IVC CIV EIV FV", "left", "pts-bodysite", "patent", 398, 9, 5, 36, 30, -6, 79, False),
    P("pts-paper-37", "male", "1982-01-05", "2013-04-21", "CIV", "left", "cpt-bodysite", "occlusion-reopened", 1189, 22, 22, 66, 28, -13, 84, True),
    P("pts-paper-38", "female", "1993-06-16", "2017-01-29", "CIV EIV", "right", "icd10pcs", "patent", 322, 13, 8, 32, 26, -20, 89, False),
    P("pts-paper-39", "male", "1988-11-27", "2014-11-30", "CIV", "left", "cpt-pair", "patent", 589, 24, 14, 70, 29, -27, 94, True),
    P("pts-paper-40", "female", "1968-04-10", "2012-09-30", "IVC CIV EIV", "left", "pts-bodysite", "stenosis", 295, 9, 3, 76, 69, 0, 99, False),
    P("pts-paper-41", "male", "1949-09-21", "2016-04-02", "CIV EIV", "left", "cpt-bodysite", "patent", 183, 19, 2, 62, 27, -1, 79, False),
    P("pts-paper-42", "male", "1943-02-04", "2014-02-01", "IVC CIV EIV", "left", "icd10pcs", "patent", 295, 17, 5, 64, 40, -8, 84, False),
)
# fmt: on
