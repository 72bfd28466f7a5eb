"""The run, end to end — inputs → facts → cohort → analyses → output files — and the one way in for the faces.

Each step is a small function so that the CLI, an embedding host and the server mode compose the same parts:

>>> plan = plan_analyses(["cohort"])                                            # doctest: +SKIP
>>> cohort = load_cohort(["bundle.json"], instruments=plan.instruments)        # doctest: +SKIP
>>> outcomes = analyse(cohort, plan=plan)                                       # doctest: +SKIP
>>> written = write_run(Path("out"), cohort, outcomes)                         # doctest: +SKIP
>>> write_back(server_config, written.bundle)                                  # doctest: +SKIP

The steps live in four modules, in the order of a run, all re-exported here: :mod:`~fhir_pts.pipeline.analysing`
(the plugins asked once: :class:`AnalysisPlan`; :func:`analyse`), :mod:`~fhir_pts.pipeline.reading` (inputs →
cohort), :mod:`~fhir_pts.pipeline.server` (a hospital FHIR server: connect, fetch, write back) and
:mod:`~fhir_pts.pipeline.writing` (the output files and the report).

The faces (:mod:`fhir_pts.cli`, :mod:`fhir_pts.host`, :mod:`fhir_pts.serve`) import this package — never its
modules — and nothing below it but the few shared modules ``tests/test_architecture.py`` lists
(``docs/architecture.md``): what else they need from the layers below (the errors to catch, ``ServerConfig``,
``staged_output``, the pooling and validation operations, ...) is re-exported here (:data:`REEXPORTED`, imported
on first use so that building the command-line parser stays fast). Nothing here imports pandas or the
statistics stack at import time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_pts.lazy import lazy_getattr
from fhir_pts.pipeline.analysing import (
    AnalysisPlan,
    analyse,
    installed_instruments,
    list_analyses,
    plan_analyses,
    plugin_instruments,
)
from fhir_pts.pipeline.reading import (
    add_source_findings,
    cohort_from_resources,
    estimate_inputs,
    expand_inputs,
    file_vocabulary,
    load_cohort,
    restrict_to_index_period,
    warm_up,
)
from fhir_pts.pipeline.server import fetch_raw, open_server, write_back
from fhir_pts.pipeline.writing import RunFiles, in_memory_outputs, packaged_measure, write_data_files, write_run

if TYPE_CHECKING:
    from fhir_pts.adapters.common import FHIR_DATETIME
    from fhir_pts.engines import make_engine
    from fhir_pts.engines.base import cohort_from_facts
    from fhir_pts.errors import InputError
    from fhir_pts.outputs.abstract_comparison import comparison_rows, format_comparison, write_comparison_csv
    from fhir_pts.outputs.aggregates import SharingPolicy
    from fhir_pts.outputs.pooled import pooled_bundle
    from fhir_pts.outputs.staging import OutputFolderError, staged_output
    from fhir_pts.outputs.suppression import suppress_report
    from fhir_pts.plugin_manager import PluginError, UnknownAnalysisError, get_plugin_manager
    from fhir_pts.pool import PoolingError, pool_paths, pool_sites, read_site, site_from_bundle, write_pooled
    from fhir_pts.sources.private_files import warn_if_exposed
    from fhir_pts.sources.server.config import ConfigError, ServerConfig, load_server_config
    from fhir_pts.sources.server.errors import ServerError
    from fhir_pts.sources.server.fetch import FetchResult
    from fhir_pts.synth import synthesize
    from fhir_pts.validate import run_validate


#: Names of the layers below that the faces use, re-exported here: name -> module (imported on first use).
REEXPORTED: dict[str, str] = {
    # errors the faces turn into exit statuses, HostErrors and OperationOutcomes
    "InputError": "fhir_pts.errors",
    "PluginError": "fhir_pts.plugin_manager",
    "UnknownAnalysisError": "fhir_pts.plugin_manager",
    "ServerError": "fhir_pts.sources.server.errors",
    "ConfigError": "fhir_pts.sources.server.config",
    "OutputFolderError": "fhir_pts.outputs.staging",
    "PoolingError": "fhir_pts.pool",
    # the FHIR dateTime grammar (serve's $evaluate-measure parameters)
    "FHIR_DATETIME": "fhir_pts.adapters.common",
    # the settings of a run
    "ServerConfig": "fhir_pts.sources.server.config",
    "load_server_config": "fhir_pts.sources.server.config",
    "FetchResult": "fhir_pts.sources.server.fetch",
    "SharingPolicy": "fhir_pts.outputs.aggregates",
    "make_engine": "fhir_pts.engines",
    "get_plugin_manager": "fhir_pts.plugin_manager",
    "warn_if_exposed": "fhir_pts.sources.private_files",
    # steps and operations
    "cohort_from_facts": "fhir_pts.engines.base",
    "staged_output": "fhir_pts.outputs.staging",
    "suppress_report": "fhir_pts.outputs.suppression",
    "pooled_bundle": "fhir_pts.outputs.pooled",
    "comparison_rows": "fhir_pts.outputs.abstract_comparison",
    "format_comparison": "fhir_pts.outputs.abstract_comparison",
    "write_comparison_csv": "fhir_pts.outputs.abstract_comparison",
    "synthesize": "fhir_pts.synth",
    "run_validate": "fhir_pts.validate",
    "pool_paths": "fhir_pts.pool",
    "pool_sites": "fhir_pts.pool",
    "read_site": "fhir_pts.pool",
    "site_from_bundle": "fhir_pts.pool",
    "write_pooled": "fhir_pts.pool",
}


__getattr__ = lazy_getattr(__name__, REEXPORTED)


__all__ = [
    "FHIR_DATETIME",
    "AnalysisPlan",
    "ConfigError",
    "FetchResult",
    "InputError",
    "OutputFolderError",
    "PluginError",
    "PoolingError",
    "RunFiles",
    "ServerConfig",
    "ServerError",
    "SharingPolicy",
    "UnknownAnalysisError",
    "add_source_findings",
    "analyse",
    "cohort_from_facts",
    "cohort_from_resources",
    "comparison_rows",
    "estimate_inputs",
    "expand_inputs",
    "fetch_raw",
    "file_vocabulary",
    "format_comparison",
    "get_plugin_manager",
    "in_memory_outputs",
    "installed_instruments",
    "list_analyses",
    "load_cohort",
    "load_server_config",
    "make_engine",
    "open_server",
    "packaged_measure",
    "plan_analyses",
    "plugin_instruments",
    "pool_paths",
    "pool_sites",
    "pooled_bundle",
    "read_site",
    "restrict_to_index_period",
    "run_validate",
    "site_from_bundle",
    "staged_output",
    "suppress_report",
    "synthesize",
    "warm_up",
    "warn_if_exposed",
    "write_back",
    "write_comparison_csv",
    "write_data_files",
    "write_pooled",
    "write_run",
]
