"""report.html in a real browser: headless Chromium renders it offline, the numbers are in the DOM, the
figures decode, nothing is fetched from the network, no console error; the screenshot is kept as an artefact.

Skipped (with the reason) when Chromium is not installed; CI installs Debian's ``chromium``. Set
``FHIR_PTS_CHROMIUM`` to use another binary and ``FHIR_PTS_ARTIFACTS`` to keep the screenshot and the report
(default: pytest's ``tmp_path``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

from fhir_pts.outputs.report import write_report
from tests.outputs.report_factory import make_cohort, make_outcomes, make_run_info, text_of

CHROMIUM = Path(os.environ.get("FHIR_PTS_CHROMIUM", "/usr/bin/chromium"))
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason=f"headless Chromium not installed at {CHROMIUM} (apt-get install chromium)"
)
#: Hosts Chromium itself talks to (updates, time, accounts); never requested by the page.
BROWSER_HOSTS = re.compile(r"(^|\.)(google\.com|googleapis\.com|gstatic\.com|gvt1\.com|googleusercontent\.com)$")
_profiles = itertools.count()


def chromium(tmp: Path, url: str, *extra: str, timeout: float = 90) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run headless Chromium offline on ``url``; return the process and its network log."""
    netlog = tmp / f"netlog-{next(_profiles)}.json"
    args = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / f'profile-{next(_profiles)}'}",
        "--host-resolver-rules=MAP * ~NOTFOUND",  # offline: any host lookup fails
        f"--log-net-log={netlog}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        *extra,
        url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    return proc, netlog


def page_requests(netlog: Path) -> set[str]:
    """http(s) URLs in the network log, without Chromium's own background requests."""
    if not netlog.exists():
        return set()
    urls = set(re.findall(r'"url":"(https?://[^"]*)"', netlog.read_text(errors="replace")))
    return {u for u in urls if not BROWSER_HOSTS.search(urlparse(u).hostname or "")}


