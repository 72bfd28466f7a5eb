"""FHIRPath evaluation (fhirpathpy, optional) for the invariants and the input profiles' constraints."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Literal

Engine = Literal["auto", "fhirpath", "python"]


def fhirpath_available() -> bool:
    """Whether fhirpathpy is installed (the invariants are then evaluated as FHIRPath)."""
    try:
        import fhirpathpy  # noqa: F401
    except ImportError:
        return False
    return True


@cache
def _fhirpath(expression: str, resource_level: bool) -> Callable[..., list[Any]]:
    from fhirpathpy import compile as fhirpath_compile
    from fhirpathpy.models import models as fhirpath_models

    return fhirpath_compile(expression, fhirpath_models["r4"] if resource_level else None)
