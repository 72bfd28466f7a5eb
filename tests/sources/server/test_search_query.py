"""Search queries never lose a code: long ones are split (OR lists halved), dropped parameters are detected."""

from __future__ import annotations

from urllib.parse import urlencode

from fhir_pts.sources.server.search import _split_list, dropped_parameters, split_query, token_list


def test_split_query_keeps_every_code_and_fits() -> None:
    codings = [("urn:local", f"CODE-{i:04d}") for i in range(300)] + [("urn:x", "a,b")]
    query = {"code": token_list(codings), "patient": "p1,p2", "_count": "50"}
    parts = split_query(query, 1000)
    assert len(parts) > 1
    assert all(len(urlencode(part)) <= 1000 for part in parts)
    assert all(part["patient"] == "p1,p2" and part["_count"] == "50" for part in parts)
    rejoined = [item for part in parts for item in _split_list(part["code"])]
    assert rejoined == _split_list(query["code"])  # the escaped comma in "a\\,b" did not split
    assert len(rejoined) == len(codings)


def test_dropped_parameters_from_the_self_link() -> None:
    sent = {"code": "x|y", "_include": "Procedure:patient", "_count": "50"}
    assert dropped_parameters(sent, "http://h/fhir/Procedure?code=x%7Cy&_count=50&_offset=0") == ["_include"]
    assert dropped_parameters(sent, "http://h/fhir/Procedure?code:text=x&_include=Procedure:patient") == []
    assert dropped_parameters(sent, "http://h/fhir/Procedure") == []  # no echo: nothing can be said
