"""The run's vocabulary: the contract's codes plus the site-local codes the given ConceptMaps map to them.

One :class:`Vocabulary` is built once per run (from ``--concept-map`` files and server-hosted canonicals) and
handed to every door, so that files, FHIR search, Bulk ``$export`` (``_typeFilter`` and the narrowing step),
the byte pre-filter, the adapters and any engine recognise exactly the same codings:

- forwards, for reading: :meth:`Vocabulary.expanded` — a resource's codings and every coding they map to
  (the adapters and every client-side re-check match contract codes against these);
- backwards, for asking: :meth:`Vocabulary.codings_for` — every coding that *is*, or maps to, one of a set of
  contract codings (search parameters, ``_typeFilter``);
- :attr:`Vocabulary.source_codes` — the local codes, for the byte-level pre-filter;
- :attr:`Vocabulary.sources` — where each ConceptMap came from (file SHA-256, or canonical and version), for
  the report's provenance and the MeasureReports.

ConceptMaps (FHIR R4 shape): ``group[].source`` / ``group[].target`` (code systems),
``group[].element[].code`` (the local code), ``element.target[].code`` and ``target.equivalence``. Every
equivalence maps except ``unmatched`` and ``disjoint`` (contract §1). R5 files (``relationship`` instead of
``equivalence``) are read too: ``not-related-to`` does not map. A mapping is one step (a local code maps to
the codes its ConceptMaps name; those are not translated again).

This module is pure (no network; files are read only by :meth:`Vocabulary.from_files`), below sources,
adapters and engines, which all import it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import orjson

from fhir_pts import codes
from fhir_pts.codes import Coding
from fhir_pts.errors import InputError
from fhir_pts.instruments.builtin import BUILTIN_INDEX, BUILTIN_INSTRUMENTS
from fhir_pts.instruments.model import Instrument, InstrumentIndex

#: R4 equivalences (and the R5 relationship) that do *not* map.
NON_MAPPING: frozenset[str] = frozenset({"unmatched", "disjoint", "not-related-to"})


def codings(concept: Any) -> Iterator[Coding]:
    """The ``(system, code)`` pairs of a CodeableConcept, a Coding, or a list of either.

    ``display`` is never looked at; codings without a string system and code are skipped.
    """
    if isinstance(concept, list):
        for item in concept:
            yield from codings(item)
        return
    if not isinstance(concept, dict):
        return
    if "coding" in concept:
        listed = concept.get("coding")
        for coding in listed if isinstance(listed, list) else [listed] if isinstance(listed, dict) else ():
            if isinstance(coding, dict):
                system, code = coding.get("system"), coding.get("code")
                if isinstance(system, str) and isinstance(code, str):
                    yield system, code
    elif isinstance(concept.get("system"), str) and isinstance(concept.get("code"), str):
        yield concept["system"], concept["code"]


class ConceptMapTranslator:
    """Translate a local ``(system, code)`` into the codings it maps to.

    >>> cm = {"resourceType": "ConceptMap", "group": [{"source": "urn:local", "target": "http://snomed.info/sct",
    ...       "element": [{"code": "OK", "target": [{"code": "385669000", "equivalence": "equivalent"}]}]}]}
    >>> ConceptMapTranslator.from_resources([cm]).translate("urn:local", "OK")
    [('http://snomed.info/sct', '385669000')]
    """

    def __init__(self) -> None:
        self._map: dict[Coding, list[Coding]] = {}

    @classmethod
    def from_resources(cls, concept_maps: Iterable[dict[str, Any]], origin: str = "ConceptMap") -> ConceptMapTranslator:
        """A translator from ConceptMap resources already parsed (dicts).

        :raises InputError: a resource is not a usable ConceptMap (the message names ``origin`` and the field).
        """
        translator = cls()
        for concept_map in concept_maps:
            translator.add(concept_map, origin)
        return translator

    @classmethod
    def from_files(cls, paths: Sequence[Path | str]) -> ConceptMapTranslator:
        """A translator from ConceptMap JSON files (a ConceptMap, or a Bundle of ConceptMaps, per file).

        :raises InputError: a file is missing, unreadable, not JSON, or not a usable ConceptMap.
        """
        translator = cls()
        for path in paths:
            for concept_map in read_concept_map_file(path)[0]:
                translator.add(concept_map, str(path))
        return translator

    def add(self, concept_map: Any, origin: str = "ConceptMap") -> None:
        """Add the mappings of one ConceptMap resource.

        :raises InputError: not a ConceptMap, no ``group``, a group without ``source``/``target`` system, an
            element without ``code``.
        """
        if not isinstance(concept_map, dict) or concept_map.get("resourceType") != "ConceptMap":
            raise InputError(f"{origin}: expected a FHIR ConceptMap (resourceType 'ConceptMap')")
        name = f"ConceptMap/{concept_map.get('id', '?')}"
        groups = concept_map.get("group")
        if not isinstance(groups, list) or not groups:
            raise InputError(f"{origin}: {name}: 'group' must be a non-empty list")
        for g, group in enumerate(groups):
            if not isinstance(group, dict):
                raise InputError(f"{origin}: {name}: group[{g}] must be an object")
            source, target = group.get("source"), group.get("target")
            if not isinstance(source, str) or not isinstance(target, str):
                raise InputError(f"{origin}: {name}: group[{g}] needs a 'source' and a 'target' code system (uri)")
            elements = group.get("element")
            for e, element in enumerate(elements if isinstance(elements, list) else ()):
                code = element.get("code") if isinstance(element, dict) else None
                if not isinstance(code, str):
                    raise InputError(f"{origin}: {name}: group[{g}].element[{e}] needs a 'code'")
                targets = element.get("target")
                for mapped in targets if isinstance(targets, list) else ():
                    if not isinstance(mapped, dict) or not isinstance(mapped.get("code"), str):
                        continue
                    equivalence = mapped.get("equivalence", mapped.get("relationship", "equivalent"))
                    if equivalence in NON_MAPPING:
                        continue
                    mapped_to = self._map.setdefault((source, code), [])
                    if (target, mapped["code"]) not in mapped_to:
                        mapped_to.append((target, mapped["code"]))

    def translate(self, system: str, code: str) -> list[tuple[str, str]]:
        """The ``(system, code)`` pairs that ``(system, code)`` maps to (empty when none)."""
        return list(self._map.get((system, code), ()))

    def items(self) -> Iterator[tuple[Coding, tuple[Coding, ...]]]:
        """Every local coding that maps somewhere, with the codings it maps to."""
        for source, targets in self._map.items():
            yield source, tuple(targets)

    @property
    def source_codes(self) -> frozenset[str]:
        """Every local code that maps somewhere (the byte-level pre-filter looks for them)."""
        return frozenset(code for (_, code) in self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"ConceptMapTranslator({len(self)} source codings)"


def read_concept_map_file(path: Path | str) -> tuple[list[dict[str, Any]], str]:
    """The ConceptMaps of one JSON file (a ConceptMap, or a Bundle of them) and the file's SHA-256 (hex).

    :raises InputError: the file is missing, unreadable, not JSON, or a Bundle without a ConceptMap.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: ConceptMap file cannot be read ({error.strerror or error})") from error
    try:
        document = orjson.loads(data)
    except orjson.JSONDecodeError as error:
        raise InputError(f"{path}: ConceptMap file is not valid JSON ({error})") from error
    if isinstance(document, dict) and document.get("resourceType") == "Bundle":
        entries = document.get("entry")
        resources = (
            [entry.get("resource") for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []
        )
        maps = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "ConceptMap"]
        if not maps:
            raise InputError(f"{path}: Bundle holds no ConceptMap")
        return maps, hashlib.sha256(data).hexdigest()
    return [document], hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class MapSource:
    """Where one ConceptMap of the run came from (provenance).

    ``kind`` ``file``: ``location`` is the path given, ``sha256`` the file's digest. ``kind`` ``server``:
    ``location`` is the FHIR server's ``ConceptMap/<id>`` URL it was read from. ``url`` / ``version`` are the
    ConceptMap's own canonical and business version when it has them.
    """

    kind: Literal["file", "server"]
    location: str
    url: str | None = None
    version: str | None = None
    sha256: str | None = None

    @property
    def canonical(self) -> str | None:
        """``url|version`` (or ``url``) of the ConceptMap, ``None`` when it has no ``url``."""
        if self.url is None:
            return None
        return f"{self.url}|{self.version}" if self.version else self.url

    def label(self) -> str:
        """One line for the report: the canonical (if any), then the file and its SHA-256 or the server URL."""
        where = f"file {self.location} (sha256 {self.sha256})" if self.kind == "file" else f"server {self.location}"
        return f"{self.canonical} — {where}" if self.canonical else where

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("kind", self.kind), ("location", self.location), ("url", self.url),
                                  ("version", self.version), ("sha256", self.sha256)) if v is not None}  # fmt: skip


