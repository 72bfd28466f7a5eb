"""The generated methods paragraph (plain text, ``templates/methods.txt.j2``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fhir_pts.outputs.report.formatting import signed

if TYPE_CHECKING:
    from fhir_pts.outputs.report.context import ReportContext


def methods(ctx: ReportContext) -> str:
    """The generated methods paragraph (plain text; see ``templates/methods.txt.j2``)."""
    from fhir_pts.outputs.report import environment

    w = ctx.cohort.windows
    values = {
        "min_at_risk": ctx.km_min_at_risk or 5,
        "baseline_start": signed(w.baseline_start),
        "baseline_end": signed(w.baseline_end),
        "followup_target": w.followup_target,
        "followup_start": w.followup_start,
        "followup_end": w.followup_end,
        "versions": ctx.run_info.versions,
    }
    return environment().get_template("methods.txt.j2").render(m=values).strip() + "\n"
