"""Every code and canonical of the data contract (``shared spec §1``), in one place.

The project's canonical base is :data:`CANONICAL_BASE`; everything of ours hangs off it.
Codings are matched on ``(system, code)``; ``display`` is never used for matching.
"""

from __future__ import annotations

from typing import Final

#: Canonical base of the project's own FHIR artefacts (CodeSystem, Questionnaires, Measures, extensions).
CANONICAL_BASE: Final = "https://fhir-pts.org/fhir"

PTS_SYSTEM: Final = f"{CANONICAL_BASE}/CodeSystem/pts"
VILLALTA_QUESTIONNAIRE: Final = f"{CANONICAL_BASE}/Questionnaire/villalta"
CIVIQ20_QUESTIONNAIRE: Final = f"{CANONICAL_BASE}/Questionnaire/civiq-20"
MEASURE_BASE: Final = f"{CANONICAL_BASE}/Measure"
EXTENSION_BASE: Final = f"{CANONICAL_BASE}/StructureDefinition"

CPT: Final = "http://www.ama-assn.org/go/cpt"
ICD10PCS: Final = "http://www.cms.gov/Medicare/Coding/ICD10"
SNOMED: Final = "http://snomed.info/sct"
UCUM: Final = "http://unitsofmeasure.org"
AE_SERIOUSNESS: Final = "http://terminology.hl7.org/CodeSystem/adverse-event-seriousness"
MEASURE_POPULATION: Final = "http://terminology.hl7.org/CodeSystem/measure-population"
MEASURE_SCORING: Final = "http://terminology.hl7.org/CodeSystem/measure-scoring"

Coding = tuple[str, str]  # (system, code)

# --- index stenting -------------------------------------------------------------------------
#: ICD-10-PCS stenting codes (Dilation of lower vein, percutaneous, intraluminal device).
ICD10PCS_STENTING: Final = frozenset({"06703DZ", "067C3DZ", "067D3DZ", "067F3DZ", "067G3DZ", "067M3DZ", "067N3DZ"})
VENOUS_STENTING: Final[frozenset[Coding]] = frozenset(
    {(CPT, "37238"), (CPT, "37239"), (PTS_SYSTEM, "venous-stenting")} | {(ICD10PCS, c) for c in ICD10PCS_STENTING}
)

# --- stented segments -----------------------------------------------------------------------
#: Clinical segment names, ordered from the heart to the leg.
SEGMENTS: Final = (
    "inferior_vena_cava",
    "common_iliac_vein",
    "external_iliac_vein",
    "common_femoral_vein",
    "femoral_vein",
    "deep_femoral_vein",
)
#: Segments below the inguinal ligament.
BELOW_INGUINAL_SEGMENTS: Final = frozenset({"common_femoral_vein", "femoral_vein", "deep_femoral_vein"})
SNOMED_SEGMENT: Final[dict[str, str]] = {
    "64131007": "inferior_vena_cava",
    "46027005": "common_iliac_vein",
    "63507001": "external_iliac_vein",
    "397363009": "common_femoral_vein",
    "397364003": "femoral_vein",
    "23438002": "deep_femoral_vein",
}
#: Body-part character (4th) of ICD-10-PCS ``067?3DZ`` → segment (side ignored).
ICD10PCS_BODY_PART_SEGMENT: Final[dict[str, str]] = {
    "0": "inferior_vena_cava",
    "C": "common_iliac_vein",
    "D": "common_iliac_vein",
    "F": "external_iliac_vein",
    "G": "external_iliac_vein",
    "M": "femoral_vein",
    "N": "femoral_vein",
}

# --- technical success / complications -------------------------------------------------------
TECHNICAL_SUCCESS: Final[frozenset[Coding]] = frozenset({(SNOMED, "385669000"), (PTS_SYSTEM, "technical-success")})
TECHNICAL_FAILURE: Final[frozenset[Coding]] = frozenset(
    {(SNOMED, "385671000"), (SNOMED, "385670004"), (PTS_SYSTEM, "technical-failure")}
)
MAJOR_COMPLICATION: Final[Coding] = (PTS_SYSTEM, "major-complication")
AE_SERIOUS: Final[Coding] = (AE_SERIOUSNESS, "serious")

