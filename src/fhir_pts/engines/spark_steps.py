"""The steps of the Spark engine that run on the executors, and the driver's assembly of their output.

Nothing here imports pyspark: each step is a function from Arrow record batches to Arrow record batches (for
``DataFrame.mapInArrow``), so the steps are plain Python over the project's own functions — the same
adapters (:func:`~fhir_pts.engines.resolve.adapt_safely`), the same duplicate rule
(:class:`~fhir_pts.engines.resolve.Merger`) and the same cohort derivations
(:func:`~fhir_pts.cohort.build.build_cohort`) as the local engine.

Every step emits rows of one schema (:data:`SCHEMA_DDL`); ``kind`` says what a row carries and the order
columns (:data:`ORDER_COLUMNS`) place it in the input: INPUT argument, file index within it, file name, byte
offset of the file split, line within the split (1-based), resource within the line, item within the resource.
"""

from __future__ import annotations

import gzip
import pickle
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import unquote

import pandas as pd

from fhir_pts.adapters.common import AdapterOutput
from fhir_pts.adapters.facts import Fact, PatientFact
from fhir_pts.cohort.build import build_cohort
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines.resolve import Merger, adapt_safely, add_facts, candidate_filter, empty_fact_set
from fhir_pts.problems import Problem
from fhir_pts.sources.files import (
    NDJSON_SUFFIXES,
    InputError,
    NotFhirError,
    RawResource,
    is_fhir_file,
    iter_json_bytes,
    looks_truncated,
    not_fhir_file_problem,
    resources_of_line,
)
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary

#: Where a row belongs in the input (see the module docstring).
Order = tuple[int, int, str, int, int, int, int]

RECORD, PROBLEM, COUNT, FATAL, FACT, COHORT = range(6)

ORDER_COLUMNS: tuple[str, ...] = ("arg", "fidx", "path", "block", "line", "sub", "part")
SCHEMA_DDL = (
    "kind int, key string, patient string, arg int, fidx int, path string, block bigint, line bigint, sub int, "
    "part int, n bigint, m bigint, payload binary"
)
_COLUMNS = ("kind", "key", "patient", *ORDER_COLUMNS, "n", "m", "payload")
_FLUSH_ROWS = 4096


def normalise(path: str) -> str:
    """A path or URI as Spark reports it (``_metadata.file_path``) made comparable: decoded, ``file:`` dropped."""
    text = unquote(path)
    if text.startswith("file:"):
        text = text[5:]
        while text.startswith("//"):
            text = text[1:]
    return text


def is_ndjson_name(name: str) -> bool:
    return name.lower().endswith(NDJSON_SUFFIXES)


@dataclass(frozen=True)
class FileInfo:
    """A local file: its INPUT argument, its index in the argument's expansion, the name problems show, and
    whether it was named on the command line (else found in a folder)."""

    arg: int
    index: int
    name: str
    explicit: bool


@dataclass(frozen=True)
class RemoteInput:
    """An INPUT Spark lists itself (``hdfs://``, ``s3a://``...)."""

    arg: int
    norm: str
    uri: str

    @property
    def is_file(self) -> bool:
        return is_fhir_file_name(self.uri)


def is_fhir_file_name(name: str) -> bool:
    from pathlib import PurePosixPath

    return is_fhir_file(PurePosixPath(name.rstrip("/")))  # type: ignore[arg-type]


def _path_part(uri: str) -> str:
    rest = uri.split("://", 1)[-1]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


# --- output rows -------------------------------------------------------------------------------------
class _Rows:
    """Rows being emitted, as columns; :meth:`batch` turns them into one Arrow record batch."""

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {name: [] for name in _COLUMNS}

    def __len__(self) -> int:
        return len(self.columns["kind"])

    def add(
        self, kind: int, order: Sequence[Any], *, key: str | None = None, patient: str | None = None,
        n: int = 0, m: int = 0, payload: bytes | None = None,
    ) -> None:  # fmt: skip
        values = (kind, key, patient, *order, n, m, payload)
        for name, value in zip(_COLUMNS, values, strict=True):
            self.columns[name].append(value)

    def add_row(self, row: dict[str, Any]) -> None:
        for name in _COLUMNS:
            self.columns[name].append(row[name])

    def batch(self) -> Any:
        import pyarrow as pa

        batch = pa.RecordBatch.from_pydict(self.columns, schema=_arrow_schema())
        self.columns = {name: [] for name in _COLUMNS}
        return batch


