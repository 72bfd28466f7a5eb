"""De-identification of a run's outputs (``fhir-pts run --deidentify``): one transformation of the cohort
before anything is written, so that ``cohort.csv``, ``problems.csv`` and ``report.html`` all show the same
pseudonyms and none shows a birth date.

- Every id becomes a keyed pseudonym: patients ``P-`` + 12 hex digits, other resources ``R-`` + 12 hex digits
  (HMAC-SHA-256). The key comes from ``FHIR_PTS_PSEUDONYM_KEY`` (any text; the same key gives the same
  pseudonyms in every run, so rows can be followed over re-runs) or is drawn at random for the run (then the
  pseudonyms of two runs differ). It is never written anywhere: without it a pseudonym cannot be traced back by
  hashing candidate ids.
- ``birth_date`` keeps its year only (``1970``); ``age`` (whole years at day 0) stays.
- In ``problems.csv``, ids in ``patient_id`` / ``resource_id``, the ids quoted in ``reason`` and ``file``, and
  every full date quoted in ``reason`` (a birth date, a date of care) are replaced (dates by ``YYYY-xx-xx``).

Aggregates (``results.csv``, ``measure-reports.json``) hold no ids and are unchanged. Index dates stay (the
analyses' day 0); the resource ids of cohort.csv (``index_procedure_ids``, ``*_resource_id``) are pseudonymised.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Mapping
from typing import Any

import pandas as pd

from fhir_pts.cohort.model import Cohort
from fhir_pts.problems import Problem

__all__ = ["KEY_ENV", "Deidentifier", "deidentify_cohort", "is_pseudonym"]

#: Environment variable holding the pseudonym key (else a random key per run).
KEY_ENV = "FHIR_PTS_PSEUDONYM_KEY"
_PSEUDONYM = re.compile(r"[PR]-[0-9a-f]{12}")
_TOKEN = re.compile(r"[A-Za-z0-9.\-]+")
_FULL_DATE = re.compile(r"\b(\d{4})-\d{2}-\d{2}(?:T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)?")


def is_pseudonym(text: str) -> bool:
    """True for a pseudonym this module makes (``P-`` / ``R-`` and 12 hex digits)."""
    return _PSEUDONYM.fullmatch(text) is not None


@dataclasses.dataclass(frozen=True)
class Deidentifier:
    """Pseudonyms under one key; ``patients`` are the ids (patient ids) to find in free text."""

    key: bytes = dataclasses.field(repr=False)
    patients: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()

    def for_cohort(self, cohort: Cohort) -> Deidentifier:
        """This key, knowing the ids of ``cohort`` (its patients, resources and problems) for free text."""
        frame = cohort.patients
        patients = {str(v) for v in frame["patient_id"].dropna()} if "patient_id" in frame else set()
        patients |= {p.patient_id for p in cohort.problems if p.patient_id}
        patients |= {p.resource_id for p in cohort.problems if p.resource_type == "Patient" and p.resource_id}
        resources = {p.resource_id for p in cohort.problems if p.resource_id and p.resource_type != "Patient"}
        for column in _resource_columns(frame):
            for value in frame[column].dropna():
                resources.update(str(value).split(";"))
        return dataclasses.replace(self, patients=frozenset(patients), resources=frozenset(resources - patients))

    @classmethod
    def for_run(cls, environ: Mapping[str, str] | None = None) -> Deidentifier:
        """The key of ``FHIR_PTS_PSEUDONYM_KEY``, else a random one."""
        environ = os.environ if environ is None else environ
        text = environ.get(KEY_ENV, "")
        return cls(text.encode("utf-8") if text else secrets.token_bytes(32))

    def patient(self, value: Any) -> Any:
        """The pseudonym of a patient id (missing values and pseudonyms unchanged)."""
        return self._pseudonym(value, "P-")

    def resource(self, value: Any) -> Any:
        """The pseudonym of a resource id; ``a;b`` lists are pseudonymised item by item."""
        if isinstance(value, str) and ";" in value:
            return ";".join(self._pseudonym(v, "R-") for v in value.split(";"))
        return self._pseudonym(value, "R-")

    def _pseudonym(self, value: Any, prefix: str) -> Any:
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return value
        text = str(value)
        if not text or is_pseudonym(text):
            return text
        return prefix + hmac.new(self.key, text.encode("utf-8"), hashlib.sha256).hexdigest()[:12]

    def text(self, value: str | None) -> str | None:
        """Free text with known ids replaced by their pseudonyms and full dates reduced to their year."""
        if not value:
            return value

        def replace(match: re.Match[str]) -> str:
            parts = match.group(0).split(".")
            out: list[str] = []
            i = 0
            while i < len(parts):  # ids may contain dots: the longest run of parts that is an id, first
                for j in range(len(parts), i, -1):
                    candidate = ".".join(parts[i:j])
                    if candidate in self.patients:
                        out.append(self.patient(candidate))
                        break
                    if candidate in self.resources:
                        out.append(self.resource(candidate))
                        break
                else:
                    out.append(parts[i])
                    j = i + 1
                i = j
            return ".".join(out)

        return _TOKEN.sub(replace, _FULL_DATE.sub(r"\1-xx-xx", value))

    def problem(self, problem: Problem) -> Problem:
        resource = self.patient(problem.resource_id) if problem.resource_type == "Patient" else (
            self.resource(problem.resource_id)
        )  # fmt: skip
        return dataclasses.replace(
            problem,
            resource_id=resource,
            patient_id=self.patient(problem.patient_id),
            file=self.text(problem.file),
            reason=self.text(problem.reason) or "",
        )


_RESOURCE_COLUMNS = ("index_procedure_ids",)


def _resource_columns(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame.columns if c in _RESOURCE_COLUMNS or str(c).endswith("_resource_id")]


def deidentify_cohort(cohort: Cohort, deidentifier: Deidentifier | None = None) -> Cohort:
    """A de-identified copy of ``cohort`` (see the module); the given cohort is not changed. ``deidentifier``
    gives the key (default: :meth:`Deidentifier.for_run`); the ids it knows are completed with the cohort's."""
    base = deidentifier if deidentifier is not None else Deidentifier.for_run()
    known = base.for_cohort(cohort)
    names = dataclasses.replace(
        known, patients=known.patients | base.patients, resources=(known.resources | base.resources) - base.patients
    )
    frame = cohort.patients.copy()
    resource_columns = _resource_columns(frame)
    if "patient_id" in frame:
        frame["patient_id"] = frame["patient_id"].map(names.patient).astype(frame["patient_id"].dtype)
    for column in resource_columns:
        frame[column] = frame[column].map(names.resource).astype(frame[column].dtype)
    if "birth_date" in frame:
        frame["birth_date"] = frame["birth_date"].str.slice(0, 4)
    return dataclasses.replace(cohort, patients=frame, problems=[names.problem(p) for p in cohort.problems])
