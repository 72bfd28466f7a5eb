"""The minimum cell size shared by serve and pool (fhir_pts.disclosure)."""

from __future__ import annotations

import argparse
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fhir_pts.disclosure import (
    MIN_CELL_COUNT,
    check_min_cell_count,
    is_disclosive,
    masked,
    selection_blocks,
    suppress_count,
)
from fhir_pts.options import add_min_cell_count_argument


def test_default_is_cumulus_minimum_bin() -> None:
    assert MIN_CELL_COUNT == 10


@pytest.mark.parametrize(("count", "shown"), [(0, 0), (1, None), (9, None), (10, 10), (250, 250)])
def test_counts_one_to_nine_are_suppressed(count: int, shown: int | None) -> None:
    assert suppress_count(count) == shown
    assert is_disclosive(count) == (shown is None)


def test_one_turns_suppression_off() -> None:
    assert suppress_count(1, 1) == 1
    assert not is_disclosive(1, 1)


def test_zero_turns_suppression_off_too() -> None:
    assert check_min_cell_count(0) == 0 and check_min_cell_count("0") == 0
    assert [suppress_count(c, 0) for c in (0, 1, 5)] == [0, 1, 5]


@pytest.mark.parametrize("bad", [-1, -3, "x", 2.5, True, None])
def test_bad_minimum_is_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="minimum cell count"):
        check_min_cell_count(bad)


def test_masked_is_data_absent_reason() -> None:
    assert masked() == {"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "masked"}


def test_argument_shared_by_commands() -> None:
    parser = argparse.ArgumentParser()
    add_min_cell_count_argument(parser)
    assert parser.parse_args([]).min_cell_count == MIN_CELL_COUNT
    assert parser.parse_args(["--min-cell-count", "5"]).min_cell_count == 5
    assert parser.parse_args(["--min-cell-count", "0"]).min_cell_count == 0
    with pytest.raises(SystemExit):
        parser.parse_args(["--min-cell-count", "-1"])


@given(st.lists(st.integers(0, 30), max_size=80), st.integers(1, 12))
def test_blocks_partition_and_never_split_ties(keys: list[int], k: int) -> None:
    blocks = selection_blocks(keys, k)
    assert [key for block in blocks for key in block] == sorted(keys)
    if len(keys) >= k:
        assert all(len(block) >= k for block in blocks)
    for left, right in itertools.pairwise(blocks):
        assert left[-1] < right[0]  # a cut never falls between equal keys


def test_blocks_of_small_cohort_are_one() -> None:
    assert selection_blocks([3, 1, 2], 10) == [[1, 2, 3]]
    assert selection_blocks([], 10) == []
