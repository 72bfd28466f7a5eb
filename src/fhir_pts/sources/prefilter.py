"""A cheap byte-level pre-filter for NDJSON exports: find the few lines that can matter before parsing any.

A Bulk Data export is mostly vital signs, labs, encounters and claims that carry none of the contract's codes.
Parsing every line costs ~3 µs (orjson); searching a block of lines for a few byte strings costs a few
nanoseconds per line. :class:`CandidateFilter` decides, from the raw bytes only, whether a line *can* be
relevant (it never drops a relevant line that is written in the usual way; it may keep an irrelevant one — the
adapters, which see the parsed resource, have the last word):

- ``Patient`` and ``AdverseEvent`` lines are always candidates (so is a ``Bundle`` line, expanded later);
- ``Procedure`` lines only when they contain the host of one of the contract's procedure code systems
  (``fhir-pts.org``, ``www.ama-assn.org`` for CPT, ``www.cms.gov`` for ICD-10-PCS) or a source code of a loaded
  ConceptMap (``"code"``, JSON-quoted, in each form a serialiser may write it: see :func:`quoted_forms`);
- ``Observation`` and ``QuestionnaireResponse`` lines only when they contain ``fhir-pts.org`` (every code,
  questionnaire canonical of ours), the host of a plugin instrument's questionnaire canonical or total-code
  system, or (Observation) a ConceptMap source code;
- every other resource type is skipped;
- a line whose type cannot be read from its start (it does not begin with ``{"resourceType":"``) is parsed,
  so that malformed lines are reported.

Hosts, not full URLs, are searched, so JSON-escaped slashes (``https:\\/\\/``) do not hide a line.

Limits (documented in ``docs/inputs.md``): a skipped line is not validated, so a line that starts like a
resource but is truncated is only reported when it is a candidate or the last line of a file; a code written
with ``\\u`` escapes for some but not all of its non-ASCII characters (no serialiser does that) is not seen.
``tests/engines/test_prefilter_site_codes.py`` proves, for site codes, that every serialisation gives the
facts of the unfiltered reading.

The filter works on whole blocks: when every line of a block has the same resource type (the Bulk Data
layout: one file per type; checked with one regular-expression search for a newline *not* followed by that
type's line start), the block is searched once per needle with :meth:`bytes.find` instead of line by line,
which is what makes it fast (~1 GB/s per core with the reading and the line counting).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlparse

import orjson

from fhir_pts import codes

#: The two ways serialisers start a resource line.
RESOURCE_LINE_PREFIXES: tuple[bytes, ...] = (b'{"resourceType":"', b'{"resourceType": "')
_PREFIXES = RESOURCE_LINE_PREFIXES

ALWAYS_CANDIDATES: frozenset[bytes] = frozenset({b"Patient", b"AdverseEvent", b"Bundle"})


def _host(url: str) -> bytes:
    return urlparse(url).netloc.encode()


def newlines(data: bytes, start: int = 0, end: int | None = None) -> int:
    """The number of ``\\n`` in ``data[start:end]``.

    ``bytes.count`` tests one byte at a time for a one-byte needle (~1 GB/s); deleting the newlines with
    :meth:`bytes.replace`, which jumps from one to the next with ``memchr``, counts them ~20x faster in
    NDJSON, whose lines are long.
    """
    if start or end is not None:
        data = data[start:end]
    return len(data) - len(data.replace(b"\n", b""))


@lru_cache(maxsize=64)
def _other_line_start(prefix: bytes) -> re.Pattern[bytes]:
    """A newline *not* followed by ``prefix``: found in a block unless every line starts with ``prefix``
    (the regular expression engine jumps to each newline, ~3 GB/s)."""
    return re.compile(b"\n(?!" + re.escape(prefix) + b")")


def quoted_forms(code: str) -> set[bytes]:
    """Every way a JSON serialiser may write the string ``code``: raw UTF-8, ``\\u`` escapes of non-ASCII
    characters (lower or upper case hex), each with ``/`` as is or escaped as ``\\/`` (all valid JSON)."""
    raw = orjson.dumps(code)
    ascii_lower = json.dumps(code, ensure_ascii=True).encode()
    ascii_upper = re.sub(rb"\\u[0-9a-f]{4}", lambda m: m.group(0)[:2] + m.group(0)[2:].upper(), ascii_lower)
    forms = {raw, ascii_lower, ascii_upper}
    return forms | {form.replace(b"/", b"\\/") for form in forms}


class BlockScan(NamedTuple):
    """What the pre-filter found in a block: its candidate lines, its physical lines and its non-blank lines."""

    candidates: list[tuple[int, bytes]]
    physical_lines: int
    resources: int


@dataclass(frozen=True)
class CandidateFilter:
    """Byte-level test of whether an NDJSON line can carry a contract fact.

    ``needles`` maps each coded resource type (``Procedure``, ``Observation``, ``QuestionnaireResponse``) to
    the byte strings one of which a relevant line of that type must contain. Build it with
    :meth:`for_contract`.
    """

    needles: dict[bytes, tuple[bytes, ...]]
    always: frozenset[bytes] = ALWAYS_CANDIDATES

    @classmethod
    def for_contract(cls, extra_codes: Iterable[str] = (), instrument_hosts: Iterable[str] = ()) -> CandidateFilter:
        """The filter for the contract's codes, plus ``extra_codes`` (ConceptMap source codes) as quoted strings
        and ``instrument_hosts`` (hosts of the plugins' questionnaire canonicals and total-code systems)."""
        pts = _host(codes.CANONICAL_BASE)
        extra = tuple(sorted({variant for code in extra_codes for variant in quoted_forms(code)}))
        hosts = tuple(sorted({host.encode() for host in instrument_hosts} - {pts}))
        return cls(
            needles={
                b"Procedure": (pts, _host(codes.CPT), _host(codes.ICD10PCS), *extra),
                b"Observation": (pts, *hosts, *extra),
                b"QuestionnaireResponse": (pts, *hosts),
            }
        )

    # --- one line -------------------------------------------------------------------------------
    def line_type(self, line: bytes) -> bytes | None:
        """The resource type written at the start of ``line``, or ``None`` when the line does not start so."""
        for prefix in _PREFIXES:
            if line.startswith(prefix):
                end = line.find(b'"', len(prefix))
                return line[len(prefix) : end] if end > 0 else None
        return None

    def is_candidate(self, line: bytes) -> bool:
        """Whether ``line`` (one NDJSON line, no newline needed) must be parsed."""
        resource_type = self.line_type(line)
        if resource_type is None:
            return bool(line.strip())  # unusual start: parse it (and report it when malformed)
        if resource_type in self.always:
            return True
        needles = self.needles.get(resource_type)
        return needles is not None and any(needle in line for needle in needles)

    # --- a block of lines -----------------------------------------------------------------------
    def candidate_lines(self, block: bytes) -> list[tuple[int, bytes]]:
        """``(line_index, line)`` of the candidate lines of ``block`` (0-based index of the line), in order.

        ``block`` holds whole lines separated by ``\\n`` (the last one may lack its newline). Lines are
        returned without their newline.
        """
        return self.scan(block).candidates

    def scan(self, block: bytes) -> BlockScan:
        """The candidate lines of ``block`` and its line counts (see :class:`BlockScan`).

        Two paths: when every line has the same type (the Bulk Data layout), that type's needles are searched
        in the whole block; otherwise the lines are tested one by one (measured faster, for mixed types, than
        searching every type's needles in the whole block).
        """
        if not block:
            return BlockScan([], 0, 0)
        n_newlines = newlines(block)
        n_lines = n_newlines if block.endswith(b"\n") else n_newlines + 1
        style = next((prefix for prefix in _PREFIXES if block.startswith(prefix)), None)
        if style is not None:
            first_type = self.line_type(block)
            prefix = style + (first_type or b"") + b'"'
            if first_type is not None and _other_line_start(prefix).search(block, 0, len(block) - 1) is None:
                # Homogeneous block: every line is a first_type resource (so none is blank).
                if first_type in self.always:
                    candidates = list(enumerate(block.rstrip(b"\n").split(b"\n")))
                else:
                    needles = self.needles.get(first_type)
                    candidates = self._search_block(block, needles) if needles is not None else []
                return BlockScan(candidates, n_lines, n_lines)
        return self._scan_lines(block, n_lines)

    def _scan_lines(self, block: bytes, n_lines: int) -> BlockScan:
        """Line by line: :meth:`is_candidate` inlined (this loop runs for every line of a mixed export)."""
        candidates: list[tuple[int, bytes]] = []
        resources = 0
        always, needles_of = self.always, self.needles
        short, spaced = _PREFIXES
        for index, line in enumerate(block.split(b"\n")[:n_lines]):
            end = -1
            if line.startswith(short):
                end = line.find(b'"', 17)
                resource_type = line[17:end]
            elif line.startswith(spaced):
                end = line.find(b'"', 18)
                resource_type = line[18:end]
            if end < 0 and line.strip():
                resources += 1
                candidates.append((index, line))  # unusual start: parse it (and report it when malformed)
                continue
            if end < 0:
                continue  # blank
            resources += 1
            if resource_type in always:
                candidates.append((index, line))
            else:
                needles = needles_of.get(resource_type)
                if needles is not None:
                    for needle in needles:
                        if needle in line:
                            candidates.append((index, line))
                            break
        return BlockScan(candidates, n_lines, resources)

    @staticmethod
    def _search_block(block: bytes, needles: tuple[bytes, ...]) -> list[tuple[int, bytes]]:
        starts: set[int] = set()
        for needle in needles:
            hit = block.find(needle)
            while hit >= 0:
                start = block.rfind(b"\n", 0, hit) + 1
                end = block.find(b"\n", hit)
                if end < 0:
                    end = len(block)
                starts.add(start)
                hit = block.find(needle, end)
        found: list[tuple[int, bytes]] = []
        index = 0
        previous = 0
        for start in sorted(starts):
            index += newlines(block, previous, start)
            previous = start
            end = block.find(b"\n", start)
            found.append((index, block[start : end if end >= 0 else len(block)]))
        return found
