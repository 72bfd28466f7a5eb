"""report.html: self-contained, atomic, the key numbers, no patient ids when hashing, figures on disk.

The cohort is a hand-written 20-patient frame (:func:`make_cohort`) and the outcomes are built by hand
(:func:`make_outcomes`) with distinctive values, so every assertion names a number the report must show.
"""

from __future__ import annotations

import hashlib
import os
import re
import statistics
from pathlib import Path

import pandas as pd
import pytest
import xxhash

from fhir_pts.analyses.api import AnalysisOutcome, AnalysisResult, Statistic
from fhir_pts.cohort.model import Cohort, empty_patients_frame
from fhir_pts.outputs.report import (
    comparison_table_html,
    default_versions,
    fingerprint_inputs,
    fmt_num,
    fmt_p,
    generic_reason,
    patient_flow,
    pseudonymise,
    write_report,
)
from fhir_pts.outputs.report import quality as report_quality
from fhir_pts.outputs.report import scores as report_scores
from fhir_pts.problems import Problem
from tests.outputs.report_factory import (
    PATIENT_IDS,
    ROWS,
    info,
    make_cohort,
    make_outcomes,
    make_run_info,
    text_of,
    villalta_class_of,
)

# --- helpers ---------------------------------------------------------------------------------

EXTERNAL_REF = re.compile(r"""(?:src|href|xlink:href|action|poster)\s*=\s*["']?\s*(?:https?:)?//""", re.I)


