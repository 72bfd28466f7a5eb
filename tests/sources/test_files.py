"""Reading FHIR files: input expansion, Bundles, NDJSON (plain, gzip, byte ranges), malformed input."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fhir_pts.problems import Problem
from fhir_pts.sources.blocks import count_lines, iter_ndjson_blocks, split_at_pieces
from fhir_pts.sources.files import (
    InputError,
    RawResource,
    expand_inputs,
    iter_ndjson_file,
    iter_resources,
)
from fhir_pts.sources.prefilter import CandidateFilter

DATA = Path(__file__).parent.parent / "data"


def resource(i: int, resource_type: str = "Patient") -> dict:
    return {"resourceType": resource_type, "id": f"r{i}"}


def ndjson(path: Path, resources: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return path


# --- expand_inputs -------------------------------------------------------------------------------
def test_folders_are_read_recursively_in_sorted_order(tmp_path):
    for name in ["b/z.ndjson", "b/a.json", "a.ndjson.gz", "c/d/e.jsonl", "c/x.json.gz", "readme.md", "b/y.csv"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    files = expand_inputs([tmp_path])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == [
        "a.ndjson.gz",
        "b/a.json",
        "b/z.ndjson",
        "c/d/e.jsonl",
        "c/x.json.gz",
    ]


def test_arguments_keep_their_order_and_a_file_is_read_once(tmp_path):
    a = ndjson(tmp_path / "a.ndjson", [])
    (tmp_path / "sub").mkdir()
    b = ndjson(tmp_path / "sub" / "b.ndjson", [])
    assert expand_inputs([b, tmp_path, a]) == [b, a]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p / "absent.ndjson", "no such file or folder"),
        (lambda p: (p / "empty").mkdir() or p / "empty", "folder holds no FHIR file"),
        (lambda p: (p / "x.csv").write_text("") or p / "x.csv", "not a FHIR file name"),
    ],
)
def test_unusable_inputs_are_input_errors_naming_the_path(tmp_path, make, message):
    path = make(tmp_path)
    with pytest.raises(InputError, match=message) as raised:
        expand_inputs([path])
    assert str(path) in str(raised.value)


def test_no_input_is_an_input_error():
    with pytest.raises(InputError, match="no INPUT"):
        expand_inputs([])


# --- JSON files ------------------------------------------------------------------------------------
def test_bundle_entries_with_entry_index_as_line(tmp_path):
    inner = {
        "resourceType": "Bundle",
        "type": "searchset",
        "entry": [{"resource": resource(3)}, {"resource": resource(4)}],
    }
    document = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": resource(1)},
            {"request": {"method": "DELETE"}},
            {"resource": inner},
            {"resource": resource(5)},
        ],
    }
    path = tmp_path / "b.json"
    path.write_text(json.dumps(document))
    read = [(r.resource["id"], r.line) for r in iter_resources(path)]
    assert read == [("r1", 1), ("r3", 3), ("r4", 3), ("r5", 4)]


def test_single_resource_json_and_gzip(tmp_path):
    path = tmp_path / "p.json.gz"
    path.write_bytes(gzip.compress(json.dumps(resource(1)).encode()))
    assert list(iter_resources(path)) == [RawResource(resource(1), str(path), 1)]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "not valid JSON"), (b"[1, 2]", "not a FHIR resource"), (b'{"id": "x"}', "not a FHIR resource"),
     (b"", "not valid JSON")],
)  # fmt: skip
def test_unusable_json_file_is_an_input_error(tmp_path, content, message):
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(InputError, match=message):
        list(iter_resources(path))


def test_broken_gzip_is_an_input_error(tmp_path):
    path = tmp_path / "x.ndjson.gz"
    path.write_bytes(gzip.compress(b'{"resourceType":"Patient","id":"1"}\n' * 1000)[:-20])
    with pytest.raises(InputError, match="cannot be read"):
        list(iter_resources(path))


# --- NDJSON ----------------------------------------------------------------------------------------
def test_ndjson_lines_and_malformed_lines(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text(
        '{"resourceType":"Patient","id":"1"}\n\n{oops\n"just a string"\n{"resourceType":"Patient","id":"2"}\r\n'
    )
    problems: list[Problem] = []
    counted: list[int] = []
    read = list(iter_resources(path, problems=problems, on_lines=counted.append))
    assert [(r.resource["id"], r.line) for r in read] == [("1", 1), ("2", 5)]
    assert [(p.resource_type, p.field, p.line, p.file) for p in problems] == [
        ("?", "json", 3, str(path)),
        ("?", "resourceType", 4, str(path)),
    ]
    assert sum(counted) == 4


def test_a_bundle_on_an_ndjson_line_is_expanded(tmp_path):
    path = ndjson(
        tmp_path / "x.ndjson", [resource(1), {"resourceType": "Bundle", "entry": [{"resource": resource(2)}]}]
    )
    assert [(r.resource["id"], r.line) for r in iter_resources(path)] == [("r1", 1), ("r2", 2)]


@settings(max_examples=60)
@given(st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=30), st.integers(1, 64))
def test_blocks_hold_whole_lines_and_lose_nothing(tmp_path_factory, lines, block_size):
    path = tmp_path_factory.mktemp("blocks") / "x.ndjson"
    data = b"\n".join(lines)
    path.write_bytes(data)
    blocks = list(iter_ndjson_blocks(path, block_size=block_size))
    assert b"".join(blocks) == data
    assert all(block.endswith(b"\n") for block in blocks[:-1])


@pytest.mark.parametrize(
    ("block", "expected"), [(b"a\nb\n", (2, 2)), (b"a\n\nb", (3, 2)), (b"\n", (1, 0)), (b"a", (1, 1))]
)
def test_count_lines(block, expected):
    assert count_lines(block) == expected


def test_byte_ranges_read_the_same_lines_as_the_whole_file(tmp_path):
    path = ndjson(tmp_path / "x.ndjson", [resource(i) for i in range(500)])
    parts = split_at_pieces(path, part_bytes=4096, piece=1024)
    assert len(parts) > 3 and parts[0][0] == 0 and parts[-1][1] is None
    data = path.read_bytes()
    assert all(start == 0 or data[start - 1 : start] == b"\n" for start, *_ in parts)
    assert [h for _, _, h, _ in parts][1:] == [h for _, _, _, h in parts][:-1]  # the hash ranges tile the file
    ids = [r.resource["id"] for start, end, *_ in parts for r in iter_ndjson_file(path, start=start, end=end)]
    assert ids == [f"r{i}" for i in range(500)]


def test_pre_filter_skips_lines_but_counts_them(tmp_path):
    rows = [resource(i, "Observation") for i in range(10)] + [resource(99, "Patient")]
    path = ndjson(tmp_path / "x.ndjson", rows)
    counted: list[int] = []
    read = list(iter_resources(path, candidates=CandidateFilter.for_contract(), on_lines=counted.append))
    assert [(r.resource["id"], r.line) for r in read] == [("r99", 11)]
    assert sum(counted) == 11


def test_truncated_last_line_is_reported_even_when_not_a_candidate(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text('{"resourceType":"Observation","id":"1"}\n{"resourceType":"Observation","id":"2","sta')
    problems: list[Problem] = []
    assert list(iter_resources(path, candidates=CandidateFilter.for_contract(), problems=problems)) == []
    assert [(p.field, p.line) for p in problems] == [("json", 2)]


def test_real_synthea_files_are_read():
    bundle = list(iter_resources(DATA / "synthea-bundle.json"))
    assert len(bundle) == len(json.loads((DATA / "synthea-bundle.json").read_text())["entry"])
    assert [r.line for r in bundle] == list(range(1, len(bundle) + 1))
    problems: list[Problem] = []
    procedures = list(iter_resources(DATA / "synthea-procedures.ndjson", problems=problems))
    assert len(procedures) == 40 and problems == []


def test_truncated_last_line_before_trailing_blank_lines_has_its_own_line_number(tmp_path):
    path = tmp_path / "x.ndjson"
    path.write_text('{"resourceType":"Observation","id":"1"}\n{"resourceType":"Observation","id":"2","st\n\n\n')
    problems: list[Problem] = []
    list(iter_resources(path, candidates=CandidateFilter.for_contract(), problems=problems))
    assert [(p.field, p.line) for p in problems] == [("json", 2)]


def test_ndjson_named_json_gets_a_hint(tmp_path):
    path = tmp_path / "export.json"
    path.write_text('{"resourceType":"Patient","id":"1"}\n{"resourceType":"Patient","id":"2"}\n')
    with pytest.raises(InputError, match=r"must be named \.ndjson"):
        list(iter_resources(path))


NDJSON_LINES = [
    json.dumps(resource(1)),
    json.dumps(resource(2, "Observation")),
    json.dumps({"resourceType": "Observation", "id": "long", "note": "x" * 300, "code": {"text": "fhir-pts.org"}}),
    "",
    "not json",
    '{"resourceType":"Patient","id":"cut',
]


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(NDJSON_LINES), min_size=1, max_size=25), st.booleans(), st.integers(8, 200))
def test_reading_through_a_small_reused_buffer_gives_the_same_records(
    tmp_path_factory, monkeypatch, lines, final_newline, block_size
):
    """Blocks are views of one read buffer (grown for a line longer than it): whatever its size, the records,
    line numbers, problems, line counts and fingerprint pieces are those of reading the file in one block."""
    from fhir_pts.sources import files
    from fhir_pts.sources.fingerprint import PieceHasher, combine

    path = tmp_path_factory.mktemp("reuse") / "x.ndjson"
    path.write_text("\n".join(lines) + ("\n" if final_newline else ""))

    def read(size: int) -> tuple:
        monkeypatch.setattr(files, "BLOCK_SIZE", size)
        problems: list[Problem] = []
        counts: list[int] = []
        hasher = PieceHasher(piece=64)
        try:
            records = [
                (r.resource.get("id"), r.line)
                for r in iter_ndjson_file(
                    path, candidates=CandidateFilter.for_contract(), problems=problems, on_lines=counts.append,
                    hasher=hasher,
                )
            ]  # fmt: skip
        except InputError as error:
            return ("error", str(error))
        return records, [(p.field, p.line) for p in problems], sum(counts), combine(hasher.digests())

    whole = read(1 << 20)
    assert read(block_size) == whole
    if whole[0] != "error":
        expected = PieceHasher(piece=64)
        expected.feed(0, path.read_bytes())
        assert whole[3] == combine(expected.digests())
        assert whole[2] == sum(1 for text in path.read_bytes().split(b"\n") if text.strip())


def test_a_multi_member_gzip_is_read_whole_through_the_decompressing_thread(tmp_path):
    """``.ndjson.gz`` is decompressed in a thread ahead of the reader: every member, every line, in order."""
    path = tmp_path / "x.ndjson.gz"
    lines = [json.dumps(resource(i)).encode() + b"\n" for i in range(3000)]
    path.write_bytes(gzip.compress(b"".join(lines[:2000])) + gzip.compress(b"".join(lines[2000:])))
    read = [(r.resource["id"], r.line) for r in iter_ndjson_file(path, candidates=CandidateFilter.for_contract())]
    assert read == [(f"r{i}", i + 1) for i in range(3000)]
