"""The embedded engine: read files and folders in this process or a pool of worker processes, adapt every
resource, resolve duplicates, build the cohort.

:func:`collect_facts` reads files and folders (optionally in several processes); :func:`collect_from_resources`
does the same for resources a host already holds (dicts, e.g. from a FHIR server). :class:`LocalEngine` is the
engine interface (:class:`~fhir_pts.engines.base.Engine`) over them. The duplicate rule (contract §1) lives in
:mod:`fhir_pts.engines.resolve`, shared with the Spark engine.

Reading order is the order of :func:`fhir_pts.sources.files.expand_inputs`, then line / entry order, whatever
the number of workers.

Memory grows with the candidates (the resources that can carry facts), not with the size of the export:
NDJSON lines the byte pre-filter rules out are counted and dropped, and only relevant resources are kept
for duplicate resolution. Limitation: a newer copy of a resource that no longer carries any contract code
is not seen, so it cannot retract an older relevant copy.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from fhir_pts.adapters.common import AdapterOutput
from fhir_pts.adapters.facts import FactSet
from fhir_pts.cohort.model import Cohort, TimePointWindows
from fhir_pts.engines.base import cohort_from_facts
from fhir_pts.engines.resolve import Merger, adapt_safely, candidate_filter, expand_bundle
from fhir_pts.problems import Problem
from fhir_pts.sources import fingerprint
from fhir_pts.sources.blocks import split_at_pieces
from fhir_pts.sources.files import (
    NotFhirError,
    RawResource,
    expand_inputs,
    is_ndjson,
    iter_json_file,
    iter_ndjson_file,
    not_fhir_file_problem,
)
from fhir_pts.sources.fingerprint import PieceHasher, combine, fingerprint_file
from fhir_pts.sources.prefilter import CandidateFilter
from fhir_pts.vocabulary import ConceptMapTranslator, Vocabulary

log = logging.getLogger(__name__)

#: Plain NDJSON files are read in parts of about this many bytes (aligned to the fingerprint's pieces), whatever
#: the number of workers: every worker has work on one big file (a Bulk export is mostly Observation.ndjson),
#: and since the parts do not depend on the worker count, neither does anything read from them.
PART_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class _Task:
    """One unit of reading: a whole file, or a byte range of a plain NDJSON file."""

    file_index: int
    path: str
    start: int = 0
    end: int | None = None
    #: Named on the command line (else found in a folder, where non-FHIR JSON files are skipped and reported).
    explicit: bool = True
    #: The bytes whose fingerprint pieces this task hashes (see :func:`~fhir_pts.sources.blocks.split_at_pieces`).
    hash_start: int = 0
    hash_end: int | None = None
    #: The fingerprint's piece size (bytes), fixed when the tasks are made.
    piece: int = 0


@dataclass
class _TaskResult:
    """What a worker sends back: adapted records and reading problems with *task-local* line numbers."""

    records: list[tuple[int, AdapterOutput]] = field(default_factory=list)
    read_problems: list[Problem] = field(default_factory=list)
    resources_read: int = 0
    physical_lines: int = 0
    #: Digests of the fingerprint pieces of the task's hash range; ``None`` when it was not read to its end.
    piece_digests: list[bytes] | None = None


# --- reading (runs in the worker processes, or in-process) ------------------------------------------
@dataclass(frozen=True)
class _Reader:
    """What reading needs besides the task: the vocabulary (ConceptMaps) and the NDJSON pre-filter."""

    vocabulary: Vocabulary
    candidates: CandidateFilter

    @classmethod
    def for_concepts(cls, concepts: Vocabulary | ConceptMapTranslator | None) -> _Reader:
        vocabulary = Vocabulary.of(concepts)
        return cls(vocabulary, candidate_filter(vocabulary))


#: The reader of a worker process and the tasks' claim flags (shared by every reader), set by :func:`_init_worker`.
_worker_reader: _Reader | None = None
_worker_claims: Any = None


def _init_worker(concepts: Vocabulary | None, claims: Any = None) -> None:
    global _worker_reader, _worker_claims
    _worker_reader = _Reader.for_concepts(concepts)
    _worker_claims = claims


def _claim(claims: Any, index: int) -> bool:
    """Take task ``index`` for the calling reader; false when another reader took it first."""
    with claims.get_lock():
        if claims[index]:
            return False
        claims[index] = 1
        return True


def _run_claimed(index: int, task: _Task) -> _TaskResult | None:
    """In a worker: read task ``index`` unless the main process took it (then ``None``)."""
    return _run_task(task) if _claim(_worker_claims, index) else None


def _run_task(task: _Task, on_lines: Callable[[int], None] | None = None, reader: _Reader | None = None) -> _TaskResult:
    """Read one task and adapt its resources (in a worker: with the worker's reader)."""
    reader = reader if reader is not None else _worker_reader
    assert reader is not None, "worker not initialised"
    with _no_cyclic_gc():
        return _read_task(task, on_lines, reader)


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: reading makes parsed resources and facts, no cycles, and collecting
    would walk them again and again (~20 % of the reading's CPU); reference counting still frees everything."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _read_task(task: _Task, on_lines: Callable[[int], None] | None, reader: _Reader) -> _TaskResult:
    result = _TaskResult()
    path = Path(task.path)

    def count(n: int) -> None:
        result.resources_read += n
        if on_lines is not None:
            on_lines(n)

    hasher = PieceHasher(task.hash_start, task.hash_end, task.piece or None)
    raws: Iterator[RawResource]
    if is_ndjson(path):
        raws = iter_ndjson_file(
            path,
            candidates=reader.candidates,
            problems=result.read_problems,
            on_lines=count,
            start=task.start,
            end=task.end,
            on_physical=lambda n: setattr(result, "physical_lines", result.physical_lines + n),
            skip_non_fhir=not task.explicit,
            hasher=hasher,
        )
    else:
        raws = _counted(iter_json_file(path, result.read_problems, hasher), count)
    try:
        _adapt_all(raws, reader, result)
    except NotFhirError:
        if task.explicit:
            raise
        result.read_problems.append(not_fhir_file_problem(task.path))
    hashed_to = task.hash_end if task.hash_end is not None else os.path.getsize(path)
    result.piece_digests = hasher.digests() if hasher.position >= hashed_to else None
    return result


def _adapt_all(raws: Iterator[RawResource], reader: _Reader, result: _TaskResult) -> None:
    for raw in raws:
        output = adapt_safely(raw.resource, reader.vocabulary)
        if output.relevant or output.problems:
            result.records.append((raw.line, output))


def _counted(raws: Iterator[RawResource], count: Callable[[int], None]) -> Iterator[RawResource]:
    n = 0
    for raw in raws:
        n += 1
        yield raw
    count(n)


def _tasks(files: Sequence[Path], explicit: frozenset[Path] | None = None) -> list[_Task]:
    """The reading tasks: whole files, and parts of plain NDJSON files (the same for any number of workers)."""
    tasks: list[_Task] = []
    piece = fingerprint.PIECE_BYTES
    for index, path in enumerate(files):
        named = explicit is None or path.resolve() in explicit
        if is_ndjson(path) and not path.name.lower().endswith(".gz"):
            for start, end, hash_start, hash_end in split_at_pieces(path, PART_BYTES, piece):
                tasks.append(_Task(index, str(path), start, end, named, hash_start, hash_end, piece))
        else:
            tasks.append(_Task(index, str(path), explicit=named, piece=piece))
    return tasks


def collect_facts(
    paths: Sequence[Path | str],
    concepts: Vocabulary | ConceptMapTranslator | None = None,
    workers: int = 1,
    progress: Callable[[int], None] | None = None,
    while_reading: Callable[[], None] | None = None,
) -> FactSet:
    """Read FHIR files and folders and return their de-duplicated facts.

    :param paths: INPUT arguments: Bundle / resource ``.json`` (``.json.gz``), ``.ndjson`` / ``.jsonl``
        (``.gz``) files, or folders holding them (see :func:`~fhir_pts.sources.files.expand_inputs`).
    :param concepts: the run's vocabulary (or bare ConceptMaps); local codes they map to contract codes are
        recognised too.
    :param workers: processes to read with, this one included. With more than one, files — and parts of big
        plain NDJSON files — are read in parallel (see :func:`_read_in_parallel`); the result is identical to
        ``workers=1``.
    :param progress: called with the number of resources read since its previous call (e.g. ``tqdm.update``).
    :param while_reading: called once in this process while worker processes read (not with one worker),
        before this process reads too: work that would otherwise wait for the reading, e.g. imports for the
        analyses.
    :returns: a :class:`FactSet`: facts in reading order, problems of the winning copies and of reading
        (each with ``file`` and ``line``), ``resources_read`` = every resource / non-blank line read.
    :raises InputError: an INPUT is missing or unusable (see :mod:`fhir_pts.sources.files`).
    """
    files = expand_inputs(paths)
    concepts = Vocabulary.of(concepts)
    workers = max(1, min(workers, os.cpu_count() or 1)) if workers > 1 else 1
    tasks = _tasks(files, frozenset(Path(p).resolve() for p in paths if Path(p).is_file()))
    merger = Merger()
    if workers == 1 or len(tasks) == 1:
        reader = _Reader.for_concepts(concepts)
        results: Iterable[_TaskResult] = (_run_task(task, progress, reader) for task in tasks)
        with _no_cyclic_gc():
            fingerprints = _merge(tasks, results, merger, progress=None)
    else:
        try:
            fingerprints = _read_in_parallel(tasks, concepts, workers, merger, progress, while_reading)
        except BrokenProcessPool as error:
            # Worker processes could not start or died (e.g. a __main__ read from stdin cannot be re-imported
            # by spawned workers): read everything again in this process rather than fail the run.
            log.warning("worker processes failed (%s); reading again in one process", error)
            return collect_facts(paths, concepts, workers=1, progress=progress)
    with _no_cyclic_gc():
        facts = merger.fact_set()
    facts.input_fingerprints = fingerprints
    return facts


@_no_cyclic_gc()  # also while the pool starts and results are unpickled and merged
def _read_in_parallel(
    tasks: Sequence[_Task],
    concepts: Vocabulary,
    workers: int,
    merger: Merger,
    progress: Callable[[int], None] | None,
    while_reading: Callable[[], None] | None,
) -> dict[str, str]:
    """Read ``tasks`` with ``workers`` readers: ``workers - 1`` worker processes take them from the front; this
    process — once ``while_reading`` is done — takes them from the back, merging what is ready in task order.

    Two readers on two cores rather than three processes: the imports of ``while_reading`` get a core of their
    own while one worker reads, and what this process reads is not pickled. Every task is read once (its reader
    claims it in a shared array first); which reader reads it changes nothing in the result, and an error is
    raised in task order, as with one reader.
    """
    context = _context()
    claims = context.Array("b", len(tasks))
    reader = _Reader.for_concepts(concepts)
    merging = _Merging(tasks, merger, progress)
    own: dict[int, _TaskResult | Exception] = {}
    with ProcessPoolExecutor(
        workers - 1, mp_context=context, initializer=_init_worker, initargs=(concepts, claims)
    ) as pool:
        futures = [pool.submit(_run_claimed, index, task) for index, task in enumerate(tasks)]
        try:
            if while_reading is not None:
                while_reading()
            for index in reversed(range(len(tasks))):
                if not _claim(claims, index):
                    break  # the workers have reached this task: they read the rest
                try:
                    own[index] = _run_task(tasks[index], None, reader)
                except Exception as error:  # raised below in task order, as a worker's error is
                    own[index] = error
                    break
                while merging.next < len(tasks) and (merging.next in own or futures[merging.next].done()):
                    merging.add(_outcome(merging.next, own, futures))
            while merging.next < len(tasks):
                merging.add(_outcome(merging.next, own, futures))
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return merging.fingerprints()


def _outcome(index: int, own: dict[int, _TaskResult | Exception], futures: Sequence[Future[Any]]) -> _TaskResult:
    """The result of task ``index``, read by this process or a worker (waiting for it); its error is raised."""
    if index in own:
        found = own.pop(index)
        if isinstance(found, Exception):
            raise found
        return found
    result = futures[index].result()
    assert result is not None, "a task claimed by this process was not read"
    return cast(_TaskResult, result)


def _context() -> multiprocessing.context.BaseContext:
    """How worker processes start.

    ``fork`` when this process runs a single thread (fastest: no re-import, and safe without other
    threads), else ``forkserver`` (safe with threads in the host; the server preloads the reader), else
    ``spawn``.
    """
    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        return context
    return multiprocessing.get_context("spawn")


def _merge(
    tasks: Sequence[_Task],
    results: Iterable[_TaskResult],
    merger: Merger,
    progress: Callable[[int], None] | None,
) -> dict[str, str]:
    """Feed task results (in task order) to the merger (see :class:`_Merging`); returns path → fingerprint."""
    merging = _Merging(tasks, merger, progress)
    for result in results:
        merging.add(result)
    return merging.fingerprints()


class _Merging:
    """Feeds task results, in task order, to the merger, turning task-local line numbers into file lines, and
    gathers the fingerprint pieces the tasks hashed while reading."""

    def __init__(self, tasks: Sequence[_Task], merger: Merger, progress: Callable[[int], None] | None) -> None:
        self.tasks, self.merger, self.progress = tasks, merger, progress
        #: The index of the next task to merge.
        self.next = 0
        self._line_offset = 0
        self._previous_file = -1
        self._pieces: dict[str, list[bytes] | None] = {}
        self._skipped: set[str] = set()  # files found not to be FHIR by their first part: other parts are dropped

    def add(self, result: _TaskResult) -> None:
        """Merge the result of the next task."""
        task = self.tasks[self.next]
        self.next += 1
        if task.file_index != self._previous_file:
            self._line_offset, self._previous_file = 0, task.file_index
        known = self._pieces.setdefault(task.path, [])
        if known is not None and result.piece_digests is not None:
            known.extend(result.piece_digests)
        else:
            self._pieces[task.path] = None
        if task.path in self._skipped:
            return
        if task.start == 0 and not_fhir_file_problem(task.path) in result.read_problems:
            self._skipped.add(task.path)
        self.merger.resources_read += result.resources_read
        if self.progress is not None:
            self.progress(result.resources_read)
        for problem in result.read_problems:
            self.merger.add_read_problem(_shifted(problem, self._line_offset), task.file_index)
        for line, output in result.records:
            self.merger.add(output, task.path, line + self._line_offset, task.file_index, by_line=True)
        self._line_offset += result.physical_lines

    def fingerprints(self) -> dict[str, str]:
        """Path → input fingerprint, from the pieces the tasks hashed (a file not read to its end, e.g. a non-FHIR
        file skipped in a folder, is hashed here)."""
        return {
            path: combine(found) if found is not None else fingerprint_file(path)
            for path, found in self._pieces.items()
        }


def _shifted(problem: Problem, offset: int) -> Problem:
    if not offset or problem.line is None:
        return problem
    return Problem(
        problem.resource_type, problem.resource_id, problem.field, problem.reason, problem.severity,
        problem.patient_id, problem.file, problem.line + offset,
    )  # fmt: skip


def collect_from_resources(
    resources: Iterable[dict[str, Any] | RawResource],
    concepts: Vocabulary | ConceptMapTranslator | None = None,
) -> FactSet:
    """The de-duplicated facts of resources a host already holds, in the order given.

    ``resources`` are parsed FHIR resources (dicts; Bundles are expanded) or :class:`RawResource` s (whose
    ``file`` / ``line`` locate the problems). Same adapters and duplicate rules as :func:`collect_facts`.
    """
    vocabulary = Vocabulary.of(concepts)
    merger = Merger()
    for item in resources:
        if isinstance(item, RawResource):
            resource, file, line = item.resource, item.file, item.line
        else:
            resource, file, line = item, None, None
        for inner in expand_bundle(resource):
            merger.resources_read += 1
            output = adapt_safely(inner, vocabulary)
            if output.relevant or output.problems:
                merger.add(output, file, line)
    return merger.fact_set()


@dataclass(frozen=True)
class LocalEngine:
    """The embedded engine: this process, and ``workers`` reading processes when more than one."""

    workers: int = 1
    name: str = "local"
    #: Run in this process while the worker processes read (e.g. importing what the analyses will need).
    while_reading: Callable[[], None] | None = None

    def load_cohort(
        self,
        inputs: Sequence[Path | str],
        concepts: Vocabulary | ConceptMapTranslator | None = None,
        windows: TimePointWindows | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> Cohort:
        vocabulary = Vocabulary.of(concepts)
        facts = collect_facts(
            list(inputs), vocabulary, workers=self.workers, progress=progress, while_reading=self.while_reading
        )
        return cohort_from_facts(facts, windows, vocabulary.instruments)
