"""progress(): quiet unless stderr is a terminal or forced; configure_logging(): --quiet/--verbose levels."""

from __future__ import annotations

import io
import logging

import pytest

from fhir_pts import progress as progress_module
from fhir_pts.progress import configure_logging, progress, set_quiet, stage_bars


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _reset_quiet() -> None:
    set_quiet(False)
    yield
    set_quiet(False)


def test_silent_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    assert list(progress(range(5), desc="Reading", unit="file")) == [0, 1, 2, 3, 4]
    assert err.getvalue() == ""


def test_shown_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = FakeTerminal()
    monkeypatch.setattr("sys.stderr", err)
    bar = progress(range(3), desc="Reading", unit="file")
    assert list(bar) == [0, 1, 2]
    bar.close()
    assert "Reading" in err.getvalue() and "file" in err.getvalue()


def test_quiet_silences_even_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = FakeTerminal()
    monkeypatch.setattr("sys.stderr", err)
    configure_logging(-1)
    assert list(progress(range(3), desc="Reading")) == [0, 1, 2]
    assert "Reading" not in err.getvalue()


def test_forced_on_and_manual_updates(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    with progress(total=10, desc="Resources", unit="res", enabled=True) as bar:
        bar.update(4)
        assert bar.n == 4
    assert "Resources" in err.getvalue()
    with progress(total=2, desc="Hidden", enabled=False) as bar:
        bar.update(2)  # accepted, prints nothing
    assert "Hidden" not in err.getvalue()


def test_closed_stderr_counts_as_no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    err = io.StringIO()
    err.close()
    monkeypatch.setattr("sys.stderr", err)
    assert progress_module._stderr_is_terminal() is False


@pytest.mark.parametrize(
    ("verbosity", "level"), [(-1, logging.ERROR), (0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG)]
)
def test_configure_logging_levels(monkeypatch: pytest.MonkeyPatch, verbosity: int, level: int) -> None:
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    logger = configure_logging(verbosity)
    configure_logging(verbosity)  # a second call must not duplicate the handler
    assert logger.level == level
    logging.getLogger("fhir_pts.cohort").log(level, "built %d patients", 42)
    logging.getLogger("fhir_pts.cohort").log(level - 5, "below the level")
    assert err.getvalue().count("built 42 patients") == 1
    assert "below the level" not in err.getvalue()
    assert "fhir_pts.cohort" in err.getvalue()


def test_stage_bars_draw_the_sources_progress_callback(monkeypatch: pytest.MonkeyPatch) -> None:
    """The callback the CLI hands to server search / Bulk download: one bar per stage, closed when done."""
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    report = stage_bars(enabled=True)
    report("FHIR search", "search", 0, 3)
    report("FHIR search", "search", 2, 3)
    assert "FHIR search" in err.getvalue() and "search/s" in err.getvalue()
    report("FHIR search", "search", 3, 3)
    report("Bulk download", "file", 0, 1)  # a new stage opens its own bar
    report("Bulk download", "file", 1, 1)
    assert "Bulk download" in err.getvalue()
