"""Disclosure control: the minimum cell size of every aggregate that leaves a site.

One setting, shared by everything that shows counts to someone who may not see patient-level data:
``fhir-pts serve`` (``$evaluate-measure``) and ``fhir-pts pool`` (``--min-cell-count``). Both take it through
the command line's ``add_min_cell_count_argument`` (:mod:`fhir_pts.options`), so the option, its default
and its meaning are the same everywhere.

**Default: 10.** SMART/Cumulus, the federated EHR-analytics platform whose counts leave hospitals the same way,
drops every bin of fewer than 10 patients (``cumulus-library``'s ``min_subject`` of 10); the US CMS cell-size
suppression policy uses 11, many European registries 5 to 10. 10 is a safe default for a cohort of
stented patients (a rare procedure: a cell of 3 in one centre's year is re-identifiable from the date alone).

**The rule.** A count ``c`` of patients is *disclosive* when ``0 < c < min_cell_count``: zero is shown (it
names nobody), and so is any count of at least ``min_cell_count``. A disclosive count is not shown; its place
says so (in a MeasureReport: the ``data-absent-reason`` extension with code ``masked``, see
:func:`masked`), and every figure computed from it (a proportion whose numerator or denominator is
suppressed, a median of fewer patients) is suppressed with it. ``min_cell_count=1`` (or ``0``, the same:
no count is below it) turns suppression off (every count ≥ 1 is shown); it is meant for a site's own
analysts, or for sites that agreed to pool exactly (``fhir-pts run --min-cell-count 0``), never for a server
reachable by others.

A selection of patients (``serve``'s ``periodStart`` / ``periodEnd``) is refused, rather than answered with
suppressed cells, when it holds fewer than ``min_cell_count`` patients or when it would let two answers be
subtracted to isolate fewer: see :func:`selection_blocks`.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, TypeVar

__all__ = [
    "DATA_ABSENT_REASON",
    "MIN_CELL_COUNT",
    "check_min_cell_count",
    "is_disclosive",
    "masked",
    "selection_blocks",
    "suppress_count",
]

#: The default minimum cell size (patients): counts 1..9 are suppressed (Cumulus' minimum bin of 10).
MIN_CELL_COUNT = 10
DATA_ABSENT_REASON = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"

K = TypeVar("K", bound=Hashable)


def check_min_cell_count(value: Any) -> int:
    """``value`` as a minimum cell size (an integer ≥ 0; 0 and 1 both turn suppression off); ``ValueError``
    naming what was expected otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError(f"the minimum cell count must be a whole number >= 0, not {value!r}")
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"the minimum cell count must be a whole number >= 0, not {value!r}") from None
    if number < 0:
        raise ValueError(f"the minimum cell count must be >= 0 (0 or 1 turn suppression off), not {number}")
    return number


def is_disclosive(count: int, min_cell_count: int = MIN_CELL_COUNT) -> bool:
    """True when ``count`` patients are too few to show: ``0 < count < min_cell_count``."""
    return 0 < count < min_cell_count


def suppress_count(count: int, min_cell_count: int = MIN_CELL_COUNT) -> int | None:
    """``count`` when it may be shown, ``None`` when it is disclosive (see :func:`is_disclosive`)."""
    return None if is_disclosive(count, min_cell_count) else count


def masked() -> dict[str, Any]:
    """The FHIR extension marking a suppressed value (``data-absent-reason`` = ``masked``: "suppressed due to
    security, privacy or related reasons"), e.g. as ``"_count": {"extension": [masked()]}``."""
    return {"url": DATA_ABSENT_REASON, "valueCode": "masked"}


def selection_blocks(keys: Sequence[K], min_cell_count: int = MIN_CELL_COUNT) -> list[list[K]]:
    """The sorted ``keys`` (one per patient, e.g. the index date) cut into consecutive blocks of at least
    ``min_cell_count`` patients each, never between two equal keys.

    A range selection (all patients with ``lo <= key <= hi``) is safe to answer when it is a union of whole
    blocks: then any two answered selections differ by whole blocks, i.e. by ``min_cell_count`` patients or
    none, and no subtraction of two answers isolates fewer. Blocks are cut greedily from the smallest key; a
    last block shorter than ``min_cell_count`` is merged into the one before. Fewer than ``min_cell_count``
    keys in all give one block (too small to answer at all).
    """
    ordered = sorted(keys)  # type: ignore[type-var]
    blocks: list[list[K]] = []
    current: list[K] = []
    for i, key in enumerate(ordered):
        current.append(key)
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        if len(current) >= min_cell_count and (nxt is None or nxt != key):
            blocks.append(current)
            current = []
    if current:
        if blocks:
            blocks[-1].extend(current)
        else:
            blocks.append(current)
    return blocks


