"""fhir_pts.lazy: the names pipeline and sources.server re-export on first use all resolve (a misspelt home would
only fail when a face first asks for the name)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["fhir_pts.pipeline", "fhir_pts.sources.server"])
def test_every_public_name_resolves(module: str) -> None:
    package = importlib.import_module(module)
    assert package.__all__
    for name in package.__all__:
        assert getattr(package, name) is not None, name
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        package.not_a_name  # noqa: B018


def test_a_reexported_name_is_the_object_of_its_home() -> None:
    from fhir_pts import pipeline

    for name, home in pipeline.REEXPORTED.items():
        assert getattr(pipeline, name) is getattr(importlib.import_module(home), name), name
