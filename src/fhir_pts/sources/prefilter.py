"""A cheap byte-level pre-filter for NDJSON exports: find the few lines that can matter before parsing any.

A Bulk Data export is mostly vital signs, labs, encounters and claims that carry none of the contract's codes.
Parsing every line costs ~3 µs (orjson); searching a block of lines for a few byte strings costs a few
nanoseconds per line. :class:`CandidateFilter` decides, from the raw bytes only, whether a line *can* be
relevant (it never drops a relevant line that is written in the usual way; it may keep an irrelevant one — the
adapters, which see the parsed resource, have the last word):

- ``Patient`` and ``AdverseEvent`` lines are always candidates (so is a ``Bundle`` line, expanded later);
- ``Procedure`` lines only when they contain the host of one of the contract's procedure code systems
  (``fhir-pts.org``, ``www.ama-assn.org`` for CPT, ``www.cms.gov`` for ICD-10-PCS) or a source code of a loaded
  ConceptMap (``"code"``, JSON-quoted);
- ``Observation`` and ``QuestionnaireResponse`` lines only when they contain ``fhir-pts.org`` (every code,
  questionnaire canonical of ours), the host of a plugin instrument's questionnaire canonical or total-code
  system, or (Observation) a ConceptMap source code;
- every other resource type is skipped;
- a line whose type cannot be read from its start (it does not begin with ``{"resourceType":"``) is parsed,
  so that malformed lines are reported.

Hosts, not full URLs, are searched, so JSON-escaped slashes (``https:\\/\\/``) do not hide a line.

Limits (documented in ``docs/inputs.md``): a skipped line is not validated, so a line that starts like a
resource but is truncated is only reported when it is a candidate or the last line of a file; codes written
with ``\\u`` escapes are not seen.

The filter works on whole blocks: when every line of a block has the same resource type (the Bulk Data
layout: one file per type), the block is searched once per needle with :meth:`bytes.find` instead of line by
line, which is what makes it fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
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
        extra = tuple(sorted({orjson.dumps(code) for code in extra_codes}))
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
        n_newlines = block.count(b"\n")
        n_lines = n_newlines if block.endswith(b"\n") else n_newlines + 1
        style = next((prefix for prefix in _PREFIXES if block.startswith(prefix)), None)
        if style is not None:
            first_type = self.line_type(block)
            prefix = style + (first_type or b"") + b'"'
            last_start = block.rfind(b"\n", 0, len(block) - 1) + 1
            if (
                first_type is not None
                and block.startswith(prefix, last_start)  # cheap early "no" for mixed blocks
                and block.count(b"\n" + prefix) + 1 == n_lines
            ):
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
            index += block.count(b"\n", previous, start)
            previous = start
            end = block.find(b"\n", start)
            found.append((index, block[start : end if end >= 0 else len(block)]))
        return found
