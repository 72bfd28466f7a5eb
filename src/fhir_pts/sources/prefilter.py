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
  questionnaire canonical of ours) or a ConceptMap source code;
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
_PREFIXES: tuple[bytes, ...] = (b'{"resourceType":"', b'{"resourceType": "')

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
    def for_contract(cls, extra_codes: Iterable[str] = ()) -> CandidateFilter:
        """The filter for the contract's codes, plus ``extra_codes`` (ConceptMap source codes) as quoted strings."""
        pts = _host(codes.CANONICAL_BASE)
        extra = tuple(sorted({orjson.dumps(code) for code in extra_codes}))
        return cls(
            needles={
                b"Procedure": (pts, _host(codes.CPT), _host(codes.ICD10PCS), *extra),
                b"Observation": (pts, *extra),
                b"QuestionnaireResponse": (pts,),
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

        Three paths, fastest first: every line of one type (search that type's needles in the whole block);
        every line starting with a resource type (search every needle in the whole block, then check the
        lines found one by one); otherwise line by line.
        """
        if not block:
            return BlockScan([], 0, 0)
        n_newlines = block.count(b"\n")
        n_lines = n_newlines if block.endswith(b"\n") else n_newlines + 1
        style = next((prefix for prefix in _PREFIXES if block.startswith(prefix)), None)
        if style is not None:
            first_type = self.line_type(block)
            prefix = style + (first_type or b"") + b'"'
            if first_type is not None and block.count(b"\n" + prefix) + 1 == n_lines:
                # Homogeneous block: every line is a first_type resource (so none is blank).
                if first_type in self.always:
                    candidates = list(enumerate(block.rstrip(b"\n").split(b"\n")))
                else:
                    needles = self.needles.get(first_type)
                    candidates = self._search_block(block, needles) if needles is not None else []
                return BlockScan(candidates, n_lines, n_lines)
            if block.count(b"\n" + style) + 1 == n_lines:
                # Mixed types, but every line starts with its resource type (so none is blank).
                hits = self._search_block(block, self._all_needles(style))
                return BlockScan([hit for hit in hits if self.is_candidate(hit[1])], n_lines, n_lines)
        candidates = []
        resources = 0
        for index, line in enumerate(block.split(b"\n")[:n_lines]):
            if line.strip():
                resources += 1
                if self.is_candidate(line):
                    candidates.append((index, line))
        return BlockScan(candidates, n_lines, resources)

    def _all_needles(self, style: bytes) -> tuple[bytes, ...]:
        """Every needle of every type, plus the starts of the lines that are always candidates."""
        needles = {needle for group in self.needles.values() for needle in group}
        needles.update(style + resource_type + b'"' for resource_type in self.always)
        return tuple(sorted(needles))

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
