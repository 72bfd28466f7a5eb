"""``fhir-pts pool``: the pooled statistics of k sites equal those of one run on the union of their patients."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from fhir_pts.analyses.api import AnalysisOutcome
from fhir_pts.cli import main
from fhir_pts.conformance import check_measure_report
from fhir_pts.outputs.aggregates import SharingPolicy
from fhir_pts.outputs.tables import results_rows
from fhir_pts.pipeline import analyse, cohort_from_resources
from fhir_pts.pool import PoolingError, pool_sites, site_from_bundle
from tests.pooling.pool_sites_factory import (
    shared_bundle,
    shared_sites,
    split_by_patient,
    synthetic_resources,
    write_bundle,
)

TOL = 1e-9
EXACT = SharingPolicy(min_cell_count=0, share_distributions=True)
#: Statistics a site shares only with --share-distributions (medians, quartiles, the union's Wilcoxon).
NEED_DISTRIBUTIONS = {
    "median_months", "q1_months", "q3_months", "baseline_median", "baseline_q1", "baseline_q3",
    "followup_median", "followup_q1", "followup_q3", "wilcoxon",
}  # fmt: skip


def _num(text: str | float | None) -> float | None:
    if text is None or text == "":
        return None
    return float(text)


def same(a: Any, b: Any) -> bool:
    a, b = _num(a), _num(b)
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOL, abs_tol=1e-12)


def poolable(union: dict[tuple[str, str], Any], pooled: Any) -> dict[tuple[str, str], Any]:
    skip = {m.info.id for m in pooled.measures if not m.poolable}
    return {k: v for k, v in union.items() if k[0] not in skip}


def union_rows(outcomes: list[AnalysisOutcome]) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["measure"], r["statistic"]): r for r in results_rows(outcomes)}


def assert_pooled_equals_union(pooled: Any, union: dict[tuple[str, str], dict[str, str]], *, all_exact: bool) -> int:
    compared = 0
    seen = set()
    for measure in pooled.measures:
        for p in measure.statistics:
            key = (measure.info.id, p.statistic.name)
            if key not in union:  # the pooled-only statistics (stratified test, heterogeneity)
                assert p.statistic.name.endswith(("_stratified", "_q", "_i2")), key
                continue
            seen.add(key)
            if not p.exact:
                assert not all_exact, (key, p.reason)
                assert p.statistic.name in NEED_DISTRIBUTIONS, (key, p.reason)
                continue
            u, s = union[key], p.statistic
            for col, val in (("value", s.value), ("ci_low", s.ci_low), ("ci_high", s.ci_high),
                             ("p_value", s.p_value), ("n", s.n)):  # fmt: skip
                assert same(val, u[col]), (key, col, val, u[col])
            compared += 1
    not_poolable = {m.info.id for m in pooled.measures if not m.poolable}
    assert not_poolable <= {"villalta-class-shift"}  # a plugin that shares no aggregates (plugins/): listed, no rows
    expected = {key for key in union if key[0] not in not_poolable}
    assert seen == expected, expected - seen  # every statistic of the run is pooled, under the same name
    return compared


@pytest.fixture(scope="module")
def random_cohort(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return synthetic_resources(tmp_path_factory.mktemp("cohort"), patients=150, seed=11)


@pytest.fixture(scope="module")
def paper_cohort(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return synthetic_resources(tmp_path_factory.mktemp("paper"), patients=None)


@pytest.mark.parametrize(("k", "seed"), [(2, 1), (3, 2), (5, 3)])
def test_pooled_equals_the_union_on_every_statistic_when_sites_share_everything(
    random_cohort: list[dict[str, Any]], k: int, seed: int
) -> None:
    parts = split_by_patient(random_cohort, k, seed)
    pooled = pool_sites(shared_sites(parts, EXACT))
    union = union_rows(analyse(cohort_from_resources(random_cohort)))
    assert assert_pooled_equals_union(pooled, union, all_exact=True) == len(poolable(union, pooled))


def test_paper_cohort_in_three_sites_with_one_site_empty(paper_cohort: list[dict[str, Any]]) -> None:
    parts = split_by_patient(paper_cohort, 3, seed=7, empty=[1])
    assert parts[1] == []
    sites = shared_sites(parts, EXACT)
    empty = sites[1].reports["cohort"]["group"][0]["population"][0]["count"]
    assert empty == 0
    pooled = pool_sites(sites)
    union = union_rows(analyse(cohort_from_resources(paper_cohort)))
    assert assert_pooled_equals_union(pooled, union, all_exact=True) == len(poolable(union, pooled))
    stratified = {p.statistic.name: p.statistic for p in pooled.measure("villalta").statistics}["wilcoxon_stratified"]
    assert stratified.p_value is not None and stratified.p_value < 1e-4


def test_without_distributions_only_medians_quartiles_and_the_union_wilcoxon_are_not_exact(
    random_cohort: list[dict[str, Any]],
) -> None:
    parts = split_by_patient(random_cohort, 3, seed=4)
    pooled = pool_sites(shared_sites(parts, SharingPolicy(min_cell_count=0)))
    union = union_rows(analyse(cohort_from_resources(random_cohort)))
    needing = [key for key in union if key[1] in NEED_DISTRIBUTIONS]
    assert len(needing) == 17  # imaging quartiles 3; per score: 6 quartiles and the Wilcoxon V
    assert assert_pooled_equals_union(pooled, union, all_exact=False) == len(poolable(union, pooled)) - len(needing)
    for measure in pooled.measures:
        for p in measure.statistics:
            if p.statistic.name in NEED_DISTRIBUTIONS:
                assert not p.exact and p.statistic.value is None and p.reason


def test_cli_three_sites_as_the_acceptance_check_runs_them(random_cohort: list[dict[str, Any]], tmp_path: Path) -> None:
    """``run SITE --min-cell-count 0 --no-report`` three times, then ``pool``: equal to ``run`` on the union."""
    parts = split_by_patient(random_cohort, 3, seed=9)
    reports = []
    for i, part in enumerate(parts, 1):
        site = write_bundle(tmp_path / f"site{i}.json", part)
        assert (
            main(["run", str(site), "--min-cell-count", "0", "--no-report", "-q", "--out", str(tmp_path / f"S{i}")])
            == 0
        )
        reports.append(str(tmp_path / f"S{i}" / "measure-reports.json"))
    union_input = write_bundle(tmp_path / "union.json", random_cohort)
    assert main(["run", str(union_input), "--no-report", "-q", "--out", str(tmp_path / "U")]) == 0
    assert main(["pool", *reports, "--out", str(tmp_path / "P"), "-q"]) == 0
    with (tmp_path / "U" / "results.csv").open() as f:
        union = {(r["measure"], r["statistic"]): r for r in csv.DictReader(f)}
    with (tmp_path / "P" / "results.csv").open() as f:
        pooled = list(csv.DictReader(f))
    assert list(pooled[0]) == ["measure", "statistic", "value", "ci_low", "ci_high", "p_value", "n", "exact"]
    exact = 0
    for row in pooled:
        key = (row["measure"], row["statistic"])
        if row["exact"] == "true" and key in union:
            for col in ("value", "ci_low", "ci_high", "p_value", "n"):
                assert same(row[col], union[key][col]), (key, col)
            exact += 1
        elif key in union:
            assert row["statistic"] in NEED_DISTRIBUTIONS
    builtin = {k for k in union if k[0] != "villalta-class-shift"}  # the plugin shares no aggregates
    assert exact == len(builtin) - len([k for k in builtin if k[1] in NEED_DISTRIBUTIONS])
    bundle = json.loads((tmp_path / "P" / "measure-reports.json").read_text())
    reports_ = [e["resource"] for e in bundle["entry"]]
    assert len(reports_) == len({k[0] for k in union})  # one MeasureReport per measure
    for report in reports_:
        if "villalta-class-shift" not in report["measure"]:  # a plugin's Measure is not in our package
            assert check_measure_report(report) == [], report["measure"]
        provenance = report["contained"][0]
        assert provenance["resourceType"] == "Provenance" and len(provenance["entity"]) == 3
    html = (tmp_path / "P" / "report.html").read_text()
    assert "<svg" in html and "Heterogeneity" in html and "why it is not exact" in html


def test_a_pooled_report_can_be_pooled_again(random_cohort: list[dict[str, Any]]) -> None:
    """Hierarchical pooling: (site1 + site2) + site3 == site1 + site2 + site3 (the merged aggregates are shared)."""
    from fhir_pts.outputs.pooled import pooled_bundle

    parts = split_by_patient(random_cohort, 3, seed=5)
    sites = shared_sites(parts, EXACT)
    first = json.loads(json.dumps(pooled_bundle(pool_sites(sites[:2]))))
    again = pool_sites([site_from_bundle(first, "north"), sites[2]])
    union = union_rows(analyse(cohort_from_resources(random_cohort)))
    assert assert_pooled_equals_union(again, union, all_exact=True) == len(poolable(union, again))


# ------------------------------------------------------------------------------------------------ refusals


def _site(bundle: dict[str, Any], label: str) -> Any:
    return site_from_bundle(json.loads(json.dumps(bundle)), label)


def test_sites_with_different_parameters_windows_or_measures_are_refused(paper_cohort: list[dict[str, Any]]) -> None:
    a, b = split_by_patient(paper_cohort, 2, seed=1)
    ok = shared_bundle(a, EXACT)
    other_terms = shared_bundle(b, EXACT, parameters={"villalta-gain-regression": {"terms": ["age"]}})
    with pytest.raises(PoolingError, match=r"villalta-gain-regression: different parameters .*terms"):
        pool_sites([_site(ok, "a"), _site(other_terms, "b")])

    moved = shared_bundle(b, EXACT)
    for entry in moved["entry"]:
        for ext in entry["resource"]["extension"]:
            if ext["url"].endswith("pooling-context"):
                for sub in ext["extension"]:
                    if sub["url"] == "windows":
                        sub["valueString"] = sub["valueString"].replace('"followup_end":150', '"followup_end":180')
    with pytest.raises(PoolingError, match=r"different assessment windows .*followup_end: 150 vs 180"):
        pool_sites([_site(ok, "a"), _site(moved, "b")])

    fewer = shared_bundle(b, EXACT)
    fewer["entry"] = [e for e in fewer["entry"] if not e["resource"]["measure"].split("|")[0].endswith("/civiq20")]
    with pytest.raises(PoolingError, match="different measures: site b lacks civiq20"):
        pool_sites([_site(ok, "a"), _site(fewer, "b")])

    versioned = shared_bundle(b, EXACT)
    versioned["entry"][0]["resource"]["measure"] = versioned["entry"][0]["resource"]["measure"].replace(
        "0.1.0", "0.2.0"
    )
    with pytest.raises(PoolingError, match=r"measure cohort: different versions"):
        pool_sites([_site(ok, "a"), _site(versioned, "b")])


def test_cli_refusal_is_exit_2_naming_the_difference(
    paper_cohort: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = split_by_patient(paper_cohort, 2, seed=1)
    for name, part, extra in (("A", a, []), ("B", b, ["--followup-window", "60:200"])):
        path = write_bundle(tmp_path / f"{name}.json", part)
        assert (
            main(
                ["run", str(path), "--min-cell-count", "0", "--no-report", "-q", "--out", str(tmp_path / name), *extra]
            )
            == 0
        )
    assert main(["pool", str(tmp_path / "A"), str(tmp_path / "B"), "--out", str(tmp_path / "P")]) == 2
    err = capsys.readouterr().err
    assert "cannot pool" in err and "followup_end: 150 vs 200" in err
    assert not (tmp_path / "P" / "results.csv").exists()
    assert main(["pool", str(tmp_path / "missing.json"), "--out", str(tmp_path / "P")]) == 2
    (tmp_path / "bad.json").write_text("{not json")
    assert main(["pool", str(tmp_path / "bad.json"), "--out", str(tmp_path / "P")]) == 2


# ------------------------------------------------------------------------------------- host API and serve


def test_host_and_serve_pool_as_the_cli(random_cohort: list[dict[str, Any]], tmp_path: Path) -> None:
    import requests

    from fhir_pts.host import FhirPtsHost, HostInputError
    from fhir_pts.serve import ServeConfig, build_server

    parts = split_by_patient(random_cohort, 3, seed=9)
    host = FhirPtsHost(min_cell_count=0)
    bundles = [host.run(part, date=None).bundle for part in parts]
    bundles = [json.loads(json.dumps(b)) for b in bundles]
    by_host = host.pool(bundles)
    by_cli = pool_sites([site_from_bundle(b, f"site{i + 1}") for i, b in enumerate(bundles)])
    assert [[p.statistic for p in m.statistics] for m in by_host.measures] == [
        [p.statistic for p in m.statistics] for m in by_cli.measures
    ]
    with pytest.raises(HostInputError, match="different measures"):
        host.pool([bundles[0], {**bundles[1], "entry": bundles[1]["entry"][:3]}])

    cohort_file = write_bundle(tmp_path / "served.json", parts[0])
    server = build_server(ServeConfig(files=(cohort_file,), port=0, min_cell_count=1))
    import threading

    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = server.base_url
        body = {"resourceType": "Parameters", "parameter": [{"name": "site", "resource": b} for b in bundles]}
        response = requests.post(f"{url}/MeasureReport/$pool", json=body, timeout=60)
        assert response.status_code == 200, response.text
        served = response.json()
        assert [e["resource"]["measure"] for e in served["entry"]] == [
            e["resource"]["measure"] for e in bundles[0]["entry"]
        ]
        cohort_report = next(e["resource"] for e in served["entry"] if "/cohort|" in e["resource"]["measure"])
        patients = next(p["count"] for p in cohort_report["group"][0]["population"])
        expected = next(
            p.statistic.value for p in by_cli.measure("cohort").statistics if p.statistic.name == "patients"
        )
        assert patients == expected
        body["parameter"][1]["resource"] = {**bundles[1], "entry": bundles[1]["entry"][:3]}
        refused = requests.post(f"{url}/MeasureReport/$pool", json=body, timeout=60)
        assert refused.status_code == 422 and "different measures" in refused.text
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
