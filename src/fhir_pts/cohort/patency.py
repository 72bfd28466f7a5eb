"""Stent patency of one patient: time to loss of primary, primary-assisted and secondary patency (contract §2).

Time origin is the index procedure day (day 0); times are whole days. Inputs are the patient's patency findings
*after* day 0 (imaging results: ``patent`` / ``stenosis`` (> 50 % diameter) / ``occluded``) and the
reinterventions after day 0 (with their reason and whether their outcome is a failure).

Rules
    - **Censoring**: a definition that is not lost is censored at the day of the last patency finding
      (day 0 when there is none).
    - **Occlusion**: a finding ``occluded``, or a reintervention whose reason is ``occlusion`` (the occlusion is
      dated on the reintervention's day). An occlusion is **reopened** by any reintervention dated on or after
      it whose outcome is not a failure (a successful reintervention for occlusion reopens its own occlusion).
    - **Primary** patency is lost at the first of {finding ``stenosis`` or ``occluded``; any reintervention}.
    - **Primary-assisted** patency is lost at the first occlusion.
    - **Secondary** patency is lost at the first occlusion that is never reopened.
    - **Technical failure** of the index procedure: all three lost at day 0, whatever follows. An unknown
      technical outcome is not a failure.
    - An event is dated on its own day even when it comes after the last finding (a reintervention after the
      last imaging, or with no imaging at all, is an event on its day, not censored at the last finding).
    - **Reintervention reason**: its ``reasonCode`` (``stenosis``/``occlusion``); else the status of the
      patency Observation it references (``occluded`` → occlusion, otherwise stenosis); else the latest
      finding dated on or before it (``occluded`` → occlusion, otherwise stenosis); no such finding → stenosis.
    - **Imaging follow-up** = day of the last patency finding (0 when none), also for technical failures.

Because every occlusion is also a primary event and every never-reopened occlusion is an occlusion, the loss
times are ordered: primary ≤ primary-assisted ≤ secondary (a definition that is not lost counting as lost at
infinity). :class:`PatencyOutcome` checks this on construction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from fhir_pts.adapters.facts import PatencyStatus

ReinterventionReason = Literal["stenosis", "occlusion"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A patency finding on ``day`` (> 0) from day 0."""

    day: int
    status: PatencyStatus


@dataclass(frozen=True, slots=True)
class Reintervention:
    """A reintervention on ``day`` (> 0) from day 0.

    ``failed``: its outcome is a failure (it does not reopen). ``reason_code``: from ``reasonCode``, when
    given. ``referenced_status``: the status of the patency Observation named in ``reasonReference``, when
    given and found.
    """

    day: int
    failed: bool = False
    reason_code: ReinterventionReason | None = None
    referenced_status: PatencyStatus | None = None


@dataclass(frozen=True, slots=True)
class PatencyOutcome:
    """Patency of one patient. ``*_days``: days from day 0 to the loss (``*_lost`` True) or to censoring
    (``*_lost`` False, the last patency finding). ``imaging_follow_up_days``: day of the last finding (0 when
    none).

    :raises ValueError: (on construction) negative times, or loss times not ordered
        primary ≤ primary-assisted ≤ secondary.
    """

    primary_days: int
    primary_lost: bool
    primary_assisted_days: int
    primary_assisted_lost: bool
    secondary_days: int
    secondary_lost: bool
    imaging_follow_up_days: int

    def __post_init__(self) -> None:
        days = (self.primary_days, self.primary_assisted_days, self.secondary_days, self.imaging_follow_up_days)
        if min(days) < 0:
            raise ValueError(f"patency times must be >= 0, got {days}")
        primary, assisted, secondary = (
            self.primary_days if self.primary_lost else math.inf,
            self.primary_assisted_days if self.primary_assisted_lost else math.inf,
            self.secondary_days if self.secondary_lost else math.inf,
        )
        if not primary <= assisted <= secondary:
            raise ValueError(
                "patency loss times must be ordered primary <= primary-assisted <= secondary, "
                f"got {primary}, {assisted}, {secondary}"
            )


def reintervention_reason(reintervention: Reintervention, findings: Sequence[Finding]) -> ReinterventionReason:
    """The reason of a reintervention: reasonCode, else the referenced Observation's status, else the latest
    finding on or before its day (``occluded`` → ``occlusion``, anything else → ``stenosis``), else
    ``stenosis``."""
    if reintervention.reason_code is not None:
        return reintervention.reason_code
    status = reintervention.referenced_status
    if status is None:
        earlier = [f for f in findings if f.day <= reintervention.day]
        if earlier:
            # latest day; on the same day an occluded finding is the worst and is taken
            status = max(earlier, key=lambda f: (f.day, f.status == "occluded")).status
    return "occlusion" if status == "occluded" else "stenosis"


def derive_patency(
    technical_success: bool | None,
    findings: Sequence[Finding],
    reinterventions: Sequence[Reintervention],
) -> PatencyOutcome:
    """Primary, primary-assisted and secondary patency of one patient (rules in the module docstring).

    :param technical_success: the index procedure's outcome; ``False`` = technical failure (all lost at day 0);
        ``None`` (unknown) is treated as not a failure.
    :param findings: patency findings after day 0, any order.
    :param reinterventions: reinterventions after day 0, any order.
    :returns: the :class:`PatencyOutcome`.
    :raises ValueError: a finding or reintervention dated on or before day 0.
    """
    for item in (*findings, *reinterventions):
        if item.day <= 0:
            raise ValueError(f"patency inputs must be dated after day 0, got {item!r}")
    follow_up = max((f.day for f in findings), default=0)
    if technical_success is False:
        return PatencyOutcome(0, True, 0, True, 0, True, follow_up)

    primary_events = [f.day for f in findings if f.status != "patent"]
    primary_events += [r.day for r in reinterventions]
    occlusions = [f.day for f in findings if f.status == "occluded"]
    occlusions += [r.day for r in reinterventions if reintervention_reason(r, findings) == "occlusion"]
    reopenings = [r.day for r in reinterventions if not r.failed]
    last_reopening = max(reopenings, default=-1)
    never_reopened = [day for day in occlusions if day > last_reopening]

    def loss(events: list[int]) -> tuple[int, bool]:
        return (min(events), True) if events else (follow_up, False)

    return PatencyOutcome(*loss(primary_events), *loss(occlusions), *loss(never_reopened), follow_up)
