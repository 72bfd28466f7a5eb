"""Clinical instruments (scored questionnaires): the declaration a plugin gives and the contract's two.

:mod:`fhir_pts.instruments.model` holds the declaration (:class:`Instrument`) and generic scoring,
:mod:`fhir_pts.instruments.scoring` the Villalta and CIVIQ-20 scoring rules, :mod:`fhir_pts.instruments.builtin`
their declarations (registered through the ``fhir_pts_instruments`` hook like any plugin's).
"""

from fhir_pts.instruments.model import (
    Answers,
    ExtraColumn,
    Instrument,
    InstrumentIndex,
    Scored,
    SummedScore,
    Unscorable,
    answer_values_of,
)

__all__ = [
    "Answers",
    "ExtraColumn",
    "Instrument",
    "InstrumentIndex",
    "Scored",
    "SummedScore",
    "Unscorable",
    "answer_values_of",
]
