"""The command line end to end (contract §3): demo, run on every input format, exit statuses, no partial output."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pytest

from fhir_pts.cli import main
from fhir_pts.synth import synthesize

OUTPUT_FILES = {"measure-reports.json", "results.csv", "cohort.csv", "problems.csv"}


def read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def results(path: Path) -> dict[tuple[str, str], dict[str, str]]:
    return {(r["measure"], r["statistic"]): r for r in read_rows(path / "results.csv")}


@pytest.fixture(scope="module")
def paper_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The paper cohort as one Bundle, as NDJSON per resource type, and as gzipped NDJSON."""
    root = tmp_path_factory.mktemp("paper")
    inputs = {
        "bundle": root / "paper.json",
        "ndjson": root / "ndjson",
        "ndjson.gz": root / "ndjson-gz",
    }
    for fmt, path in inputs.items():
        synthesize(path, patients=None, fmt=fmt)  # type: ignore[arg-type]
    return inputs


@pytest.fixture(scope="module")
def paper_runs(paper_formats: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    outs = {}
    for fmt, path in paper_formats.items():
        out = tmp_path_factory.mktemp(f"out-{fmt.replace('.', '-')}")
        assert main(["run", str(path), "--out", str(out), "--no-report", "-q"]) == 0
        outs[fmt] = out
    return outs


def test_same_cohort_from_bundle_ndjson_and_gzip_gives_identical_cohort_csv(paper_runs: dict[str, Path]) -> None:
    cohorts = {fmt: (out / "cohort.csv").read_bytes() for fmt, out in paper_runs.items()}
    assert cohorts["bundle"] == cohorts["ndjson"] == cohorts["ndjson.gz"]
    reference = results(paper_runs["bundle"])
    for fmt in ("ndjson", "ndjson.gz"):
        other = results(paper_runs[fmt])
        assert other.keys() == reference.keys()
        for key, row in reference.items():
            for column in ("value", "ci_low", "ci_high", "p_value", "n"):
                a, b = row[column], other[key][column]
                assert (a == "") == (b == ""), (fmt, key, column)
                if a:  # 12 significant digits (contract §4); regressions may differ in the last bits
                    assert float(a) == pytest.approx(float(b), rel=1e-12, abs=1e-300), (fmt, key, column)


def test_run_on_the_paper_cohort_gives_the_abstracts_figures(paper_runs: dict[str, Path]) -> None:
    out = paper_runs["ndjson.gz"]
    assert {p.name for p in out.iterdir()} >= OUTPUT_FILES
    cohort = read_rows(out / "cohort.csv")
    assert len(cohort) == 42
    r = results(out)

    def value(measure: str, statistic: str) -> float:
        return float(r[(measure, statistic)]["value"])

    assert value("cohort", "patients") == 42
    assert (value("cohort", "female"), value("cohort", "male")) == (27, 15)
    assert round(value("cohort", "age_mean"), 1) == 47.3
    assert round(value("cohort", "age_sd")) == 17
    assert (value("cohort", "age_min"), value("cohort", "age_max")) == (22, 86)
    assert (value("technical-success", "numerator"), value("technical-success", "denominator")) == (41, 42)
    assert value("major-complications", "numerator") == 0
    assert [round(value("imaging-follow-up", s), 1) for s in ("median_months", "q1_months", "q3_months")] == [
        18.1,
        9.7,
        34.4,
    ]
    for measure, patent in (("primary-patency", 29), ("primary-assisted-patency", 33), ("secondary-patency", 37)):
        assert value(measure, "patients") == 42
        assert value(measure, "patent_at_last_follow_up") == patent
        assert value(measure, "events") == 42 - patent
    villalta = [value("villalta", s) for s in ("baseline_median", "baseline_q1", "baseline_q3")]
    assert villalta == [14, 10, 19]
    assert [value("villalta", s) for s in ("followup_median", "followup_q1", "followup_q3")] == [5, 2, 9]
    assert [value("civiq20", s) for s in ("baseline_median", "baseline_q1", "baseline_q3")] == [57, 39, 72]
    assert [value("civiq20", s) for s in ("followup_median", "followup_q1", "followup_q3")] == [30, 24, 50]
    for measure in ("villalta", "civiq20"):
        assert float(r[(measure, "wilcoxon")]["p_value"]) < 0.0001
        assert r[(measure, "n_pairs")]["value"] == "42"


def test_demo_writes_everything_and_agrees_with_the_abstract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    assert "Primary patency" in printed and "29/42" in printed
    assert {p.name for p in tmp_path.iterdir()} >= OUTPUT_FILES | {"report.html", "abstract-comparison.csv"}
    rows = read_rows(tmp_path / "abstract-comparison.csv")
    differing = {row["figure"] for row in rows if row["check"] != "ok"}
    # Every descriptive figure, every significance pattern agrees; what differs is where the abstract is
    # inconsistent (66.7 % is not 29/42; a CI containing 0 with P<0.0001) or a regression CI bound.
    assert all("95 % CI" in figure or figure == "Primary patency at last follow-up (%)" for figure in differing)
    assert "Primary patency at last follow-up (%)" in differing
    assert len(rows) - len(differing) >= 30


def test_missing_input_is_exit_2_with_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "nowhere.ndjson"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere.ndjson" in err[0]
    assert not out.exists()


def test_unusable_arguments_are_exit_2(tmp_path: Path, paper_formats: dict[str, Path]) -> None:
    bundle = str(paper_formats["bundle"])
    with pytest.raises(SystemExit) as exc:
        main(["run", bundle])  # --out missing
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["run", bundle, "--out", str(tmp_path), "--baseline-window", "0:-90"])
    assert exc.value.code == 2
    assert main(["run", bundle, "--out", str(tmp_path / "a"), "--analysis", "no-such-measure"]) == 2
    assert not (tmp_path / "a").exists()
    assert main(["run", "--out", str(tmp_path / "b")]) == 2


