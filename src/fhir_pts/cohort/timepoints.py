"""Choosing the baseline and 3-month assessments of one instrument for one patient (contract §2).

Only assessments that could be scored are candidates (an unscorable one was reported by the caller and is not
eligible). Days are whole days from the index procedure day (day 0), negative before it.

- **Baseline**: the latest candidate with ``baseline_start <= day <= baseline_end`` (default [−90, 0]).
- **3 months**: the candidate closest to ``followup_target`` (default day 91) with
  ``followup_start <= day <= followup_end`` (default [60, 150]); equally close → the earlier day.
- **Same day** (two candidates on the chosen day): a ``QuestionnaireResponse`` (item-level answers) is
  preferred over an ``Observation`` total; between two of the same kind, the one read later (higher
  ``read_order``, i.e. later in the input) wins. This makes the choice deterministic whatever the order of
  the candidate list.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Generic, TypeVar

from fhir_pts.cohort.model import TimePointWindows

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Candidate(Generic[T]):
    """A scorable assessment: its day (from day 0), whether it is a QuestionnaireResponse, its position in
    the input (``read_order``, larger = read later) and its score (``payload``, opaque here)."""

    day: int
    is_questionnaire: bool
    read_order: int
    payload: T


def _same_day_rank(candidate: Candidate[T]) -> tuple[bool, int]:
    return (candidate.is_questionnaire, candidate.read_order)


def choose_baseline(candidates: Iterable[Candidate[T]], windows: TimePointWindows) -> Candidate[T] | None:
    """The baseline assessment: the latest in ``[baseline_start, baseline_end]``; ``None`` when none is."""
    eligible = [c for c in candidates if windows.baseline_start <= c.day <= windows.baseline_end]
    if not eligible:
        return None
    return max(eligible, key=lambda c: (c.day, *_same_day_rank(c)))


def choose_followup(candidates: Iterable[Candidate[T]], windows: TimePointWindows) -> Candidate[T] | None:
    """The 3-month assessment: closest to ``followup_target`` in ``[followup_start, followup_end]``, ties to
    the earlier day; ``None`` when none is in the window."""
    eligible = [c for c in candidates if windows.followup_start <= c.day <= windows.followup_end]
    if not eligible:
        return None
    target = windows.followup_target
    # smallest distance, then earliest day, then the same-day preference (largest rank first)
    best_distance_day = min((abs(c.day - target), c.day) for c in eligible)
    same_day = [c for c in eligible if (abs(c.day - target), c.day) == best_distance_day]
    return max(same_day, key=_same_day_rank)


def choose_time_points(
    candidates: Iterable[Candidate[T]], windows: TimePointWindows
) -> tuple[Candidate[T] | None, Candidate[T] | None]:
    """``(baseline, 3 months)`` among ``candidates`` (see :func:`choose_baseline`, :func:`choose_followup`).

    The windows may overlap when set so; the same assessment may then be chosen for both.
    """
    pool = list(candidates)
    return choose_baseline(pool, windows), choose_followup(pool, windows)