# --- reinterventions --------------------------------------------------------------------------
REINTERVENTION_CPT: Final = frozenset({"37248", "37249", "37187", "37188", "37212", "37214"})
REINTERVENTION: Final[frozenset[Coding]] = frozenset(
    {(CPT, c) for c in REINTERVENTION_CPT} | {(PTS_SYSTEM, "reintervention")}
)
#: ICD-10-PCS reintervention patterns: ``067?3ZZ`` (angioplasty) and ``06C?3ZZ`` (extirpation).
ICD10PCS_REINTERVENTION_PREFIXES: Final = (("067", "3ZZ"), ("06C", "3ZZ"))
REASON_STENOSIS: Final[Coding] = (PTS_SYSTEM, "stenosis")
REASON_OCCLUSION: Final[Coding] = (PTS_SYSTEM, "occlusion")

# --- patency findings -------------------------------------------------------------------------
STENT_PATENCY: Final[Coding] = (PTS_SYSTEM, "stent-patency")
PATENCY_VALUE: Final[dict[Coding, str]] = {
    (PTS_SYSTEM, "patent"): "patent",
    (PTS_SYSTEM, "stenosis"): "stenosis",
    (PTS_SYSTEM, "occluded"): "occluded",
}
IMAGING_METHOD: Final[dict[Coding, str]] = {
    (SNOMED, "16310003"): "ultrasound",
    (SNOMED, "77477000"): "ct",
}

# --- scores -----------------------------------------------------------------------------------
VILLALTA_TOTAL: Final[Coding] = (PTS_SYSTEM, "villalta-total")
CIVIQ20_TOTAL: Final[Coding] = (PTS_SYSTEM, "civiq20-total")
#: ``Observation.code`` values the contract reads (patency findings and score totals).
OBSERVATION_CODES: Final[frozenset[Coding]] = frozenset({STENT_PATENCY, VILLALTA_TOTAL, CIVIQ20_TOTAL})
VILLALTA_ITEMS: Final = (
    "pain",
    "cramps",
    "heaviness",
    "paresthesia",
    "pruritus",
    "pretibial-edema",
    "skin-induration",
    "hyperpigmentation",
    "redness",
    "venous-ectasia",
    "calf-compression-pain",
)
VILLALTA_ULCER_ITEM: Final = "ulcer"
CIVIQ20_ITEMS: Final = tuple(f"q{i}" for i in range(1, 21))
#: CIVIQ-20 dimensions (contract §2), kept as data.
CIVIQ20_DIMENSIONS: Final[dict[str, tuple[str, ...]]] = {
    "pain": ("q1", "q2", "q3", "q4"),
    "physical": ("q5", "q6", "q7", "q9"),
    "social": ("q8", "q10", "q11"),
    "psychological": tuple(f"q{i}" for i in range(12, 21)),
}

# --- statuses ---------------------------------------------------------------------------------
PROCEDURE_STATUSES: Final = frozenset({"completed"})
OBSERVATION_STATUSES: Final = frozenset({"final", "amended", "corrected"})
QUESTIONNAIRE_RESPONSE_STATUSES: Final = frozenset({"completed", "amended"})

#: Days per month used for every months figure (365.25 / 12).
DAYS_PER_MONTH: Final = 30.4375

#: Measure ids of the contract (§4), in the order of its table.
CONTRACT_MEASURES: Final = (
    "cohort",
    "technical-success",
    "major-complications",
    "imaging-follow-up",
    "primary-patency",
    "primary-assisted-patency",
    "secondary-patency",
    "villalta",
    "civiq20",
    "villalta-gain-regression",
    "civiq20-gain-regression",
)