def test_bad_records_are_reported_and_the_run_completes(tmp_path: Path, paper_formats: dict[str, Path]) -> None:
    export = tmp_path / "export"
    export.mkdir()
    for path in paper_formats["ndjson.gz"].iterdir():
        with gzip.open(path, "rb") as src:
            (export / path.name.removesuffix(".gz")).write_bytes(src.read())
    with open(export / "Observation.ndjson", "ab") as handle:
        handle.write(b'{"resourceType": "Observation", "id": "broken"\n')
    out = tmp_path / "out"
    assert main(["run", str(export), "--out", str(out), "--no-report", "-q"]) == 0
    problems = read_rows(out / "problems.csv")
    broken = [p for p in problems if p["field"] == "json"]
    assert len(broken) == 1 and broken[0]["file"].endswith("Observation.ndjson") and broken[0]["line"]
    assert len(read_rows(out / "cohort.csv")) == 42


def test_analysis_selection_and_listing(
    tmp_path: Path, paper_formats: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        [
            "run",
            str(paper_formats["bundle"]),
            "--out",
            str(out),
            "--no-report",
            "-q",
            "--analysis",
            "cohort",
            "--analysis",
            "technical-success",
        ]
    )
    assert code == 0
    assert {r["measure"] for r in read_rows(out / "results.csv")} == {"cohort", "technical-success"}
    assert main(["analyses"]) == 0
    listing = capsys.readouterr().out
    for measure in ("cohort", "primary-assisted-patency", "civiq20-gain-regression"):
        assert measure in listing


HEAVY_MODULES = ("pandas", "numpy", "scipy", "lifelines", "statsmodels", "matplotlib", "requests", "fhir.resources")


@pytest.mark.parametrize("argv", [["--help"], ["analyses"], ["serve", "--help"]])
def test_help_and_listing_do_not_import_the_heavy_libraries(argv: list[str]) -> None:
    """``--help`` and ``analyses`` only parse and list: the statistics, plotting and HTTP stacks stay unloaded.

    Only fhir-pts's own plugins are loaded (an out-of-tree plugin installed beside may import what it likes).
    What keeps these commands fast; their times are measured by ``benchmarks/bench_peers.sh``, never asserted.
    """
    import os
    import subprocess
    import sys

    env = {**os.environ, "FHIR_PTS_PLUGINS": ""}  # no entry point: the built-in plugins only

    script = (
        "import sys\n"
        "from fhir_pts.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"loaded = sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules)\n"
        "print('LOADED', ','.join(loaded))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    assert "LOADED \n" in done.stdout, done.stdout[-300:]


def test_the_parser_built_for_one_command_still_accepts_every_command() -> None:
    from fhir_pts.cli import build_parser

    assert build_parser("serve").parse_args(["serve", "--port", "0"]).port == 0
    assert build_parser().parse_args(["analyses"]).command == "analyses"
    assert build_parser("run").parse_args(["run", "x", "--out", "o"]).workers >= 1


