"""fhir_pts.plugin: the plugin API in one import, each name the object of its home module."""

from __future__ import annotations

import importlib

import fhir_pts.plugin as plugin_api

HOMES = {
    "AnalysisInfo": "fhir_pts.analyses.api",
    "AnalysisResult": "fhir_pts.analyses.api",
    "CurvePoint": "fhir_pts.analyses.api",
    "Scoring": "fhir_pts.analyses.api",
    "Statistic": "fhir_pts.analyses.api",
    "Cohort": "fhir_pts.cohort.model",
    "TimePointWindows": "fhir_pts.cohort.model",
    "hookimpl": "fhir_pts.hookspecs",
    "Answers": "fhir_pts.instruments.model",
    "ExtraColumn": "fhir_pts.instruments.model",
    "Instrument": "fhir_pts.instruments.model",
    "Scored": "fhir_pts.instruments.model",
    "SummedScore": "fhir_pts.instruments.model",
    "Unscorable": "fhir_pts.instruments.model",
    "answer_values_of": "fhir_pts.instruments.model",
}


def test_every_name_is_its_home_modules_object() -> None:
    assert set(plugin_api.__all__) == {*HOMES, "stats"}
    for name, home in HOMES.items():
        assert getattr(plugin_api, name) is getattr(importlib.import_module(home), name), name
    assert plugin_api.stats is importlib.import_module("fhir_pts.analyses.stats")


def test_the_marker_is_the_one_the_plugin_manager_collects() -> None:
    import fhir_pts

    assert plugin_api.hookimpl is fhir_pts.hookimpl
    assert plugin_api.hookimpl.project_name == "fhir_pts"
