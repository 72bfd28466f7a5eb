"""What a user meets first (issue #15): every argument checked before reading, user errors exit 2, no stale
outputs (a run's folder is replaced whole, via a staging folder), a failed analysis exits 3, every --help lists
the exit statuses, NDJSON of which no line is JSON and FHIR XML are unusable input."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pytest

from fhir_pts.cli import EXIT_ANALYSIS_FAILED, build_parser, main
from fhir_pts.cli import run as cli_run
from fhir_pts.outputs.staging import MARKER, staging_path
from fhir_pts.synth import synthesize


@pytest.fixture(scope="module")
def paper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("paper") / "paper.json"
    synthesize(path, patients=None, fmt="bundle")
    return path


@pytest.fixture
def no_reading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the input is read: argument mistakes must be found before."""

    def read(*args: object, **kwargs: object) -> None:
        raise AssertionError("the input was read before the arguments were checked")

    monkeypatch.setattr(cli_run, "_read", read)


def error_of(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--analysis", "no-such-id"], "unknown analysis id(s) 'no-such-id'"),
        (["--param", "foo.bar=1"], "parameters given for analyses that are not run: 'foo'"),
        (["--analysis", "cohort", "--param", "villalta.x=1"], "not run: 'villalta'"),
        (["--param", "villalta-gain-regression.nonsense=1"], "has no parameter(s) 'nonsense'"),
        (["--workers", "0"], "--workers must be at least 1"),
        (["--followup-target", "200"], "lies outside --followup-window"),
        (["--concept-map", "missing-map.json"], "ConceptMap file cannot be read"),
        (["--write-back"], "--write-back needs --server"),
    ],
)
def test_argument_mistakes_exit_2_before_reading(
    extra: list[str], message: str, paper: Path, tmp_path: Path, no_reading: None, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(paper), "--out", str(out), *extra]) == 2
    assert message in error_of(capsys)
    assert not out.exists() and not staging_path(out).exists()


