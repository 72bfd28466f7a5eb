"""Errors shared by every layer (kept here, below sources and adapters, so that both can raise them)."""

from __future__ import annotations


class InputError(Exception):
    """An INPUT that cannot be used at all: missing, unreadable, or not FHIR JSON / NDJSON; an unusable ConceptMap.

    The message is one line naming the path (or canonical) and what was expected. The CLI exits with status 2.
    """
