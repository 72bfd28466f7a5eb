"""Site-local codes mapped to the contract's codes through FHIR R4 ``ConceptMap`` files (``--concept-map``).

R4 shape read: ``group[].source`` / ``group[].target`` (code systems), ``group[].element[].code`` (the local
code), ``element.target[].code`` and ``target.equivalence``. Every equivalence maps except ``unmatched`` and
``disjoint`` (contract §1). R5 files (``relationship`` instead of ``equivalence``) are read too:
``not-related-to`` does not map.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import orjson

from fhir_pts.codes import Coding
from fhir_pts.sources.files import InputError

#: R4 equivalences (and the R5 relationship) that do *not* map.
NON_MAPPING: frozenset[str] = frozenset({"unmatched", "disjoint", "not-related-to"})


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
        for raw in paths:
            path = Path(raw)
            try:
                document = orjson.loads(path.read_bytes())
            except OSError as error:
                raise InputError(f"{path}: ConceptMap file cannot be read ({error.strerror or error})") from error
            except orjson.JSONDecodeError as error:
                raise InputError(f"{path}: ConceptMap file is not valid JSON ({error})") from error
            if isinstance(document, dict) and document.get("resourceType") == "Bundle":
                entries = document.get("entry")
                resources = (
                    [entry.get("resource") for entry in entries if isinstance(entry, dict)]
                    if isinstance(entries, list)
                    else []
                )
                maps = [r for r in resources if isinstance(r, dict) and r.get("resourceType") == "ConceptMap"]
                if not maps:
                    raise InputError(f"{path}: Bundle holds no ConceptMap")
            else:
                maps = [document]
            for concept_map in maps:
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

    @property
    def source_codes(self) -> frozenset[str]:
        """Every local code that maps somewhere (the byte-level pre-filter looks for them)."""
        return frozenset(code for (_, code) in self._map)

    def __len__(self) -> int:
        return len(self._map)

    def __repr__(self) -> str:
        return f"ConceptMapTranslator({len(self)} source codings)"
