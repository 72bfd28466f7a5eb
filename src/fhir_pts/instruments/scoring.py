"""Scoring of the two questionnaires (contract §2): Villalta total and class, CIVIQ-20 raw, GIS and dimensions.

Pure functions on item answers (``linkId -> value``); no I/O, no dates. An out-of-range answer is a
programming or adapter error and raises :class:`ValueError` naming the item; a *missing* answer is normal and
handled by the rules below (the caller reports unscorable assessments as problems).

Villalta
    11 items (:data:`fhir_pts.codes.VILLALTA_ITEMS`), each 0–3; total = their sum, 0–33. The venous ulcer is a
    separate flag and is **never** added to the total. Any missing item → no total.
    Class: ulcer or total ≥ 15 → ``severe``; 10–14 ``moderate``; 5–9 ``mild``; 0–4 ``none``.

CIVIQ-20
    20 items ``q1`` … ``q20``, each 1–5 (1 = no problem; higher = worse quality of life). Raw = sum (20–100);
    GIS = (raw − 20) / 80 × 100 (0–100). Dimension raw sums per :data:`fhir_pts.codes.CIVIQ20_DIMENSIONS`
    (pain 4–20, physical 4–20, social 3–15, psychological 9–45). With 1–2 missing items, each missing item is
    replaced by the mean of the *answered* items of its own dimension (person-mean imputation within the
    dimension) and the response is flagged ``imputed``; with ≥ 3 missing items there is no score. If a
    dimension has no answered item at all (impossible with the contract mapping, whose smallest dimension has
    3 items, but possible with another mapping) there is nothing to impute from and there is no score.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from fhir_pts.codes import CIVIQ20_DIMENSIONS, CIVIQ20_ITEMS, VILLALTA_ITEMS

VillaltaClass = Literal["none", "mild", "moderate", "severe"]

VILLALTA_ITEM_MIN: Final = 0
VILLALTA_ITEM_MAX: Final = 3
VILLALTA_TOTAL_MIN: Final = 0
VILLALTA_TOTAL_MAX: Final = 3 * len(VILLALTA_ITEMS)  # 33
CIVIQ20_ITEM_MIN: Final = 1
CIVIQ20_ITEM_MAX: Final = 5
CIVIQ20_RAW_MIN: Final = CIVIQ20_ITEM_MIN * len(CIVIQ20_ITEMS)  # 20
CIVIQ20_RAW_MAX: Final = CIVIQ20_ITEM_MAX * len(CIVIQ20_ITEMS)  # 100
#: Largest number of missing CIVIQ-20 items that is still imputed; one more and there is no score.
CIVIQ20_MAX_IMPUTED: Final = 2


def _check_items(names: Sequence[str], values: Sequence[object], low: int, high: int, instrument: str) -> None:
    """Raise a :class:`ValueError` naming the first answer (not ``None``) that is not an integer low–high.

    ``bool`` is not an answer (``type(True) is bool``, not ``int``)."""
    answered = [v for v in values if v is not None] if None in values else values
    if not answered or (set(map(type, answered)) == {int} and low <= min(answered) and max(answered) <= high):  # type: ignore[type-var]
        return
    for name, value in zip(names, values, strict=True):
        if value is not None and not (type(value) is int and low <= value <= high):
            raise ValueError(f"{instrument} item {name!r}: expected an integer {low}-{high}, got {value!r}")


def villalta_total(items: Mapping[str, int]) -> int | None:
    """The Villalta total: sum of the 11 items, an integer 0–33.

    :param items: ``linkId -> answer`` (0–3). Keys other than the 11 items (e.g. ``ulcer``) are ignored, so
        the ulcer is never added.
    :returns: the total, or ``None`` when any of the 11 items is missing.
    :raises ValueError: an item answer outside 0–3.
    """
    values = list(map(items.get, VILLALTA_ITEMS))
    if None in values:
        return None
    _check_items(VILLALTA_ITEMS, values, VILLALTA_ITEM_MIN, VILLALTA_ITEM_MAX, "Villalta")
    return sum(values)  # type: ignore[arg-type]


def villalta_class(total: int | None, ulcer: bool | None) -> VillaltaClass | None:
    """The Villalta severity class.

    ``ulcer`` True → ``severe`` whatever the total; otherwise by the total: ≥ 15 ``severe``, 10–14
    ``moderate``, 5–9 ``mild``, 0–4 ``none``. An unknown ulcer (``None``, e.g. a total-only Observation) is
    classed by its total alone.

    :returns: the class, or ``None`` when the total is unknown and there is no ulcer.
    :raises ValueError: a total outside 0–33.
    """
    if total is not None and (isinstance(total, bool) or not VILLALTA_TOTAL_MIN <= total <= VILLALTA_TOTAL_MAX):
        raise ValueError(f"Villalta total: expected an integer 0-33, got {total!r}")
    if ulcer:
        return "severe"
    if total is None:
        return None
    if total >= 15:
        return "severe"
    if total >= 10:
        return "moderate"
    if total >= 5:
        return "mild"
    return "none"


def civiq20_gis(raw: float) -> float:
    """CIVIQ-20 Global Index Score from the raw sum: ``(raw − 20) / 80 × 100`` (0 best – 100 worst)."""
    return (raw - CIVIQ20_RAW_MIN) / (CIVIQ20_RAW_MAX - CIVIQ20_RAW_MIN) * 100.0


@dataclass(frozen=True, slots=True)
class Civiq20Score:
    """A scored CIVIQ-20 response.

    ``raw``: sum of the 20 items (20–100; fractional only when imputed). ``gis``: Global Index Score
    (0–100). ``pain``, ``physical``, ``social``, ``psychological``: dimension raw sums, ``None`` when the score
    comes from a total-only Observation. ``imputed``: 1–2 items were imputed; ``imputed_items``: their linkIds
    in questionnaire order.
    """

    raw: float
    gis: float
    pain: float | None
    physical: float | None
    social: float | None
    psychological: float | None
    imputed: bool = False
    imputed_items: tuple[str, ...] = ()


def civiq20_from_total(raw: float) -> Civiq20Score:
    """A CIVIQ-20 score known only by its raw total (an Observation ``civiq20-total``): no dimensions.

    The raw sum may be fractional (items imputed by the sender, contract §2).

    :raises ValueError: a total outside 20–100.
    """
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not CIVIQ20_RAW_MIN <= raw <= CIVIQ20_RAW_MAX:
        raise ValueError(f"CIVIQ-20 total: expected a number 20-100, got {raw!r}")
    return Civiq20Score(raw=float(raw), gis=civiq20_gis(raw), pain=None, physical=None, social=None, psychological=None)


def _check_dimensions(dimensions: Mapping[str, tuple[str, ...]]) -> None:
    mapped = [name for names in dimensions.values() for name in names]
    if sorted(mapped) != sorted(CIVIQ20_ITEMS) or set(dimensions) != set(CIVIQ20_DIMENSION_NAMES):
        raise ValueError("CIVIQ-20 dimensions must partition q1..q20 into pain, physical, social, psychological")


def _pickers(dimensions: Mapping[str, tuple[str, ...]]) -> dict[str, Callable[[Sequence[Any]], tuple[Any, ...]]]:
    """Per dimension, a function picking its answers (as a tuple) from the answers in q1..q20 order."""

    def picker(names: tuple[str, ...]) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
        positions = [CIVIQ20_ITEMS.index(name) for name in names]
        if len(positions) == 1:
            return lambda values: (values[positions[0]],)
        return operator.itemgetter(*positions)

    return {dimension: picker(names) for dimension, names in dimensions.items()}


CIVIQ20_DIMENSION_NAMES: Final = ("pain", "physical", "social", "psychological")
_check_dimensions(CIVIQ20_DIMENSIONS)
_DEFAULT_PICKERS = _pickers(CIVIQ20_DIMENSIONS)


def score_civiq20(
    items: Mapping[str, int], dimensions: Mapping[str, tuple[str, ...]] = CIVIQ20_DIMENSIONS
) -> Civiq20Score | None:
    """Score a CIVIQ-20 response, imputing 1–2 missing items within their dimension.

    :param items: ``linkId -> answer`` (1–5) for the answered items; keys that are not CIVIQ-20 items are
        ignored.
    :param dimensions: dimension name → its items; must partition ``q1`` … ``q20`` (the contract mapping by
        default) and name the four dimensions ``pain``, ``physical``, ``social``, ``psychological``.
    :returns: the score, or ``None`` when ≥ 3 items are missing or a dimension has no answered item.
    :raises ValueError: an answer outside 1–5, or a ``dimensions`` mapping that is not a partition.
    """
    if dimensions is CIVIQ20_DIMENSIONS:
        pickers = _DEFAULT_PICKERS
    else:
        _check_dimensions(dimensions)
        pickers = _pickers(dimensions)
    values = list(map(items.get, CIVIQ20_ITEMS))
    _check_items(CIVIQ20_ITEMS, values, CIVIQ20_ITEM_MIN, CIVIQ20_ITEM_MAX, "CIVIQ-20")
    missing = (
        [name for name, value in zip(CIVIQ20_ITEMS, values, strict=True) if value is None] if None in values else []
    )
    if len(missing) > CIVIQ20_MAX_IMPUTED:
        return None
    sums: dict[str, float] = {}
    for dimension, pick in pickers.items():
        dimension_values = pick(values)
        if not missing:
            sums[dimension] = float(sum(dimension_values))
            continue
        answered: list[int] = [v for v in dimension_values if v is not None]
        if not answered:
            return None
        observed = sum(answered)
        n_missing = len(dimension_values) - len(answered)
        # each missing item := mean of the answered items of the dimension
        sums[dimension] = observed + n_missing * observed / len(answered) if n_missing else float(observed)
    raw = sum(sums.values())
    return Civiq20Score(
        raw=raw,
        gis=civiq20_gis(raw),
        pain=sums["pain"],
        physical=sums["physical"],
        social=sums["social"],
        psychological=sums["psychological"],
        imputed=bool(missing),
        imputed_items=tuple(missing),
    )
