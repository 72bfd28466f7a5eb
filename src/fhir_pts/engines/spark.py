"""The Spark engine: the same adapters, duplicate rule and cohort functions, run on a Spark cluster.

``fhir-pts run INPUT... --engine spark [--spark-master URL]`` (installed with ``pip install 'fhir-pts[spark]'``).
INPUT is any path Spark reads (local, ``hdfs://``, ``s3a://``, ``abfss://``...): NDJSON files (plain or gzip)
and Bundle / resource JSON files (plain or gzip), or folders of them.

One Spark job, three steps, all on the executors (:mod:`fhir_pts.engines.spark_steps`):

1. **read and map**: NDJSON lines are read as text (never ``spark.read.json``, which infers clashing types across
   files), passed through the byte pre-filter, parsed and adapted by :func:`fhir_pts.adapters.adapt_resource`;
   Bundle files are read whole. A malformed line is a problem record with its file and line.
2. **duplicates**: records are partitioned by resource key and fed, in reading order, to the same
   :class:`~fhir_pts.engines.resolve.Merger` the local engine uses (contract §1).
3. **cohort**: the winners' facts are partitioned by patient; each partition builds its patients' cohort rows
   with :func:`fhir_pts.cohort.build.build_cohort`.

Only cohort rows, problem records and counts reach the driver, which puts them in reading order: the cohort and
``problems.csv`` are those of the local engine for the same inputs.

Reading order is that of the local engine for paths of this machine (:func:`~fhir_pts.sources.files.expand_inputs`,
then line / entry order). INPUTs given as URIs (``hdfs://``, ``s3a://``, ``file:///`` on a shared filesystem...)
are listed by Spark itself (the driver need not see them): their files are read in the order of their paths,
and a non-FHIR NDJSON file in such a folder is not recognised as a whole (each of its lines is reported).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines import spark_steps as steps
from fhir_pts.problems import Problem
from fhir_pts.sources.files import (
    InputError,
    expand_inputs,
    is_ndjson,
    ndjson_file_is_not_fhir,
    not_fhir_file_problem,
)
from fhir_pts.sources.fingerprint import fingerprint_file
from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary

#: How to install what the Spark engine needs.
INSTALL_HINT = "install it with: pip install 'fhir-pts[spark]'"
JAVA_HINT = (
    "the Spark engine needs a Java runtime (17 or 21): install one (e.g. apt-get install openjdk-17-jre-headless) "
    "or set JAVA_HOME"
)
DEFAULT_MASTER = "local[*]"

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_GLOB_CHARS = re.compile(r"([\\*?\[\]{}])")
_NDJSON_GLOB = "*.{ndjson,jsonl,ndjson.gz,jsonl.gz,NDJSON,JSONL,NDJSON.GZ,JSONL.GZ}"
_JSON_GLOB = "*.{json,json.gz,JSON,JSON.GZ}"


class EngineUnavailable(InputError):
    """The engine cannot start here (pyspark or Java missing): one line saying how to install it (exit 2)."""


def is_remote(text: str | Path) -> bool:
    """Whether an INPUT is a URI (``hdfs://``, ``s3a://``, ``file:///`` ...) that Spark lists and reads itself,
    rather than a path of this machine (listed here, in the local engine's order and with its errors)."""
    text = str(text)
    return bool(_SCHEME.match(text)) and not re.match(r"^[A-Za-z]:[\\/]", text)


@dataclass
class _Plan:
    """What to read: local files (known on the driver, in the local engine's order) and remote INPUTs."""

    files: dict[str, steps.FileInfo] = field(default_factory=dict)  # normalised path -> info
    ndjson: list[str] = field(default_factory=list)  # local NDJSON paths as given to Spark
    json: list[str] = field(default_factory=list)  # local JSON paths as given to Spark
    remote: list[steps.RemoteInput] = field(default_factory=list)
    problems: list[tuple[steps.Order, Problem]] = field(default_factory=list)
    local: list[str] = field(default_factory=list)  # every local file, skipped ones included (fingerprinted)


def _spark_path(path: Path) -> str:
    """A local file as Spark reads it: an absolute ``file:`` path, glob characters escaped."""
    return "file://" + _GLOB_CHARS.sub(r"\\\1", os.path.abspath(path))


def plan_inputs(inputs: Sequence[str | Path]) -> _Plan:
    """Expand the INPUTs: local ones as the local engine does (same files, same order, same errors)."""
    if not inputs:
        raise InputError("no INPUT given: expected FHIR Bundle JSON or NDJSON files or folders")
    plan = _Plan()
    seen: set[Path] = set()
    for arg, raw in enumerate(inputs):
        text = str(raw)
        if is_remote(text):
            plan.remote.append(steps.RemoteInput(arg, steps.normalise(text), text))
            continue
        given = Path(text)
        explicit = given.is_file()
        for index, path in enumerate(expand_inputs([given])):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            name = str(path)
            plan.local.append(name)
            if is_ndjson(path):
                if not explicit and ndjson_file_is_not_fhir(path):
                    plan.problems.append(((arg, index, name, 0, 0, 0, 0), not_fhir_file_problem(name)))
                    continue
                plan.ndjson.append(_spark_path(path))
            else:
                plan.json.append(_spark_path(path))
            plan.files[steps.normalise(os.path.abspath(path))] = steps.FileInfo(arg, index, name, explicit)
    return plan


@dataclass
class SparkEngine:
    """The Spark engine (see the module docstring).

    :param master: ``local[*]`` (default), ``spark://host:7077``, ``yarn``, ``k8s://...`` or a Spark Connect
        URL ``sc://host:15002``. Ignored when ``session`` is given.
    :param session: a running ``SparkSession`` to use (it is not stopped afterwards).
    :param partitions: partitions of the two shuffles (default: ``spark.sql.shuffle.partitions``; for a
        ``local`` master, twice the cores).
    """

    master: str | None = None
    session: Any = None
    partitions: int | None = None
    name: str = "spark"

    def load_cohort(
        self,
        inputs: Sequence[Path | str],
        concepts: Vocabulary | ConceptMapTranslator | None = None,
        windows: TimePointWindows | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Cohort:
        plan = plan_inputs(list(inputs))
        # The local inputs' fingerprints (for the report) are hashed by a thread of this process while the
        # executors read: the driver only waits for them meanwhile. (The executors read lines through Spark's
        # text reader, which does not show the bytes as stored; hashing there would need a second read anyway.)
        stop = threading.Event()
        with ThreadPoolExecutor(1, thread_name_prefix="fhir-pts-fingerprints") as hashing:
            hashed = hashing.submit(_fingerprints, plan.local, stop)
            try:
                table, job = self._run(plan, concepts, windows)
            except BaseException:
                stop.set()
                raise
        cohort = steps.assemble(table, plan.problems, job)
        cohort.input_fingerprints = hashed.result()
        if progress is not None:
            progress(cohort.flow.get("resources_read", 0))
        return cohort

    def _run(
        self, plan: _Plan, concepts: Vocabulary | ConceptMapTranslator | None, windows: TimePointWindows | None
    ) -> tuple[Any, steps.Job]:
        spark, owned = self._start()
        try:
            job = steps.Job.create(plan.files, plan.remote, concepts, windows or TimePointWindows())
            try:
                return _collect(self._job_frame(spark, plan, job)), job
            except InputError:
                raise
            except Exception as error:
                _raise_input_error(error)
                raise
        finally:
            if owned:
                spark.stop()

    # --- the session --------------------------------------------------------------------------------
    def _start(self) -> tuple[Any, bool]:
        if self.session is not None:
            return self.session, False
        try:
            from pyspark.sql import SparkSession
        except ImportError as error:
            message = f"the Spark engine needs pyspark, which is not installed; {INSTALL_HINT}"
            raise EngineUnavailable(message) from error
        # Under spark-submit (or pyspark's shell) the master and every setting come from there: keep them.
        submitted = self.master is None and "PYSPARK_GATEWAY_PORT" in os.environ
        master = self.master or DEFAULT_MASTER
        # Executors must run this interpreter (it has fhir-pts); a cluster sets its own in its configuration.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = SparkSession.builder.appName("fhir-pts")
        if submitted:
            pass
        elif master.startswith("sc://"):
            builder = builder.remote(master)
        else:
            if not os.environ.get("JAVA_HOME") and shutil.which("java") is None:
                raise EngineUnavailable(JAVA_HINT)
            builder = builder.master(master).config("spark.ui.showConsoleProgress", "false")
            if master.startswith("local"):
                builder = builder.config("spark.sql.shuffle.partitions", str(2 * (os.cpu_count() or 1)))
        existing = SparkSession.getActiveSession()
        try:
            spark = builder.getOrCreate()
        except Exception as error:  # the JVM could not start: say so in one line
            if "JAVA_GATEWAY" in str(error) or "Java gateway" in str(error):
                raise EngineUnavailable(f"{JAVA_HINT} ({error})") from error
            raise
        if existing is None and not master.startswith("sc://"):
            spark.sparkContext.setLogLevel("ERROR")  # Spark's warnings would bury the run's own messages
        return spark, existing is None

    # --- the job ------------------------------------------------------------------------------------
    def _job_frame(self, spark: Any, plan: _Plan, job: steps.Job) -> Any:
        from pyspark.sql import functions as F

        schema = steps.SCHEMA_DDL
        parts: list[Any] = []
        text_columns = [
            F.col("value"),
            F.col("_metadata.file_path").alias("file_path"),
            F.col("_metadata.file_block_start").alias("block"),
            F.col("_metadata.file_block_length").alias("block_length"),
            F.col("_metadata.file_size").alias("file_size"),
        ]
        binary_columns = [F.col("content"), F.col("path").alias("file_path")]
        ndjson_sources: list[Any] = []
        json_sources: list[Any] = []
        if plan.ndjson:
            ndjson_sources.append(spark.read.text(plan.ndjson))
        if plan.json:
            json_sources.append(spark.read.format("binaryFile").load(plan.json))
        for remote in plan.remote:
            if remote.is_file:
                reader = spark.read
                if steps.is_ndjson_name(remote.uri):
                    ndjson_sources.append(reader.text(remote.uri))
                else:
                    json_sources.append(reader.format("binaryFile").load(remote.uri))
            else:
                ndjson_sources.append(
                    spark.read.option("recursiveFileLookup", "true").option("pathGlobFilter", _NDJSON_GLOB).text(
                        remote.uri
                    )
                )
                json_sources.append(
                    spark.read.format("binaryFile")
                    .option("recursiveFileLookup", "true")
                    .option("pathGlobFilter", _JSON_GLOB)
                    .load(remote.uri)
                )
        for source in ndjson_sources:
            parts.append(source.select(*text_columns).mapInArrow(job.read_ndjson, schema))
        for source in json_sources:
            parts.append(source.select(*binary_columns).mapInArrow(job.read_json, schema))
        if not parts:
            return None
        records = parts[0]
        for part in parts[1:]:
            records = records.unionByName(part)
        n = self.partitions
        order = list(steps.ORDER_COLUMNS)
        winners = (
            (records.repartition(n, "key") if n else records.repartition("key"))
            .sortWithinPartitions(*order)
            .mapInArrow(job.resolve_duplicates, schema)
        )
        return (
            (winners.repartition(n, "patient") if n else winners.repartition("patient"))
            .sortWithinPartitions(*order)
            .mapInArrow(job.build_cohorts, schema)
        )


def _fingerprints(names: Sequence[str], stop: threading.Event) -> dict[str, str]:
    """File name → fingerprint (:func:`~fhir_pts.sources.fingerprint.fingerprint_file`), until ``stop`` is set."""
    found: dict[str, str] = {}
    for name in names:
        if stop.is_set():
            break
        try:
            found[name] = fingerprint_file(name)
        except OSError:  # left for the report, which says so
            continue
    return found


def _collect(frame: Any) -> Any:
    """The job's rows on the driver as an Arrow table (cohort rows, problems, counts)."""
    import pyarrow as pa

    if frame is None:
        return pa.table({name: [] for name in steps.ORDER_COLUMNS})
    return frame.toArrow()


def _raise_input_error(error: Exception) -> None:
    """Raise Spark's "cannot read this INPUT" errors as :class:`InputError` (exit 2); return for others."""
    message = str(error)
    if "PATH_NOT_FOUND" in message or "Path does not exist" in message:
        path = re.search(r"Path does not exist: (\S+?)\.?(\s|$)", message)
        raise InputError(f"{path.group(1) if path else 'an INPUT'}: no such file or folder") from error
    cause = _input_failure(message)
    if cause is not None:
        raise InputError(f"an INPUT cannot be read by Spark ({cause})") from error


def _input_failure(message: str) -> str | None:
    for marker in ("EOFException", "ZipException", "Unexpected end of input stream", "not in GZIP format",
                   "FileNotFoundException", "AccessDeniedException"):  # fmt: skip
        if marker in message:
            line = next((line for line in message.splitlines() if marker in line), marker)
            return line.strip()[:300]
    return None
