"""``fhir_pts.validate``: the name the CLI, the tests and ``docs/validate.md`` use for :mod:`fhir_pts.validation`
(the same public names, listed in its ``__all__``)."""

from __future__ import annotations

from fhir_pts.validation import *  # noqa: F403
from fhir_pts.validation import __all__ as __all__
