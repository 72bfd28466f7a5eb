"""Site-local codes mapped to the contract's codes through FHIR ``ConceptMap`` files (``--concept-map``).

The translator lives in :mod:`fhir_pts.vocabulary` (below sources, adapters and engines, which all use it);
it is re-exported here for the adapters' callers.
"""

from __future__ import annotations

from fhir_pts.vocabulary import NON_MAPPING, ConceptMapTranslator

__all__ = ["NON_MAPPING", "ConceptMapTranslator"]