def test_out_that_cannot_be_used_exits_2_before_reading(
    paper: Path, tmp_path: Path, no_reading: None, capsys: pytest.CaptureFixture[str]
) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("keep me")
    assert main(["run", str(paper), "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in error_of(capsys)
    assert main(["run", str(paper), "--out", str(a_file / "below")]) == 2  # under a file: cannot be created
    assert "cannot create a folder there" in error_of(capsys)
    assert main(["demo", "--out", str(a_file)]) == 2
    assert "is a file, not a folder" in error_of(capsys)
    foreign = tmp_path / "thesis"
    foreign.mkdir()
    (foreign / "chapter1.docx").write_text("a user's own file")
    assert main(["run", str(paper), "--out", str(foreign)]) == 2
    assert "not a fhir-pts output" in error_of(capsys)
    assert a_file.read_text() == "keep me" and [p.name for p in foreign.iterdir()] == ["chapter1.docx"]


def test_synth_out_mistakes_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert main(["synth", "--patients", "3", "--out", str(a_file)]) == 2
    assert "is a file; NDJSON is written into a folder" in error_of(capsys)
    folder = tmp_path / "cohort.json"
    folder.mkdir()
    assert main(["synth", "--out", str(folder)]) == 2
    assert "is a folder; a Bundle is written to a .json file" in error_of(capsys)


def test_unwritable_out_exits_2(paper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    if os.geteuid() != 0:  # root writes through mode bits: then only the read-only /proc case below applies
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        assert main(["run", str(paper), "--out", str(locked / "out")]) == 2
        assert "Permission denied" in error_of(capsys)
    assert main(["run", str(paper), "--out", "/proc/fhir-pts-test/out"]) == 2
    assert "cannot create a folder there" in error_of(capsys)


def test_a_previous_output_is_replaced_as_a_whole(paper: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["run", str(paper), "--out", str(out), "-q"]) == 0
    assert (out / "report.html").exists() and (out / "figures").is_dir() and (out / MARKER).exists()
    assert main(["run", str(paper), "--out", str(out), "--no-report", "--analysis", "cohort", "-q"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [MARKER, "cohort.csv", "measure-reports.json", "problems.csv", "results.csv"]
    )  # no old report.html or figures/ beside the new results
    assert {line.split(",")[0] for line in (out / "results.csv").read_text().splitlines()[1:]} == {"cohort"}
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_an_output_written_before_the_marker_existed_is_recognised(paper: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "figures").mkdir(parents=True)
    for name in ("measure-reports.json", "results.csv", "report.html", ".results.csv.abc123.tmp"):
        (out / name).write_text("old")
    assert main(["run", str(paper), "--out", str(out), "--no-report", "-q"]) == 0
    assert not (out / "report.html").exists() and not (out / ".results.csv.abc123.tmp").exists()


def test_a_failed_run_leaves_the_previous_output_and_no_staging(
    paper: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert main(["run", str(paper), "--out", str(out), "--no-report", "-q"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    from fhir_pts import pipeline

    real = pipeline.write_run

    def disk_full(*args: object, **kwargs: object) -> object:
        real(*args, **kwargs)  # the files are written into the staging folder ...
        raise OSError(28, "No space left on device")  # ... and then the disk fills up

    monkeypatch.setattr(pipeline, "write_run", disk_full)
    assert main(["run", str(paper), "--out", str(out), "-q"]) == 1
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_leftovers_of_a_killed_run_are_removed(paper: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    staging = staging_path(out)
    (staging / "figures").mkdir(parents=True)
    (staging / ".report.html.x1.tmp").write_text("<html>half")  # a kill mid-write
    aside = tmp_path / ".out.fhir-pts-old-4242"  # a kill between the two renames of a swap
    aside.mkdir()
    (aside / "results.csv").write_text("old")
    assert main(["run", str(paper), "--out", str(out), "--no-report", "-q"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not any(p.name.endswith(".tmp") for p in out.rglob("*"))


def test_a_bulk_resume_state_survives_the_cleanup(tmp_path: Path) -> None:
    from fhir_pts.outputs.staging import staged_output

    out = tmp_path / "out"
    raw = staging_path(out) / "raw"
    raw.mkdir(parents=True)
    (raw / ".fhir-pts-bulk-state").write_text("{}")
    (staging_path(out) / "results.csv").write_text("half")
    with pytest.raises(RuntimeError), staged_output(out) as stage:
        assert (stage / "raw" / ".fhir-pts-bulk-state").exists() and not (stage / "results.csv").exists()
        raise RuntimeError("the export was interrupted again")
    assert (raw / ".fhir-pts-bulk-state").exists() and not out.exists()


def test_a_failed_analysis_exits_3_with_outputs_written(
    paper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    param = 'villalta-gain-regression.terms=["nonexistent"]'
    assert main(["run", str(paper), "--out", str(out), "--no-report", "--param", param]) == EXIT_ANALYSIS_FAILED == 3
    err = capsys.readouterr().err
    assert "analysis villalta-gain-regression failed" in err and "exit status 3" in err
    assert (out / "measure-reports.json").exists()


def test_every_help_states_the_exit_statuses() -> None:
    parser = build_parser()
    helps = {"fhir-pts": parser.format_help()}
    subparsers = next(a for a in parser._actions if a.dest == "command")
    for name, sub in subparsers.choices.items():  # type: ignore[union-attr]
        helps[name] = sub.format_help()
    for name, text in helps.items():
        assert "exit status:" in text and "  2    unusable arguments" in text, name
    assert "  3    outputs written, but incomplete: at least one analysis failed" in helps["run"]
    assert "--write-back" in helps["run"] and "--bulk" in helps["run"]
    for name in ("validate", "serve"):
        assert "--write-back" not in helps[name], name
    assert "--bulk" in helps["validate"] and "--bulk" not in helps["serve"]  # validate fetches as run does
    flat = {name: re.sub(r"\s+", " ", text).replace("- ", "-") for name, text in helps.items()}
    assert "abstract-comparison.csv" in flat["demo"] and "(default -90:0)" in flat["validate"]
    assert "no default" in flat["synth"]


def test_ndjson_of_which_no_line_is_json_is_unusable(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    noise = tmp_path / "noise.ndjson"
    noise.write_bytes(bytes(range(256)) * 40 + b"\n" + b"\x00\xff garbage\n" * 50)
    assert main(["run", str(noise), "--out", str(tmp_path / "out")]) == 2
    assert "no line is JSON" in error_of(capsys)
    zipped = tmp_path / "noise.ndjson.gz"
    zipped.write_bytes(gzip.compress(b"not json at all\n" * 10))
    assert main(["run", str(zipped), "--out", str(tmp_path / "out")]) == 2
    assert "no line is JSON" in error_of(capsys)
    assert not (tmp_path / "out").exists()


def test_some_bad_lines_among_good_ones_are_problems_not_fatal(paper: Path, tmp_path: Path) -> None:
    import orjson

    lines = [orjson.dumps(e["resource"]) for e in orjson.loads(paper.read_bytes())["entry"]]
    mixed = tmp_path / "mixed.ndjson"
    mixed.write_bytes(b"\n".join([b"{broken", *lines, b"\x00garbage"]) + b"\n")
    assert main(["run", str(mixed), "--out", str(tmp_path / "out"), "--no-report", "-q"]) == 0


@pytest.mark.parametrize("name", ["bundle.xml", "bundle.json", "bundle.ndjson"])
def test_fhir_xml_is_named(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / name
    path.write_text('<?xml version="1.0"?>\n<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>')
    assert main(["run", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "FHIR XML is not supported; convert to JSON" in error_of(capsys)


def test_fhir_xml_in_a_folder_is_not_silently_left_out(
    paper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "paper.json").write_bytes(paper.read_bytes())
    (folder / "Patient-2.xml").write_text('<Patient xmlns="http://hl7.org/fhir"/>')
    assert main(["run", str(folder), "--out", str(tmp_path / "out")]) == 2
    assert "Patient-2.xml: FHIR XML is not supported; convert to JSON" in error_of(capsys)


def test_verbose_logs_every_phase(paper: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(paper), "--out", str(tmp_path / "out"), "-vv"]) == 0
    err = capsys.readouterr().err
    for line in ("Reading FHIR: 5", "Analyses: 1", "analysis villalta: ok", "written: figure kaplan-meier-patency",
                 "written: report", "Writing outputs: "):  # fmt: skip
        assert line in err, line
    assert "Patient/" not in err  # no patient ids in the log


def test_every_problem_row_names_its_file_and_line(tmp_path: Path) -> None:
    """Problems found after reading (scoring, the cohort) carry the place of the record they are about."""
    import csv

    synthesize(tmp_path / "cohort", patients=300, seed=3, fmt="ndjson")
    out = tmp_path / "out"
    assert main(["run", str(tmp_path / "cohort"), "--out", str(out), "--no-report", "-q"]) == 0
    with open(out / "problems.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    later = [r for r in rows if r["field"] in ("item", "outcome", "bodySite")]
    assert later, "the synthetic cohort has scoring and cohort problems"
    unplaced = [r for r in rows if not r["file"] or not r["line"]]
    assert unplaced == []
    for row in later[:20]:  # the line named holds the resource named
        line = Path(row["file"]).read_text(encoding="utf-8").splitlines()[int(row["line"]) - 1]
        assert f'"id":"{row["resource_id"]}"' in line.replace(" ", "")


def test_validate_summary_names_the_installed_plugin_analyses(paper: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """run runs every installed analysis; validate says so for those it cannot explain (the class-shift plugin)."""
    from fhir_pts.plugin_manager import get_plugin_manager, list_analyses

    plugins = [i.id for i, _ in list_analyses(get_plugin_manager()) if i.id == "villalta-class-shift"]
    main(["validate", str(paper)])
    out = capsys.readouterr().out
    for analysis in plugins:  # installed by scripts/test.sh into .ci/plugin-site
        assert f"{analysis}" in out.split("== Summary ==")[1] and "plugin class-shift" in out
    assert plugins, "the example plugin is installed for the tests"
