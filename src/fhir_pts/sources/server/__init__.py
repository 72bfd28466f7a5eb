"""The hospital-server source: fetch the cohort's facts from a FHIR R4 server into NDJSON files.

Layers: :mod:`.http` (retrying session, clear errors), :mod:`.auth` (none, bearer, SMART Backend Services),
:mod:`.discovery` (``/metadata``, SMART configuration), :mod:`.config` (``ServerConfig`` from TOML, environment
and CLI), :mod:`.search` (FHIR search, following ``next`` links) and :mod:`.bulk` (Bulk Data ``$export``).
What is fetched is written to a raw directory the file pipeline reads (``fhir-pts run RAW_DIR``), so a run can
be repeated offline and nothing the server filtered is trusted.
"""
