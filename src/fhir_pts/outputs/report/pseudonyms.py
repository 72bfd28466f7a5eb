"""Patient ids in the report: shown as FHIR ids, or as salted short SHA-256 pseudonyms with ``--hash-patient-ids``.

The salt is derived from the input fingerprints, so pseudonyms are stable for the same data and differ
between data sets. :meth:`Pseudonyms.scrub` also replaces ids inside free text (problem reasons, analysis
errors, file paths).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

#: A FHIR id ([A-Za-z0-9-.]{1,64}) as a token of free text; looked up in the set of the cohort's patient ids.
_ID_TOKEN = re.compile(r"[A-Za-z0-9.\-]+")
#: The pseudonyms of fhir_pts.outputs.deidentify (never hashed again).
_PSEUDONYM = re.compile(r"[PR]-[0-9a-f]{12}")


def pseudonymise(patient_id: str, salt: str) -> str:
    """A short salted SHA-256 pseudonym of ``patient_id`` (``P-`` + 12 hex digits)."""
    return "P-" + hashlib.sha256(f"{salt}\x00{patient_id}".encode()).hexdigest()[:12]


def salt_from_fingerprints(digests: Iterable[str]) -> str:
    """The report's salt: SHA-256 of the sorted input digests (``fhir-pts`` when there are none)."""
    basis = "|".join(sorted(digests)) or "fhir-pts"
    return hashlib.sha256(f"fhir-pts-report\x00{basis}".encode()).hexdigest()


@dataclass(frozen=True)
class Pseudonyms:
    """How patient ids appear in one report: ``enabled`` hashes them with ``salt``; ``ids`` are the known ids."""

    salt: str
    ids: frozenset[str]
    enabled: bool

    def pid(self, patient_id: object) -> str:
        """The id as shown: the pseudonym when hashing is on, else the FHIR id (an id already pseudonymised by
        :mod:`fhir_pts.outputs.deidentify` is shown as it is, so the report and cohort.csv agree)."""
        text = str(patient_id)
        return pseudonymise(text, self.salt) if self.enabled and not _PSEUDONYM.fullmatch(text) else text

    def scrub(self, text: str) -> str:
        """Replace patient ids in free text (problem reasons, errors, paths) by pseudonyms when hashing is on."""
        if not self.enabled or not self.ids:
            return text

        def replace(match: re.Match[str]) -> str:
            # ids may contain dots, and so do file names and sentences: try every run of dot-separated parts,
            # longest first ("pat-1.ndjson" -> "pat-1"; "a.b" when "a.b" is an id)
            parts = match.group(0).split(".")
            out: list[str] = []
            i = 0
            while i < len(parts):
                for j in range(len(parts), i, -1):
                    candidate = ".".join(parts[i:j])
                    if candidate in self.ids and not _PSEUDONYM.fullmatch(candidate):
                        out.append(pseudonymise(candidate, self.salt))
                        i = j
                        break
                else:
                    out.append(parts[i])
                    i += 1
            return ".".join(out)

        return _ID_TOKEN.sub(replace, text)
