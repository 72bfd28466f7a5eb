"""fhir-pts plugin: the revised Venous Clinical Severity Score (VCSS, 2010) as a clinical instrument."""

from fhir_pts_vcss.plugin import VCSS, VCSS_ITEMS, score_vcss

__all__ = ["VCSS", "VCSS_ITEMS", "score_vcss"]