def _source_of(concept_map: dict[str, Any], kind: Literal["file", "server"], location: str,
               sha256: str | None = None) -> MapSource:  # fmt: skip
    url, version = concept_map.get("url"), concept_map.get("version")
    return MapSource(kind, location, url if isinstance(url, str) else None,
                     version if isinstance(version, str) else None, sha256)  # fmt: skip


def is_canonical(reference: Path | str) -> bool:
    """Whether a ``--concept-map`` argument is a canonical URL (``https://…/ConceptMap/x`` or ``url|version``)
    to read from the FHIR server, rather than a file."""
    return str(reference).startswith(("http://", "https://"))


#: Reads one canonical reference (``url`` or ``url|version``) from a server: the ConceptMap and its provenance.
CanonicalReader = Callable[[str], tuple[dict[str, Any], MapSource]]


class Vocabulary:
    """Matches codings against the contract's codes, directly or through the run's ConceptMaps.

    A coding matches a contract coding if it *is* one, or if a loaded ConceptMap maps it to one. Build it once
    (:meth:`from_files`, :meth:`from_resources`, or ``Vocabulary()`` for the contract's codes alone) and pass
    the same object to every door. It is picklable (worker processes, Spark executors).

    ``instruments``: the clinical instruments whose responses and totals are read (Villalta and CIVIQ-20 by
    default; a run adds the plugins', :meth:`with_instruments`); ``instrument_index`` is the adapters' view.
    """

    __slots__ = ("_reverse", "concepts", "instrument_index", "instruments", "sources")

    def __init__(
        self,
        concepts: ConceptMapTranslator | None = None,
        sources: Sequence[MapSource] = (),
        instruments: Sequence[Instrument] = BUILTIN_INSTRUMENTS,
    ) -> None:
        self.concepts = concepts if concepts is not None and len(concepts) else None
        self.sources: tuple[MapSource, ...] = tuple(sources)
        self.instruments: tuple[Instrument, ...] = tuple(instruments)
        self.instrument_index = (
            BUILTIN_INDEX if self.instruments == BUILTIN_INSTRUMENTS else InstrumentIndex.of(self.instruments)
        )
        reverse: dict[Coding, set[Coding]] = {}
        if self.concepts is not None:
            for source, targets in self.concepts.items():
                for target in targets:
                    reverse.setdefault(target, set()).add(source)
        self._reverse = reverse

    def __getstate__(self) -> tuple[ConceptMapTranslator | None, tuple[MapSource, ...], tuple[Instrument, ...]]:
        return self.concepts, self.sources, self.instruments

    def __setstate__(
        self, state: tuple[ConceptMapTranslator | None, tuple[MapSource, ...], tuple[Instrument, ...]]
    ) -> None:
        self.__init__(*state)  # type: ignore[misc]

    def with_instruments(self, instruments: Sequence[Instrument]) -> Vocabulary:
        """The same vocabulary reading ``instruments`` (e.g. the installed plugins')."""
        if tuple(instruments) == self.instruments:
            return self
        return Vocabulary(self.concepts, self.sources, instruments)

    # --- building ---------------------------------------------------------------------------------
    @classmethod
    def of(cls, concepts: Vocabulary | ConceptMapTranslator | None) -> Vocabulary:
        """``concepts`` as a Vocabulary (a translator is wrapped; ``None`` gives the contract's codes alone)."""
        if isinstance(concepts, Vocabulary):
            return concepts
        return cls(concepts)

    @classmethod
    def from_files(cls, paths: Sequence[Path | str]) -> Vocabulary:
        """The vocabulary of ConceptMap JSON files (a ConceptMap, or a Bundle of ConceptMaps, per file).

        :raises InputError: a file is missing, unreadable, not JSON, or not a usable ConceptMap.
        """
        return cls.build(paths)

    @classmethod
    def build(cls, references: Sequence[Path | str], read_canonical: CanonicalReader | None = None) -> Vocabulary:
        """The run's vocabulary from ``--concept-map`` arguments, in their order: files, and canonicals read
        with ``read_canonical`` (the FHIR server's ``ConceptMap?url=``).

        :raises InputError: a file is unusable, a canonical is given but there is no server to read it from,
            or the server does not hold it.
        """
        loaded: list[tuple[dict[str, Any], MapSource]] = []
        for reference in references:
            if is_canonical(reference):
                if read_canonical is None:
                    raise InputError(
                        f"--concept-map {reference}: a canonical URL is read from the FHIR server; give --server "
                        "URL too, or give the ConceptMap as a JSON file"
                    )
                loaded.append(read_canonical(str(reference)))
            else:
                maps, digest = read_concept_map_file(reference)
                loaded.extend((cm, _source_of(cm, "file", str(reference), digest)) for cm in maps)
        return cls.from_resources(loaded)

    @classmethod
    def from_resources(cls, maps: Iterable[tuple[dict[str, Any], MapSource]]) -> Vocabulary:
        """The vocabulary of ConceptMap resources already parsed, each with where it came from.

        :raises InputError: a resource is not a usable ConceptMap (the message names its origin and field).
        """
        translator = ConceptMapTranslator()
        sources: list[MapSource] = []
        for concept_map, source in maps:
            translator.add(concept_map, source.location)
            sources.append(source)
        return cls(translator, sources)

    def merged(self, other: Vocabulary) -> Vocabulary:
        """One vocabulary holding the mappings and sources of both."""
        translator = ConceptMapTranslator()
        for vocabulary in (self, other):
            if vocabulary.concepts is not None:
                for source, targets in vocabulary.concepts.items():
                    for target in targets:
                        mapped = translator._map.setdefault(source, [])
                        if target not in mapped:
                            mapped.append(target)
        return Vocabulary(translator, (*self.sources, *other.sources), self.instruments)

    # --- reading (forwards) -----------------------------------------------------------------------
    def expand(self, coding: Coding) -> Iterator[Coding]:
        """The coding itself, then every coding it maps to."""
        yield coding
        if self.concepts is not None:
            yield from self.concepts.translate(*coding)

    def expanded(self, concept: Any) -> list[Coding]:
        """Every coding of ``concept`` (see :func:`codings`) and every coding they map to, in order."""
        if self.concepts is None:
            return list(codings(concept))
        return [mapped for coding in codings(concept) for mapped in self.expand(coding)]

    def matches(self, concept: Any, targets: Collection[Coding] | Callable[[Coding], bool]) -> bool:
        """Whether a coding of ``concept``, or one it maps to, is in ``targets`` (a set or a predicate)."""
        test = targets if callable(targets) else targets.__contains__
        return any(test(coding) for coding in self.expanded(concept))

    # --- asking (backwards) -----------------------------------------------------------------------
    def codings_for(self, targets: Iterable[Coding]) -> frozenset[Coding]:
        """``targets`` and every local coding a ConceptMap maps to one of them (for search, ``_typeFilter``)."""
        wanted = frozenset(targets)
        found = set(wanted)
        for target in wanted:
            found.update(self._reverse.get(target, ()))
        return frozenset(found)

    def local_codings_where(self, predicate: Callable[[Coding], bool]) -> frozenset[Coding]:
        """Every local coding that maps to a coding ``predicate`` accepts (for contract codes given as patterns)."""
        return frozenset(source for target, sources in self._reverse.items() if predicate(target) for source in sources)

    @property
    def index_procedure_codings(self) -> frozenset[Coding]:
        """Every coding that marks an index stenting Procedure (contract §1), local ones included."""
        return self.codings_for(codes.VENOUS_STENTING)

    @property
    def observation_codes(self) -> frozenset[Coding]:
        """The ``Observation.code`` codings read: the contract's (patency, score totals) and the total codes of
        the vocabulary's other instruments."""
        return codes.OBSERVATION_CODES | frozenset(self.instrument_index.totals)

    @property
    def observation_codings(self) -> frozenset[Coding]:
        """Every ``Observation.code`` the run reads (patency, score totals), local ones included."""
        return self.codings_for(self.observation_codes)

    @property
    def source_codes(self) -> frozenset[str]:
        """Every local code that maps somewhere (the byte-level pre-filter looks for them)."""
        return self.concepts.source_codes if self.concepts is not None else frozenset()

    # --- provenance -------------------------------------------------------------------------------
    def provenance(self) -> list[str]:
        """One line per ConceptMap used (see :meth:`MapSource.label`), in the order given."""
        return [source.label() for source in self.sources]

    def __repr__(self) -> str:
        n = len(self.concepts) if self.concepts is not None else 0
        return f"Vocabulary({n} local codings from {len(self.sources)} ConceptMaps)"