def _arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema(
        [
            ("kind", pa.int32()), ("key", pa.string()), ("patient", pa.string()), ("arg", pa.int32()),
            ("fidx", pa.int32()), ("path", pa.string()), ("block", pa.int64()), ("line", pa.int64()),
            ("sub", pa.int32()), ("part", pa.int32()), ("n", pa.int64()), ("m", pa.int64()),
            ("payload", pa.binary()),
        ]
    )  # fmt: skip


def _dump(value: Any) -> bytes:
    return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


@dataclass
class _Segment:
    """The lines of one file split met so far in a partition."""

    info: FileInfo
    block: int
    last_of_file: bool
    lines: int = 0
    resources: int = 0
    last: tuple[int, bytes, bool] | None = None  # (line, text, parsed) of the last non-blank line

    def order(self, line: int = 0, sub: int = 0, part: int = 0) -> Order:
        return (self.info.arg, self.info.index, self.info.name, self.block, line, sub, part)


# --- the job ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """What every step needs, shipped to the executors with the step functions (bound methods)."""

    files: dict[str, FileInfo]
    remote: tuple[RemoteInput, ...]
    vocabulary: Vocabulary
    candidates: CandidateFilter
    windows: TimePointWindows
    _cache: dict[str, FileInfo] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def create(
        cls,
        files: dict[str, FileInfo],
        remote: Sequence[RemoteInput],
        concepts: Vocabulary | ConceptMapTranslator | None,
        windows: TimePointWindows,
    ) -> Job:
        vocabulary = Vocabulary.of(concepts)
        return cls(dict(files), tuple(remote), vocabulary, candidate_filter(vocabulary), windows)

    def file_info(self, file_path: str) -> FileInfo:
        """The file a row came from, by the path Spark reports."""
        found = self._cache.get(file_path)
        if found is not None:
            return found
        norm = normalise(file_path)
        info = self.files.get(norm)
        if info is None:
            info = self._remote_info(norm)
        self._cache[file_path] = info
        return info

    def _remote_info(self, norm: str) -> FileInfo:
        best: RemoteInput | None = None
        for remote in self.remote:
            inside = norm == remote.norm or norm.startswith(remote.norm.rstrip("/") + "/")
            if inside and (best is None or len(remote.norm) > len(best.norm)):
                best = remote
        if best is None:  # e.g. hdfs:///x given, hdfs://namenode:8020/x reported: compare the paths only
            for remote in self.remote:
                if _path_part(norm).startswith(_path_part(remote.norm).rstrip("/")):
                    best = remote
                    break
        arg = best.arg if best is not None else (self.remote[0].arg if self.remote else 0)
        explicit = best is not None and best.is_file
        return FileInfo(arg, 0, norm, explicit)

    # --- step 1: read and map -------------------------------------------------------------------------
    def read_ndjson(self, batches: Iterable[Any]) -> Iterator[Any]:
        """NDJSON lines (columns value, file_path, block, block_length, file_size) → records, problems, counts."""
        import pyarrow as pa

        rows = _Rows()
        segment: _Segment | None = None
        for batch in batches:
            values = batch.column(0).cast(pa.large_binary()).to_pylist()
            paths = batch.column(1).to_pylist()
            blocks = batch.column(2).to_pylist()
            lengths = batch.column(3).to_pylist()
            sizes = batch.column(4).to_pylist()
            start, count = 0, len(values)
            while start < count:
                path, block = paths[start], blocks[start]
                if paths[-1] == path and blocks[-1] == block:
                    end = count
                else:
                    end = start + 1
                    while end < count and paths[end] == path and blocks[end] == block:
                        end += 1
                if segment is None or segment.info is not self.file_info(path) or segment.block != block:
                    if segment is not None:
                        self._end_segment(segment, rows)
                    info = self.file_info(path)
                    segment = _Segment(info, block, block + lengths[start] >= sizes[start])
                self._scan(segment, values[start:end], rows)
                start = end
            if len(rows) >= _FLUSH_ROWS:
                yield rows.batch()
        if segment is not None:
            self._end_segment(segment, rows)
        yield rows.batch()

    def _scan(self, segment: _Segment, lines: list[bytes], rows: _Rows) -> None:
        scan = self.candidates.scan(b"\n".join(lines))
        parsed_last = -1
        for index, line in scan.candidates:
            if line.strip():
                self._line(segment, segment.lines + index + 1, line, rows)
                parsed_last = index
        segment.resources += scan.resources
        if segment.last_of_file:
            for index in range(len(lines) - 1, -1, -1):
                if lines[index].strip():
                    segment.last = (segment.lines + index + 1, lines[index], index == parsed_last)
                    break
        segment.lines += len(lines)

    def _end_segment(self, segment: _Segment, rows: _Rows) -> None:
        # The last non-blank line of a file is parsed even when the pre-filter skipped it: a truncated download
        # is reported (as the local engine does).
        if segment.last is not None and not segment.last[2] and looks_truncated(segment.last[1]):
            self._line(segment, segment.last[0], segment.last[1], rows)
        rows.add(COUNT, segment.order(), n=segment.lines, m=segment.resources)

    def _line(self, segment: _Segment, number: int, line: bytes, rows: _Rows) -> None:
        problems: list[Problem] = []
        for sub, raw in enumerate(resources_of_line(line, segment.info.name, number, problems)):
            self._record(raw, segment.order(number, sub), rows)
        for problem in problems:  # read problems sort before the records of their line (part -1)
            rows.add(PROBLEM, segment.order(problem.line or number, 0, -1), payload=_dump(problem))

    def _record(self, raw: RawResource, order: Order, rows: _Rows) -> None:
        output = adapt_safely(raw.resource, self.vocabulary)
        if not (output.relevant or output.problems):
            return
        if output.key is None:
            for part, problem in enumerate(output.problems):
                located = problem.located(raw.file, raw.line)
                rows.add(PROBLEM, (*order[:6], part), payload=_dump(located))
            return
        rows.add(RECORD, order, key=f"{output.key[0]}/{output.key[1]}", payload=_dump(output))

    def read_json(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Whole Bundle / resource JSON files (columns content, file_path) → records, problems, counts."""
        rows = _Rows()
        for batch in batches:
            contents = batch.column(0).to_pylist()
            paths = batch.column(1).to_pylist()
            for content, path in zip(contents, paths, strict=True):
                self._json_file(self.file_info(path), content, rows)
            if len(rows) >= _FLUSH_ROWS:
                yield rows.batch()
        yield rows.batch()

    def _json_file(self, info: FileInfo, content: bytes, rows: _Rows) -> None:
        segment = _Segment(info, 0, True)
        problems: list[Problem] = []
        try:
            data = gzip.decompress(content) if info.name.lower().endswith(".gz") else content
            raws = list(iter_json_bytes(data, info.name, problems))
        except NotFhirError as error:
            if info.explicit:
                rows.add(FATAL, segment.order(), payload=str(error).encode())
            else:
                rows.add(PROBLEM, segment.order(), payload=_dump(not_fhir_file_problem(info.name)))
            return
        except InputError as error:
            rows.add(FATAL, segment.order(), payload=str(error).encode())
            return
        except (OSError, EOFError, zlib.error) as error:
            rows.add(FATAL, segment.order(), payload=f"{info.name}: cannot be read ({error})".encode())
            return
        for problem in problems:  # entries without a resource: before the records of their entry (part -1)
            rows.add(PROBLEM, segment.order(problem.line or 0, 0, -1), payload=_dump(problem))
        previous_line, sub = None, 0
        for raw in raws:
            sub = sub + 1 if raw.line == previous_line else 0
            previous_line = raw.line
            self._record(raw, segment.order(raw.line, sub), rows)
        rows.add(COUNT, segment.order(), m=len(raws))

    # --- step 2: duplicates (rows partitioned by key, sorted by order) --------------------------------
    def resolve_duplicates(self, batches: Iterable[Any]) -> Iterator[Any]:
        """Records → the winning copy of each resource (contract §1): its problems, and its facts by patient."""
        rows = _Rows()
        merger = Merger()
        for batch in batches:
            for row in batch.to_pylist():
                if row["kind"] != RECORD:
                    rows.add_row(row)
                    continue
                output: AdapterOutput = pickle.loads(row["payload"])
                merger.add(output, row["path"], row["line"], order=tuple(row[c] for c in ORDER_COLUMNS))
            if len(rows) >= _FLUSH_ROWS:
                yield rows.batch()
        for winner in merger.winners.values():
            base = winner.order[:6]
            for part, problem in enumerate([*winner.output.problems, *winner.conflicts]):
                rows.add(PROBLEM, (*base, part), payload=_dump(problem.located(winner.file, winner.line)))
            for part, fact in enumerate(winner.output.facts):
                rows.add(FACT, (*base, part), patient=fact.patient_id, payload=_dump(fact))
            if len(rows) >= _FLUSH_ROWS:
                yield rows.batch()
        yield rows.batch()

    # --- step 3: cohort rows (facts partitioned by patient, sorted by order) --------------------------
    def build_cohorts(self, batches: Iterable[Any]) -> Iterator[Any]:
        """The facts of a partition's patients → their cohort rows and problems (one COHORT row)."""
        rows = _Rows()
        facts: list[tuple[Order, Fact]] = []
        for batch in batches:
            for row in batch.to_pylist():
                if row["kind"] == FACT:
                    facts.append((tuple(row[c] for c in ORDER_COLUMNS), pickle.loads(row["payload"])))  # type: ignore[arg-type]
                else:
                    rows.add_row(row)
            if len(rows) >= _FLUSH_ROWS:
                yield rows.batch()
        if facts:
            rows.add(COHORT, facts[0][0], payload=_dump(self._cohort_part(facts)))
        yield rows.batch()

    def _cohort_part(self, ordered: list[tuple[Order, Fact]]) -> _CohortPart:
        fact_set = empty_fact_set()
        add_facts(fact_set, (fact for _, fact in ordered))
        cohort = build_cohort(fact_set, self.windows, self.vocabulary.instruments)
        patient_order = {fact.resource_id: order for order, fact in ordered if isinstance(fact, PatientFact)}
        # Problems of build_cohort come in two runs: facts whose patient is not in the data (by kind of fact,
        # then reading order), then each patient's (in patient order). Their sort keys say so for the driver.
        kinds = ("ProcedureFact", "PatencyFindingFact", "ScoreAssessmentFact", "AdverseEventFact")
        fact_place: dict[tuple[str, str], tuple[int, Order]] = {}
        for order, fact in ordered:
            kind = type(fact).__name__
            if kind in kinds:
                fact_place.setdefault((fact.resource_type, fact.resource_id), (kinds.index(kind), order))  # type: ignore[union-attr]
        # where each resource that gave facts was read: cohort problems name it as the local engine does
        # (file and line; the line is block-relative here, the driver adds the block's offset)
        origin: dict[tuple[str, str], Order] = {}
        for order, fact in ordered:
            origin.setdefault((getattr(fact, "resource_type", "Patient"), fact.resource_id), order)
        problems: list[tuple[tuple[Any, ...], Problem, tuple[Any, ...] | None]] = []
        for seq, problem in enumerate(cohort.problems):
            place = None
            found = origin.get((problem.resource_type, problem.resource_id or ""))
            if problem.file is None and problem.resource_id is not None and found is not None:
                problem = problem.located(found[2], found[4])
                place = (found[0], found[1], found[2], found[3])
            if problem.patient_id in fact_set.patients:
                problems.append(((1, patient_order[problem.patient_id], seq), problem, place))
            else:
                rank, order = fact_place.get((problem.resource_type, problem.resource_id or ""), (9, ()))  # type: ignore[assignment]
                problems.append(((0, rank, order, seq), problem, place))
        row_orders = [patient_order[pid] for pid in cohort.patients["patient_id"].tolist()]
        return _CohortPart(cohort.patients, row_orders, problems, cohort.flow, cohort.period_start, cohort.period_end)


@dataclass
class _CohortPart:
    patients: pd.DataFrame
    row_orders: list[Order]
    problems: list[tuple[tuple[Any, ...], Problem, tuple[Any, ...] | None]]  # (sort key, problem, block to offset)
    flow: dict[str, int]
    period_start: Any
    period_end: Any


# --- on the driver ----------------------------------------------------------------------------------
def assemble(table: Any, driver_problems: Sequence[tuple[Order, Problem]], job: Job) -> Cohort:
    """The cohort from the job's rows: cohort rows and problems in the local engine's order.

    :raises InputError: an INPUT could not be used (a FATAL row, e.g. an explicitly named file that is not FHIR).
    """
    rows = table.to_pylist() if table.num_rows else []
    fatal = sorted((_order(r), r["payload"].decode()) for r in rows if r["kind"] == FATAL)
    if fatal:
        raise InputError(fatal[0][1])
    offsets = _line_offsets(r for r in rows if r["kind"] == COUNT)
    resources_read = sum(r["m"] for r in rows if r["kind"] == COUNT)
    read: list[tuple[Order, Problem]] = list(driver_problems)
    for r in rows:
        if r["kind"] == PROBLEM:
            problem: Problem = pickle.loads(r["payload"])
            offset = offsets.get((r["arg"], r["fidx"], r["path"], r["block"]), 0)
            if offset and problem.line is not None:
                problem = replace(problem, line=problem.line + offset)
            read.append((_order(r), problem))
    read.sort(key=lambda item: item[0])

    parts: list[_CohortPart] = [pickle.loads(r["payload"]) for r in rows if r["kind"] == COHORT]
    # The cohort of no facts gives every field as build_cohort sets it (columns of the run's instruments, flow
    # names at 0); the partitions' rows, problems, counts and periods are put into it.
    cohort = build_cohort(empty_fact_set(), job.windows, job.vocabulary.instruments)
    template = cohort
    flow = dict(template.flow)
    for part in parts:
        for name, value in part.flow.items():
            flow[name] = flow.get(name, 0) + value
    flow.setdefault("resources_read", resources_read)
    orders = [order for part in parts for order in part.row_orders]
    frames = [part.patients for part in parts if len(part.patients)]
    if frames:
        patients = pd.concat(frames, ignore_index=True)
        ranking = sorted(range(len(orders)), key=orders.__getitem__)
        patients = patients.iloc[ranking].reset_index(drop=True)
    else:
        patients = template.patients
    built = sorted((item for part in parts for item in part.problems), key=lambda item: item[0])
    located = [
        replace(problem, line=problem.line + offsets.get(place, 0))
        if place is not None and problem.line is not None
        else problem
        for _, problem, place in built
    ]
    cohort.patients = patients
    cohort.problems = [problem for _, problem in read] + located
    cohort.period_start = min((p.period_start for p in parts if p.period_start is not None), default=None)
    cohort.period_end = max((p.period_end for p in parts if p.period_end is not None), default=None)
    cohort.flow = flow
    return cohort


def _order(row: dict[str, Any]) -> Order:
    return tuple(row[c] for c in ORDER_COLUMNS)  # type: ignore[return-value]


def _line_offsets(counts: Iterable[dict[str, Any]]) -> dict[tuple[int, int, str, int], int]:
    """Lines before each split of each file (from the splits' line counts)."""
    by_file: dict[tuple[int, int, str], list[tuple[int, int]]] = {}
    for row in counts:
        by_file.setdefault((row["arg"], row["fidx"], row["path"]), []).append((row["block"], row["n"]))
    offsets: dict[tuple[int, int, str, int], int] = {}
    for file, blocks in by_file.items():
        total = 0
        for block, lines in sorted(blocks):
            offsets[(*file, block)] = total
            total += lines
    return offsets