def test_every_output_is_byte_identical_whatever_the_worker_count(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One big NDJSON file is read in parts by both workers; problems.csv (files, lines), cohort.csv and
    results.csv come out byte for byte as with one worker, measure-reports.json too except what names the run
    itself (its uuids and its time), and the report names the inputs with the same fingerprints."""
    import json
    import re

    from fhir_pts.engines import local
    from fhir_pts.sources import fingerprint

    export = tmp_path / "export"
    synthesize(export, patients=60, seed=4, fmt="ndjson", noise_per_patient=40)
    observations = export / "Observation.ndjson"
    lines = observations.read_bytes().splitlines(keepends=True)
    # malformed lines and a duplicate spread through the file, so that problems come from several parts
    for at in (len(lines) // 5, len(lines) // 2, len(lines) - 3):
        lines.insert(at, b'{"resourceType":"Observation","id":"broken"\n')
    lines.insert(len(lines) // 3, b"not json at all\n")
    observations.write_bytes(b"".join(lines))
    monkeypatch.setattr(fingerprint, "PIECE_BYTES", 8192)
    monkeypatch.setattr(local, "PART_BYTES", 3 * 8192)
    assert len(local._tasks([observations])) > 8
    outputs = {}
    for workers in ("1", "2"):
        out = tmp_path / f"out{workers}"
        assert main(["run", str(export), "--out", str(out), "--workers", workers, "-q"]) == 0
        outputs[workers] = {name: (out / name).read_bytes() for name in sorted(OUTPUT_FILES)}
        reports = json.loads(outputs[workers]["measure-reports.json"])
        run_identity = {reports["id"], reports["timestamp"]}
        for entry in reports["entry"]:
            run_identity |= {entry["fullUrl"], entry["resource"]["id"], entry["resource"]["date"]}
        masked = outputs[workers]["measure-reports.json"].decode()
        for value in sorted(run_identity, key=len, reverse=True):
            masked = masked.replace(value, "RUN")
        assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", masked)  # nothing else varies from run to run
        outputs[workers]["measure-reports.json"] = masked.encode()
        outputs[workers]["fingerprints"] = b"".join(
            line for line in (out / "report.html").read_bytes().splitlines() if str(observations).encode() in line
        )
    assert outputs["1"] == outputs["2"]
    assert outputs["1"]["problems.csv"].count(b"Observation.ndjson") >= 4
    assert fingerprint.fingerprint_file(observations).encode() in outputs["1"]["fingerprints"]


def test_the_run_keeps_the_bundle_it_wrote_for_the_write_back(paper_formats: dict[str, Path], tmp_path: Path) -> None:
    """``write_run`` gives ``measure-reports.json`` as the dict it wrote (``RunFiles.bundle``): the write-back sends
    that, not the file read back — and it is the file's content exactly. The plugins describe their analyses
    once per run."""
    import json

    from fhir_pts import pipeline

    plan = pipeline.plan_analyses(["cohort", "technical-success"])
    cohort = pipeline.load_cohort([paper_formats["bundle"]], instruments=plan.instruments)
    written = pipeline.write_run(tmp_path, cohort, pipeline.analyse(cohort, plan=plan), report=False)
    assert isinstance(written, pipeline.RunFiles)
    assert written["measure-reports.json"] == tmp_path / "measure-reports.json"
    assert json.loads((tmp_path / "measure-reports.json").read_text(encoding="utf-8")) == written.bundle
    measures = [e["resource"]["measure"].split("|")[0].rsplit("/", 1)[-1] for e in written.bundle["entry"]]
    assert measures == plan.analysis_ids


def test_the_describe_hook_runs_once_per_run(
    paper_formats: dict[str, Path], tmp_path: Path, hook_calls: dict[str, int]
) -> None:
    """A whole ``fhir-pts run`` asks the plugins once for their instruments and once for their analyses."""
    assert main(["run", str(paper_formats["bundle"]), "--out", str(tmp_path / "out"), "--no-report", "-q"]) == 0
    assert hook_calls == {"instruments": 1, "describe": 1}


def test_the_heap_is_frozen_at_exit_so_shutdown_walks_nothing() -> None:
    """Interpreter shutdown's full collections would walk every object of a run (~0.9 s at 10k, measured in
    benchmarks/): ``main`` has ``gc.freeze`` run at exit, once however often it is called."""
    import subprocess
    import sys

    script = (
        "import atexit, gc\n"
        "atexit.register(lambda: print('FROZEN', gc.get_freeze_count() > 0))\n"  # runs after main's (LIFO)
        "from fhir_pts.cli import main\n"
        "main(['analyses']); main(['analyses'])\n"
        "print('BEFORE', gc.get_freeze_count() > 0)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.splitlines()[-2:] == ["BEFORE False", "FROZEN True"]
