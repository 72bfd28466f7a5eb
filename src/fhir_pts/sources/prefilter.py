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

The filter works on whole blocks: the block's newlines are found once (numpy, no copy of the block); when
every line starts with the first line's ``{"resourceType":"T"`` (the Bulk Data layout: one file per type; checked
byte by byte at every line start), the block is searched once per needle (the C library's ``memmem``, else
:meth:`bytes.find`) instead of line by line, and a hit's line is found by bisecting the newlines. That is what
makes it fast (~3 GB/s per core, the reading included); a block of mixed types is tested line by line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlparse

import orjson

from fhir_pts import codes

if TYPE_CHECKING:
    from fhir_pts.sources.blockscan import Buffer

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


#: Bytes of a block's start read to find its first line's resource type (longer type names: line by line).
_HEAD_BYTES = 256


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

    def scan(self, block: Buffer) -> BlockScan:
        """The candidate lines of ``block`` and its line counts (see :class:`BlockScan`).

        ``block`` is any bytes-like object (``bytes``, ``bytearray``, a ``memoryview`` of a reused read buffer):
        it is not kept, the candidate lines are copied out as ``bytes``.

        Two paths: when every line has the same type (the Bulk Data layout), that type's needles are searched
        in the whole block; otherwise the lines are tested one by one (measured faster, for mixed types, than
        searching every type's needles in the whole block).
        """
        if not len(block):
            return BlockScan([], 0, 0)
        from fhir_pts.sources.blockscan import Lines  # numpy: not for the commands that read nothing

        lines = Lines(block)
        n_lines = lines.count
        head = lines.head(_HEAD_BYTES)
        style = next((prefix for prefix in _PREFIXES if head.startswith(prefix)), None)
        if style is not None:
            first_type = self.line_type(head)
            if first_type is not None and lines.all_start_with(style + first_type + b'"'):
                # Homogeneous block: every line is a first_type resource (so none is blank).
                if first_type in self.always:
                    candidates = list(enumerate(lines.all()))
                else:
                    needles = self.needles.get(first_type)
                    candidates = lines.containing(needles) if needles is not None else []
                return BlockScan(candidates, n_lines, n_lines)
        return self._scan_lines(lines.data(), n_lines)

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