def console_messages(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = os.environ.get("FHIR_PTS_ARTIFACTS")
    folder = Path(root) / "report" if root else tmp_path_factory.mktemp("artefacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def report(artefacts: Path) -> Path:
    fragment = "<p>Technical success: paper 41/42 (97.6 %), this run 18/19 (94.7 %).</p>"
    return write_report(artefacts, make_cohort(), make_outcomes(), make_run_info(), comparison_html=fragment)


def test_renders_offline_with_the_numbers_in_the_dom(report: Path, tmp_path: Path) -> None:
    proc, netlog = chromium(tmp_path, report.as_uri(), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = proc.stdout
    assert "<h1>" in dom and "outcome report" in dom
    text = text_of(dom)
    for number in ("18/19", "94.7 %", "14 (10–19)", "5 (2–9)", "57 (39–72)", "< 0.0001", "73.2 %", "R² = 0.734"):
        assert number in text, number
    assert page_requests(netlog) == set()
    assert console_messages(proc.stderr) == []


def test_every_figure_decodes(report: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load',()=>{const p=document.createElement('pre');p.id='probe';"
        "p.textContent=JSON.stringify([...document.images].map(i=>[i.complete,i.naturalWidth,i.naturalHeight]));"
        "document.body.appendChild(p);});</script></body>"
    )
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", script), encoding="utf-8")
    proc, _ = chromium(tmp_path, probe.as_uri(), "--dump-dom")
    found = re.search(r'<pre id="probe">([^<]*)</pre>', proc.stdout)
    assert found, proc.stderr[-2000:]
    images = json.loads(found.group(1))
    assert len(images) == 4
    assert all(complete and width > 300 and height > 150 for complete, width, height in images), images


def test_screenshot_is_kept_and_not_blank(report: Path, artefacts: Path, tmp_path: Path) -> None:
    from PIL import Image

    shot = artefacts / "report-screenshot.png"
    shot.unlink(missing_ok=True)
    proc, _ = chromium(tmp_path, report.as_uri(), f"--screenshot={shot}", "--window-size=1280,4000")
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 4000)
        grey = image.convert("L")
        histogram = grey.histogram()
    non_white = sum(histogram[:235]) / sum(histogram)
    assert non_white > 0.03, f"the page looks blank ({non_white:.1%} non-white pixels)"


def test_the_detectors_see_a_network_fetch_and_a_console_error(tmp_path: Path) -> None:
    """Negative control: the checks above would fail on a page that loads a remote image or logs an error."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        '<!DOCTYPE html><html><body><img src="https://cdn.example.org/logo.png">'
        "<script>console.error('broken page')</script></body></html>"
    )
    proc, netlog = chromium(tmp_path, bad.as_uri(), "--dump-dom")
    assert "https://cdn.example.org/logo.png" in page_requests(netlog)
    assert any("broken page" in line for line in console_messages(proc.stderr))


# --- a synthetic cohort of 2,000 patients, end to end through the command line ---------------------------------

LARGE_PATIENTS = 2000


@pytest.fixture(scope="module")
def large_run(artefacts: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``fhir-pts synth --patients 2000`` then ``fhir-pts run`` (the report as a user gets it); kept as artefact."""
    from fhir_pts.cli import main

    data = tmp_path_factory.mktemp("large") / "cohort"
    assert main(["synth", "--patients", str(LARGE_PATIENTS), "--seed", "15", "--out", str(data), "-q"]) == 0
    out = artefacts / f"report-{LARGE_PATIENTS}"
    assert main(["run", str(data), "--out", str(out), "-q"]) == 0
    return out


def results_of(out: Path) -> dict[tuple[str, str], dict[str, str]]:
    import csv

    with open(out / "results.csv", newline="", encoding="utf-8") as handle:
        return {(r["measure"], r["statistic"]): r for r in csv.DictReader(handle)}


def test_large_report_shows_the_runs_numbers(large_run: Path, tmp_path: Path) -> None:
    from fhir_pts.outputs.report.formatting import fmt_num, fmt_percent

    proc, netlog = chromium(tmp_path, (large_run / "report.html").as_uri(), "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = text_of(proc.stdout)
    patients = sum(1 for _ in (large_run / "cohort.csv").open(encoding="utf-8")) - 1
    results = results_of(large_run)
    assert f"{patients} patients with an index stenting procedure" in text
    assert f"Patients {patients}" in text  # Table 1
    for measure in ("primary-patency", "primary-assisted-patency", "secondary-patency"):
        km12 = float(results[(measure, "km_12m")]["value"])
        assert fmt_percent(km12) in text, measure
    pairs = float(results[("villalta", "n_pairs")]["value"])
    assert re.search(rf"Villalta {fmt_num(pairs)} ", text)  # the pairs column of the scores table
    assert "lines per patient are not drawn" in text and "one line joins" not in text  # > 400 pairs
    assert "Each curve stops where fewer than" in text
    for placeholder in ("{{", "{%", "'…': expected", "−0.00 ", "-0.00"):
        assert placeholder not in text, placeholder
    assert not re.search(r"\b(nan|NaN|undefined)\b", text)  # ("None" is a Villalta class)
    numbers = [int(n) for n in re.findall(r'<h2 id="[^"]+">(\d+)\. ', proc.stdout)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 10  # sections numbered in order
    assert page_requests(netlog) == set() and console_messages(proc.stderr) == []


def test_large_report_screenshot(large_run: Path, artefacts: Path, tmp_path: Path) -> None:
    """The first screens of the 2,000-patient report, kept as an artefact (report-2000-screenshot.png)."""
    from PIL import Image

    shot = artefacts / f"report-{LARGE_PATIENTS}-screenshot.png"
    shot.unlink(missing_ok=True)
    proc, _ = chromium(tmp_path, (large_run / "report.html").as_uri(), f"--screenshot={shot}",
                       "--window-size=1280,5200")  # fmt: skip
    assert proc.returncode == 0 and shot.exists(), proc.stderr[-2000:]
    with Image.open(shot) as image:
        grey = image.convert("L")
        histogram = grey.histogram()
        # the patient-flow figure and the cards are drawn: the page is not blank
        assert sum(histogram[:235]) / sum(histogram) > 0.05


def test_large_report_figures_and_tables_open(large_run: Path, tmp_path: Path) -> None:
    probe = large_run / "probe.html"
    script = (
        "<script>window.addEventListener('load',()=>{const p=document.createElement('pre');p.id='probe';"
        "p.textContent=JSON.stringify({images:[...document.images].map(i=>[i.complete,i.naturalWidth]),"
        "links:[...document.links].map(a=>a.getAttribute('href'))});document.body.appendChild(p);});</script></body>"
    )
    probe.write_text((large_run / "report.html").read_text(encoding="utf-8").replace("</body>", script))
    try:
        proc, _ = chromium(tmp_path, probe.as_uri(), "--dump-dom")
    finally:
        probe.unlink()
    found = re.search(r'<pre id="probe">([^<]*)</pre>', proc.stdout)
    assert found, proc.stderr[-2000:]
    seen = json.loads(found.group(1))
    assert len(seen["images"]) == 4 and all(ok and width > 300 for ok, width in seen["images"])
    files = [h for h in seen["links"] if not h.startswith("#")]
    assert any(h.endswith(".docx") for h in files) and any(h.endswith(".pdf") for h in files)
    for href in files:  # every linked file exists beside the page
        assert (large_run / href).exists(), href
