"""Site-local codes for a synthetic cohort (``fhir-pts synth --site-codes FILE``), and the ConceptMap that maps them.

A hospital's server holds its own codes. :class:`SiteCoder` rewrites about half of the resources that carry a
contract code (chosen by a hash of the resource id, so it is reproducible and the same whatever the output
format): every contract coding of the elements the contract reads — ``Procedure.code``, ``bodySite``,
``outcome``, ``complication``, ``reasonCode``, ``Observation.code``, ``valueCodeableConcept``, ``method``,
``AdverseEvent.seriousness`` — is *replaced* by a local coding of :data:`SITE_SYSTEM` (code
``<prefix>-<contract code>``). :meth:`SiteCoder.concept_map` is the FHIR R4 ConceptMap mapping each local code
used back to its contract code, so the site-coded cohort read with the ConceptMap gives exactly the numbers of
the cohort as drawn.

Some unrelated procedures get a local code too, mapped with equivalence ``disjoint`` (which must never match,
contract §1) to venous stenting: a reader that ignored equivalences would wrongly stent those patients.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from fhir_pts import codes

#: The local code system of the synthetic site (a hospital's own procedure / finding codes).
SITE_SYSTEM = "https://hospital.example.org/fhir/CodeSystem/site-codes"
SITE_CONCEPT_MAP_URL = "https://hospital.example.org/fhir/ConceptMap/site-codes-to-fhir-pts"
#: Prefix of the local code per contract code system.
_PREFIX: dict[str, str] = {
    codes.CPT: "CPT",
    codes.ICD10PCS: "PCS",
    codes.SNOMED: "SCT",
    codes.PTS_SYSTEM: "PTS",
    codes.AE_SERIOUSNESS: "AES",
}
#: Elements whose codings the contract reads, per resource type.
_ELEMENTS: dict[str, tuple[str, ...]] = {
    "Procedure": ("code", "bodySite", "outcome", "complication", "reasonCode"),
    "Observation": ("code", "valueCodeableConcept", "method"),
    "AdverseEvent": ("seriousness",),
}
#: Unrelated procedures (CPT duplex scans, venipuncture) that get a local code mapped ``disjoint``.
_DISJOINT_NOISE: frozenset[tuple[str, str]] = frozenset({(codes.CPT, "93970"), (codes.CPT, "93971"),
                                                         (codes.CPT, "36415")})  # fmt: skip
_DISJOINT_TARGET = codes.PTS_SYSTEM, "venous-stenting"


def _is_contract_coding(system: str, code: str) -> bool:
    """Whether ``(system, code)`` is a code the contract reads (so a local code for it must be mapped)."""
    if system == codes.PTS_SYSTEM or system == codes.AE_SERIOUSNESS:
        return True
    if system == codes.CPT:
        return code in {"37238", "37239"} | codes.REINTERVENTION_CPT
    if system == codes.ICD10PCS:
        return len(code) == 7 and code.startswith(("067", "06C"))
    if system == codes.SNOMED:
        known = set(codes.SNOMED_SEGMENT) | {c for _, c in codes.TECHNICAL_SUCCESS | codes.TECHNICAL_FAILURE}
        return code in known | {c for (_, c) in codes.IMAGING_METHOD}
    return False


class SiteCoder:
    """Rewrites resources with site-local codes and remembers what it mapped (for :meth:`concept_map`).

    ``share``: the fraction of resources (by a hash of their id) that are rewritten.
    """

    def __init__(self, share: float = 0.5) -> None:
        self.share = share
        self.mapped: dict[str, tuple[str, str]] = {}  # local code -> contract coding
        self.disjoint: dict[str, tuple[str, str]] = {}  # local code of an unrelated procedure -> its own coding

    def _chosen(self, resource: dict[str, Any]) -> bool:
        key = f"{resource.get('resourceType')}/{resource.get('id')}".encode()
        return zlib.crc32(key) % 1000 < self.share * 1000

    def _local(self, coding: dict[str, Any]) -> dict[str, Any] | None:
        system, code = coding.get("system"), coding.get("code")
        if not isinstance(system, str) or not isinstance(code, str):
            return None
        local = f"{_PREFIX.get(system, 'X')}-{code}"
        if _is_contract_coding(system, code):
            self.mapped[local] = (system, code)
        elif (system, code) in _DISJOINT_NOISE:
            self.disjoint[local] = (system, code)
        else:
            return None
        out = {"system": SITE_SYSTEM, "code": local}
        if "display" in coding:
            out["display"] = coding["display"]
        return out

    def _rewrite(self, value: Any) -> Any:
        """A CodeableConcept (or a list of them) with its rewritable codings replaced by local ones."""
        if isinstance(value, list):
            return [self._rewrite(item) for item in value]
        if not isinstance(value, dict) or not isinstance(value.get("coding"), list):
            return value
        codings = [self._local(c) or c if isinstance(c, dict) else c for c in value["coding"]]
        return {**value, "coding": codings}

    def recode(self, resource: dict[str, Any]) -> dict[str, Any]:
        """``resource`` with site-local codes (a new dict), or the resource itself when it is not chosen."""
        elements = _ELEMENTS.get(str(resource.get("resourceType")))
        if elements is None or not self._chosen(resource):
            return resource
        out = dict(resource)
        for element in elements:
            if element in out:
                out[element] = self._rewrite(out[element])
        return out

    def recode_all(self, resources: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        """:meth:`recode` of every resource, streamed."""
        for resource in resources:
            yield self.recode(resource)

    def concept_map(self) -> dict[str, Any]:
        """The FHIR R4 ConceptMap of every local code used (one group per target system), deterministic."""
        groups: dict[str, list[dict[str, Any]]] = {}
        for local, (system, code) in sorted(self.mapped.items()):
            groups.setdefault(system, []).append(
                {"code": local, "target": [{"code": code, "equivalence": "equivalent"}]}
            )
        for local in sorted(self.disjoint):
            groups.setdefault(_DISJOINT_TARGET[0], []).append(
                {"code": local, "target": [{"code": _DISJOINT_TARGET[1], "equivalence": "disjoint",
                                            "comment": "a duplex scan or venipuncture is not a stenting"}]}
            )  # fmt: skip
        return {
            "resourceType": "ConceptMap",
            "id": "site-codes-to-fhir-pts",
            "url": SITE_CONCEPT_MAP_URL,
            "version": "1",
            "name": "SiteCodesToFhirPts",
            "status": "active",
            "description": "Synthetic site-local codes (fhir-pts synth --site-codes) mapped to the fhir-pts contract",
            "group": [
                {"source": SITE_SYSTEM, "target": target, "element": elements}
                for target, elements in sorted(groups.items())
            ],
        }