@pytest.fixture(autouse=True)
def svg_figures_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page embeds SVG; PNG (300 dpi) and PDF take most of a report's time and are checked on ``written``."""
    from fhir_pts.outputs import rendering

    monkeypatch.setattr(rendering, "EXPORT_FORMATS", ("svg",))


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The report of the standard cohort and outcomes, written once for the read-only tests."""
    path = write_report(tmp_path_factory.mktemp("report") / "out", make_cohort(), make_outcomes(), make_run_info())
    return path, path.read_text(encoding="utf-8")


# --- tests -----------------------------------------------------------------------------------


def test_writes_one_self_contained_file(written: tuple[Path, str]) -> None:
    path, html = written
    assert path == path.parent / "report.html"
    assert html.startswith("<!DOCTYPE html>")
    assert not EXTERNAL_REF.search(html), EXTERNAL_REF.search(html)
    assert "<script" not in html.lower()
    assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", html)
    assert "<link" not in html.lower()
    # figures are embedded, not referenced
    assert html.count('src="data:image/svg+xml;base64,') == 4
    assert not re.search(r'<img[^>]+src="(?!data:)', html)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == []


def test_external_reference_pattern_catches_links() -> None:
    assert EXTERNAL_REF.search('<img src="https://cdn.example.org/x.png">')
    assert EXTERNAL_REF.search("<a href='//cdn.example.org'>")
    assert not EXTERNAL_REF.search("<p>https://fhir-pts.org/fhir/Measure/villalta</p>")


def test_key_numbers_from_the_outcomes(written: tuple[Path, str]) -> None:
    text = text_of(written[1])
    assert "18/19" in text and "94.7 %" in text  # technical success
    assert "73.97 to 99.87" not in text and "74.0 to 99.9 %" in text  # CI, in percent
    assert "0/20" in text  # major complications
    assert "18.1 (9.7–34.4)" in text  # imaging follow-up
    assert "73.2 %" in text and "81.2 %" in text and "87.7 %" in text  # KM 12 months
    assert "61.2 %" in text  # KM 24 months
    assert "beyond follow-up" in text  # km_36m empty
    assert "at risk 11" in text
    assert "14 (10–19)" in text and "5 (2–9)" in text  # Villalta medians (IQR)
    assert "57 (39–72)" in text and "30 (24–50)" in text  # CIVIQ-20
    assert "< 0.0001" in text
    assert "171" in text and "8.61" in text
    assert "0.512" in text and "0.310 to 0.710" in text and "0.002" in text  # regression β, CI, p (age)
    assert "R² = 0.734" in text and "n = 17 complete cases" in text and "n = 16 complete cases" in text
    assert "Stented segments (per segment)" in text


def test_table1_is_computed_from_the_cohort(written: tuple[Path, str]) -> None:
    text = text_of(written[1])
    ages = [r[1] for r in ROWS]
    expected_age = f"{fmt_num(statistics.mean(ages))} ± {fmt_num(statistics.stdev(ages))} ({min(ages)}–{max(ages)})"
    assert expected_age in text
    females = sum(r[0] == "female" for r in ROWS)
    assert f"Female {females} ({100 * females / 20:.1f} %)" in text
    below = [r[3] for r in ROWS if r[3] is not None]
    assert f"{sum(below)} ({100 * sum(below) / len(below):.1f} %) [of {len(below)} with data]" in text
    baseline_v = pd.Series([r[5] for r in ROWS if r[5] is not None], dtype=float)
    q1, med, q3 = baseline_v.quantile([0.25, 0.5, 0.75])
    assert f"{fmt_num(med)} ({fmt_num(q1)}–{fmt_num(q3)}) [n = {len(baseline_v)}]" in text
    assert "2 segments" in text and "Not recorded" in text


def test_villalta_class_shift_counts(written: tuple[Path, str]) -> None:
    html = written[1]
    section = html[html.index("Villalta class shift") :]
    table = section[: section.index("</table>")]
    rows = {
        cells[0]: cells[1:]
        for cells in (re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", table))
        if cells
    }
    # severe at baseline (>= 15): 9 patients with a 3-month score; 3 stay >= 10 ... computed from ROWS
    pairs = [(villalta_class_of(r[5]), villalta_class_of(r[6])) for r in ROWS if r[5] is not None and r[6] is not None]
    for base in ("none", "mild", "moderate", "severe"):
        expected = [
            sum(1 for b, f in pairs if b == base and f == fol) for fol in ("none", "mild", "moderate", "severe")
        ]
        assert rows[base.capitalize()] == [str(v) for v in expected] + [str(sum(expected))]
    assert rows["Total"][-1] == str(len(pairs))


def test_flow_stages_count_patients_and_each_drop_hangs_off_its_arrow() -> None:
    stages = patient_flow(make_cohort(), make_outcomes())
    assert [s.count for s in stages] == [
        "23",
        "20",
        "Villalta 19 · CIVIQ-20 19",
        "Villalta 18 · CIVIQ-20 18",
        "Villalta gain 17 · CIVIQ-20 gain 16",
    ]
    # the drop between two stages is given at the first of them (the arrow to the next)
    assert stages[0].excluded == ("No index stenting procedure: 3",)
    assert stages[1].excluded == ("No scorable baseline score: Villalta 1, CIVIQ-20 1",)
    assert stages[2].excluded == ("No scorable 3-month score: Villalta 1, CIVIQ-20 1",)
    assert stages[3].excluded[0] == "Villalta gain: 1 missing a covariate (stented segments 1)"
    assert stages[4].excluded == ()
    text = " ".join(" ".join(s.excluded) for s in stages)
    assert "record" not in text.lower() and "'…'" not in text  # patients only; no record reasons


def test_records_are_counted_in_the_data_quality_section_not_the_flow(tmp_path: Path) -> None:
    cohort = make_cohort()
    cohort.flow["facts_without_patient"] = 4
    assert not any("Records" in e for s in patient_flow(cohort, []) for e in s.excluded)
    html = write_report(tmp_path, cohort, make_outcomes(), make_run_info()).read_text()
    quality = text_of(html[html.index('id="quality"') :])
    assert "4 record(s) refer to no patient of the data" in quality
    cohort.flow = {}
    stages = patient_flow(cohort, [])
    assert stages[0].count == "not available" and stages[1].count == "20"
    assert stages[4].count == "Villalta gain not available · CIVIQ-20 gain not available"


def test_figures_are_written_as_svg_and_png(written: tuple[Path, str]) -> None:
    figures = written[0].parent / "figures"
    names = {"patient-flow", "kaplan-meier-patency", "scores-before-after", "regression-forest"}
    assert {p.stem for p in figures.glob("*.svg")} == names
    assert {p.stem for p in figures.glob("*.png")} == names and {p.stem for p in figures.glob("*.pdf")} == names
    for name in names:
        assert (figures / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in (figures / f"{name}.svg").read_bytes()[:2000]


def test_written_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.html").write_text("previous report")
    replaced: list[tuple[str, str]] = []
    real_replace = os.replace

    def failing_replace(src: str, dst: str) -> None:
        replaced.append((str(src), str(dst)))
        if str(dst).endswith("report.html"):
            raise OSError("disk full")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_report(out, make_cohort(), make_outcomes(), make_run_info())
    assert (out / "report.html").read_text() == "previous report"
    assert [p.name for p in out.iterdir() if p.is_file()] == ["report.html"]  # temp file removed
    src, dst = replaced[-1]
    assert Path(src).parent == out and Path(dst) == out / "report.html"
    monkeypatch.setattr(os, "replace", real_replace)
    write_report(out, make_cohort(), make_outcomes(), make_run_info())
    assert (out / "report.html").read_text().startswith("<!DOCTYPE html>")


def test_patient_ids_only_when_not_hashed(tmp_path: Path) -> None:
    plain = write_report(tmp_path / "plain", make_cohort(), make_outcomes(), make_run_info()).read_text()
    assert PATIENT_IDS[9] in plain  # the technical failure, in the patient-level lists
    failed = AnalysisOutcome(info("vcss2"), plugin="third.party", error=f"KeyError: no VCSS for {PATIENT_IDS[4]}.")
    run_info = make_run_info([(f"export/{PATIENT_IDS[5]}.ndjson", "ef" * 32)])
    hashed = write_report(
        tmp_path / "hashed", make_cohort(), [*make_outcomes(), failed], run_info, hash_patient_ids=True
    ).read_text()
    for pid in PATIENT_IDS:
        assert pid not in hashed
    assert re.search(r"P-[0-9a-f]{12}", hashed)
    assert "KeyError: no VCSS for P-" in hashed and "export/P-" in hashed  # free text scrubbed too
    salted = re.findall(r"P-[0-9a-f]{12}", hashed)
    assert pseudonymise(PATIENT_IDS[9], "other salt") not in salted  # salted, not a bare hash
    assert "P-" + hashlib.sha256(PATIENT_IDS[9].encode()).hexdigest()[:12] not in salted


def test_patient_lists_are_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(report_quality, "MAX_LISTED_IDS", 1)
    html = write_report(tmp_path, make_cohort(), make_outcomes(), make_run_info()).read_text()
    assert "No baseline Villalta</td><td>1</td><td>pat-0015</td>" in html  # one id: shown in full
    # technical failure 1, not recorded 1; "No 3-month Villalta" has 2 patients: one shown, one counted
    assert "pat-0013 … and 1 more (see cohort.csv)" in html


def test_pseudonyms_are_stable_for_the_same_data(tmp_path: Path) -> None:
    a = write_report(tmp_path / "a", make_cohort(), make_outcomes(), make_run_info(), hash_patient_ids=True)
    b = write_report(tmp_path / "b", make_cohort(), make_outcomes(), make_run_info(), hash_patient_ids=True)
    assert a.read_bytes() == b.read_bytes()
    c = write_report(
        tmp_path / "c", make_cohort(), make_outcomes(), make_run_info([("x.json", "cd" * 32)]), hash_patient_ids=True
    )
    assert set(re.findall(r"P-[0-9a-f]{12}", a.read_text())) != set(re.findall(r"P-[0-9a-f]{12}", c.read_text()))


def test_report_and_figures_are_deterministic(tmp_path: Path) -> None:
    a = write_report(tmp_path / "a", make_cohort(), make_outcomes(), make_run_info())
    b = write_report(tmp_path / "b", make_cohort(), make_outcomes(), make_run_info())
    assert a.read_bytes() == b.read_bytes()
    for fig in (tmp_path / "a" / "figures").iterdir():
        assert fig.read_bytes() == (tmp_path / "b" / "figures" / fig.name).read_bytes(), fig.name


def test_empty_cohort_says_not_available(tmp_path: Path) -> None:
    cohort = Cohort(patients=empty_patients_frame())
    html = write_report(tmp_path, cohort, [], make_run_info([])).read_text()
    text = text_of(html)
    assert "0 patients with an index stenting procedure" in text
    assert "not available: empty cohort" in text
    assert "not available: the analysis villalta was not run" in text
    assert "Figure not available" in text
    assert "No input files recorded" in text
    assert (tmp_path / "figures" / "patient-flow.svg").exists()
    assert not (tmp_path / "figures" / "kaplan-meier-patency.svg").exists()


def test_failed_and_missing_analyses_are_listed(tmp_path: Path) -> None:
    outcomes = [o for o in make_outcomes() if o.info.id not in {"civiq20-gain-regression", "villalta"}]
    outcomes.append(AnalysisOutcome(info("villalta"), plugin="fhir_pts.builtin", error="ValueError: no complete pair"))
    text = text_of(write_report(tmp_path, make_cohort(), outcomes, make_run_info()).read_text())
    assert "Failed analyses" in text and "ValueError: no complete pair" in text
    assert "the analysis villalta failed" in text
    assert "the analysis civiq20-gain-regression was not run" in text
    assert "57 (39–72)" in text  # civiq20 still shown


def test_third_party_measure_in_generic_table(written: tuple[Path, str]) -> None:
    html = written[1]
    section = text_of(html[html.index('id="other"') : html.index('id="quality"')])
    assert "VCSS" in section and "vcss_median" in section and "7.25" in section and "0.01" in section
    assert "Every analysis completed." in section


def test_comparison_html_is_included(tmp_path: Path) -> None:
    fragment = '<table class="cmp"><tr><td>Technical success</td><td>41/42 (97.6 %)</td></tr></table>'
    html = write_report(tmp_path, make_cohort(), make_outcomes(), make_run_info(), comparison_html=fragment)
    assert fragment in html.read_text()
    assert "Comparison with the published abstract" in html.read_text()
    plain = write_report(tmp_path / "plain", make_cohort(), make_outcomes(), make_run_info()).read_text()
    assert "Comparison with the published abstract" not in plain


def test_comparison_rows_as_html() -> None:
    from fhir_pts.outputs.abstract_comparison import ComparisonRow

    rows = [
        ComparisonRow("Technical success", "technical-success", "proportion", "41/42 (97.6%)", "41/42 (97.6%)", True),
        ComparisonRow(
            "Primary patency", "primary-patency", "proportion", "29/42 (66.7%)", "28/42", False, "abstract <x>"
        ),
        ComparisonRow("Villalta p", "villalta", "wilcoxon", "P<0.0001", "", None),
    ]
    html = comparison_table_html(rows)
    assert '<td class="ok">ok</td>' in html and '<td class="error">DIFFERS</td>' in html
    assert "abstract &lt;x&gt;" in html  # escaped
    assert "3 figures: 1 agree at the abstract's precision, 1 differ, 1 not computed." in text_of(html)
    assert "not available" in comparison_table_html([])


def test_problems_summary_and_provenance(written: tuple[Path, str]) -> None:
    text = text_of(written[1])
    assert "4 record(s) were skipped or flagged (Observation: 2, Procedure: 1, QuestionnaireResponse: 1)" in text
    assert "Observation valueQuantity skipped 2 value outside 0-33 (2)" in text
    assert "ab" * 32 in text and "data/bundle-a.json" in text
    assert "lifelines 0.30.3" in text
    assert "baseline_window [-90, 0]" in text
    assert "2026-11-25T09:30:00+00:00" in text and "fhir-pts run data --out out" in text


def test_fingerprint_inputs_streams_files_and_folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_pts.sources import fingerprint

    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 1000)
    data = bytes(range(256)) * 9  # > 2 pieces
    (tmp_path / "d" / "sub").mkdir(parents=True)
    (tmp_path / "d" / "sub" / "b.ndjson").write_bytes(data)
    (tmp_path / "d" / "a.json").write_bytes(b"{}")
    single = tmp_path / "single.json"
    single.write_bytes(b"abc")

    def tree(content: bytes) -> str:
        pieces = [content[i : i + 1000] for i in range(0, len(content), 1000)]
        return xxhash.xxh3_128(b"".join(xxhash.xxh3_128(p).digest() for p in pieces)).hexdigest()

    result = fingerprint_inputs([single, tmp_path / "d"])
    assert result == [
        (str(single), tree(b"abc")),
        (str(tmp_path / "d" / "a.json"), tree(b"{}")),
        (str(tmp_path / "d" / "sub" / "b.ndjson"), tree(data)),
    ]
    # fingerprints the engine computed while reading are used as they are (no second read)
    known = {str(single): "computed-while-reading"}
    assert fingerprint_inputs([single], known=known) == [(str(single), "computed-while-reading")]
    with pytest.raises(FileNotFoundError):
        fingerprint_inputs([tmp_path / "missing.json"])


@pytest.mark.parametrize(
    ("p", "expected"),
    [
        (0.0000076, "< 0.0001"),
        (0.00042, "0.0004"),
        (0.0021, "0.002"),
        (0.0123, "0.012"),
        (0.0494, "0.049"),
        (0.0996, "0.10"),
        (0.43, "0.43"),
        (0.999, "> 0.99"),
        (None, "—"),
    ],
)
def test_p_values_read_as_in_a_paper(p: float | None, expected: str) -> None:
    assert fmt_p(p) == expected


def test_quoted_values_in_reasons_are_elided() -> None:
    reason = "'1970-13-01' is not a full date YYYY-MM-DD: no age can be computed; left missing"
    assert generic_reason(reason) == "'…' is not a full date YYYY-MM-DD: no age can be computed; left missing"
    assert generic_reason("status 'draft': expected 'completed'; procedure ignored") == (
        "status '…': expected 'completed'; procedure ignored"
    )


def test_no_birth_date_from_a_problem_reaches_the_report(tmp_path: Path) -> None:
    problems = [
        Problem("Patient", f"p{i}", "birthDate", f"'19{60 + i}-13-01' is not a full date YYYY-MM-DD; left missing")
        for i in range(3)
    ]
    html = write_report(tmp_path, make_cohort(problems=problems), make_outcomes(), make_run_info()).read_text()
    text = text_of(html)
    assert "-13-01" not in html
    assert "Patient birthDate skipped 3 '…' is not a full date YYYY-MM-DD; left missing (3)" in text  # one row


def test_default_versions_name_python_and_the_numeric_stack() -> None:
    versions = default_versions()
    assert re.fullmatch(r"3\.\d+\.\d+.*", versions["python"])
    assert {"numpy", "pandas", "lifelines", "matplotlib"} <= versions.keys()


# --- what a reader of a paper needs (issue #15) ----------------------------------------------------------------


def headings(html: str) -> list[str]:
    return [text_of(h).strip() for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html)]


def test_sections_are_numbered_as_the_contents_list_them(written: tuple[Path, str]) -> None:
    html = written[1]
    nav = re.findall(r'<li><a href="#([a-z0-9]+)">', html)
    anchors = re.findall(r'<h2 id="([a-z0-9]+)">', html)
    assert nav == anchors
    assert [h.split(".")[0] for h in headings(html)] == [str(i) for i in range(1, len(anchors) + 1)]


def test_tables_and_figures_are_downloadable(written: tuple[Path, str]) -> None:
    import csv as csv_module

    from docx import Document
    from PIL import Image

    path, html = written
    out = path.parent
    for name in ("table1-baseline", "patient-flow", "procedure-outcomes", "patency-kaplan-meier", "scores-paired",
                 "villalta-class-shift", "regression-villalta-gain", "regression-civiq20-gain",
                 "included-vs-excluded", "data-quality"):  # fmt: skip
        assert f'href="tables/{name}.csv"' in html and f'href="tables/{name}.docx"' in html, name
        assert (out / "tables" / f"{name}.csv").exists() and (out / "tables" / f"{name}.docx").exists(), name
    with open(out / "tables" / "table1-baseline.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv_module.reader(handle))
    assert rows[0] == ["Characteristic", "Value"] and ["Patients", "20"] in rows
    document = Document(str(out / "tables" / "table1-baseline.docx"))
    cells = [c.text for row in document.tables[0].rows for c in row.cells]
    assert "Characteristic" in cells and "20" in cells and "Table 1" in document.paragraphs[0].text
    scores = (out / "tables" / "scores-paired.csv").read_text(encoding="utf-8")
    mean, hl = villalta_gain_estimates()
    assert f"{mean.estimate:.2f} ({mean.ci_low:.2f} to {mean.ci_high:.2f})" in scores
    assert f"{hl.estimate:.2f} ({hl.ci_low:.2f} to {hl.ci_high:.2f})" in scores
    for name in ("patient-flow", "kaplan-meier-patency", "scores-before-after", "regression-forest"):
        for ext in ("png", "svg", "pdf"):
            assert f'href="figures/{name}.{ext}"' in html and (out / "figures" / f"{name}.{ext}").exists()
        with Image.open(out / "figures" / f"{name}.png") as image:
            assert round(image.info["dpi"][0]) >= 300


def test_methods_paragraph_names_the_windows_tests_and_versions(written: tuple[Path, str]) -> None:
    path, html = written
    text = (path.parent / "tables" / "methods.txt").read_text(encoding="utf-8")
    for fragment in ("from day −90 to day 0", "closest to day 91 between days 60 and 150",
                     "wilcox.test(baseline, followup, paired = TRUE, conf.int = TRUE)",
                     'survfit(Surv(months, lost) ~ 1, conf.type = "log-log")', "binom.test", "lm(gain ~",
                     "t.test(baseline, followup, paired = TRUE)", "fhir-pts 0.1.0", "lifelines 0.30.3",
                     "Python 3.11.2", "p < 0.05"):  # fmt: skip
        assert fragment in text, fragment
    assert "while at least 5 patients remained at risk" in text
    page = text_of(html[html.index('id="methods"') : html.index('id="quality"')])
    assert "Hodges–Lehmann" in page and "p < 0.05" in page and "{{" not in html


def villalta_gain_estimates() -> tuple:
    from fhir_pts.analyses.paired import hodges_lehmann, mean_difference

    pairs = [(r[5], r[6]) for r in ROWS if r[5] is not None and r[6] is not None]
    b, f = [p[0] for p in pairs], [p[1] for p in pairs]
    return mean_difference(b, f), hodges_lehmann(b, f)


def test_scores_table_has_the_hodges_lehmann_gain_and_mean_gain_ci(written: tuple[Path, str]) -> None:
    section = text_of(written[1][written[1].index('id="scores"') : written[1].index('id="regression"')])
    assert "Median gain, Hodges–Lehmann (95 % CI)" in section and "Mean gain (95 % CI, t)" in section
    mean, hl = villalta_gain_estimates()  # computed on the cohort's pairs, as R's t.test / wilcox.test(conf.int)
    assert f"{mean.estimate:.2f} {mean.ci_low:.2f} to {mean.ci_high:.2f}" in section
    assert f"{hl.estimate:.2f} {hl.ci_low:.2f} to {hl.ci_high:.2f}" in section


def test_captions_say_what_the_plots_draw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fhir_pts.outputs import figures

    small = write_report(tmp_path / "small", make_cohort(), make_outcomes(), make_run_info()).read_text()
    assert "one line joins the two scores of one patient" in small
    assert "Each curve stops where fewer than 5 patients (10 %, at least 5) remain at risk" in text_of(small)
    monkeypatch.setattr(figures, "MAX_PAIR_LINES", 5)
    monkeypatch.setattr(report_scores, "MAX_PAIR_LINES", 5)
    big = write_report(tmp_path / "big", make_cohort(), make_outcomes(), make_run_info()).read_text()
    assert "one line joins" not in big and "with more than 5 pairs, lines per patient are not drawn" in big


def test_data_quality_groups_variants_and_shows_refused_statuses(tmp_path: Path) -> None:
    problems = [
        Problem("Observation", f"o{i}", "status", f"status '{s}': expected final, amended or corrected; ignored")
        for i, s in enumerate(["preliminary", "preliminary", "registered", "entered-in-error"])
    ] + [
        Problem("QuestionnaireResponse", f"q{i}", "item", f"no answer for q{i} (1 of 20 civiq20 items)",
                severity="warning")
        for i in range(1, 11)
    ]  # fmt: skip
    html = write_report(tmp_path, make_cohort(problems=problems), make_outcomes(), make_run_info()).read_text()
    quality = text_of(html[html.index('id="quality"') :])
    assert "status 'preliminary': expected final, amended or corrected; ignored (2)" in quality
    assert "status 'registered'" in quality and "status 'entered-in-error'" in quality and "'…'" not in quality
    assert "QuestionnaireResponse item warning 10" in quality  # one row for the ten variants
    assert "7 other variant(s), 7 record(s): see problems.csv" in quality
    assert html.count("no answer for q") == 3


def test_a_plugin_result_appears_once(tmp_path: Path) -> None:
    classes = ("none", "mild", "moderate", "severe")
    shift = [Statistic(f"shift_{b}_to_{f}", 3.0 if b == f else 1.0) for b in classes for f in classes]
    plugin = AnalysisOutcome(
        info("villalta-class-shift", "Villalta class shift"), plugin="class-shift",
        result=AnalysisResult([Statistic("n_pairs", 24.0), Statistic("proportion_improved", 0.25, 0.1, 0.46),
                               *shift]),
    )  # fmt: skip
    html = write_report(tmp_path, make_cohort(), [*make_outcomes(), plugin], make_run_info()).read_text()
    assert "from the analysis villalta-class-shift (plugin class-shift)" in html
    assert "shift_none_to_none" not in html  # not again as a raw table
    scores = text_of(html[html.index('id="scores"') : html.index('id="regression"')])
    assert "6 of 24 patients (25.0 %, 95 % CI 10.0 to 46.0 %) moved to a milder class" in scores
    other = text_of(html[html.index('id="other"') : html.index('id="methods"')])
    assert "VCSS" in other and "Unit" not in other.split("VCSS")[1][:200]


def test_no_minus_zero_anywhere(tmp_path: Path) -> None:
    outcomes = make_outcomes()
    regression = next(o for o in outcomes if o.info.id == "villalta-gain-regression")
    assert regression.result is not None
    regression.result.statistics.append(Statistic("coef:age_squared", -0.0001, -0.004, 0.0002, 0.9))
    html = write_report(tmp_path, make_cohort(), outcomes, make_run_info()).read_text()
    assert "−0.000" not in html and "-0.000" not in html


def test_included_and_excluded_patients_are_compared(written: tuple[Path, str]) -> None:
    flow = text_of(written[1][written[1].index('id="flow"') : written[1].index('id="table1"')])
    assert "In the paired analysis Left out (no complete pair)" in flow
    assert "Patients 18 2" in flow
