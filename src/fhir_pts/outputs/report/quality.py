"""The data-quality section (skipped or doubtful records, grouped) and the patient-level lists."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from fhir_pts.outputs.report.flow import generic_reason
from fhir_pts.outputs.report.values import Stack, Table

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext

#: Reasons shown per group of the data-quality table (the others are counted).
MAX_REASONS_SHOWN = 3
#: Longest patient-level list printed per reason (the rest is counted; ``cohort.csv`` has every patient).
MAX_LISTED_IDS = 200


def problems(ctx: ReportContext) -> dict[str, Any] | None:
    """Skipped or doubtful records, grouped by resource type, field and severity (the most frequent reasons
    of each group shown, the rest counted; ``problems.csv`` has every record)."""
    problems = ctx.cohort.problems
    if not problems:
        return None
    groups: dict[tuple[str, str, str], Counter[str]] = {}
    for p in problems:
        key = (p.resource_type, p.field or "", p.severity)
        groups.setdefault(key, Counter())[ctx.scrub(generic_reason(p.reason, p.field))] += 1
    rows = []
    for (rt, fld, sev), reasons in sorted(groups.items(), key=lambda kv: (-sum(kv[1].values()), kv[0])):
        top = reasons.most_common(MAX_REASONS_SHOWN)
        lines = [f"{reason} ({c})" for reason, c in top]
        if len(reasons) > MAX_REASONS_SHOWN:
            rest = sum(reasons.values()) - sum(c for _, c in top)
            more = len(reasons) - MAX_REASONS_SHOWN
            lines.append(f"… {more} other variant(s), {rest} record(s): see problems.csv")
        rows.append([rt, fld, sev, str(sum(reasons.values())), Stack(lines[0], tuple(lines[1:]))])
    by_type = Counter(p.resource_type for p in problems)
    table = Table(["Resource type", "Field", "Severity", "Records", "Reasons (records)"], rows, cls="text",
                  caption="Records skipped or doubtful, by resource type, field and severity")  # fmt: skip
    return {
        "total": len(problems),
        "by_type": ", ".join(f"{t}: {c}" for t, c in sorted(by_type.items())),
        "records_without_patient": ctx.cohort.flow.get("facts_without_patient"),
        "skipped": sum(1 for p in problems if p.severity == "skipped"),
        "table": ctx.named(table, "data-quality"),
    }


def patient_lists(ctx: ReportContext) -> dict[str, Any] | None:
    p = ctx.patients
    if len(p) == 0 or "patient_id" not in p:
        return None
    lists = {
        "Technical failure": ctx.column("technical_success") == False,  # noqa: E712
        "Technical outcome not recorded": ctx.column("technical_success").isna(),
        "No baseline Villalta": ctx.column("baseline_villalta").isna(),
        "No 3-month Villalta": ctx.column("followup_villalta").isna(),
        "No baseline CIVIQ-20": ctx.column("baseline_civiq20").isna(),
        "No 3-month CIVIQ-20": ctx.column("followup_civiq20").isna(),
    }
    rows = []
    for label, mask in lists.items():
        ids = sorted(ctx.names.pid(i) for i in p.loc[mask.fillna(False).astype(bool).to_numpy(), "patient_id"])
        if ids:
            shown = ", ".join(ids[:MAX_LISTED_IDS])
            if len(ids) > MAX_LISTED_IDS:
                shown += f" … and {len(ids) - MAX_LISTED_IDS} more (see cohort.csv)"
            rows.append([label, str(len(ids)), shown])
    if not rows:
        return None
    return {
        "what": "pseudonymised ids (salted SHA-256)" if ctx.hash_patient_ids else "FHIR Patient ids",
        "table": Table(["Reason", "Patients", "Ids"], rows, cls="text"),
    }
