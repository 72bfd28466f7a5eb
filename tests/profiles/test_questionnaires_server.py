"""The packaged Questionnaires go into a real FHIR server (sekmet-fhir) and come back intact.

A hospital loads ``Questionnaire/villalta`` and ``Questionnaire/civiq-20`` into its server so that forms can be
built from them; this checks that a FHIR R4 server accepts them as they are (update with a client id, and
create with a server id) and returns them unchanged but for what a server adds (``meta``, ``text``, the id of
a created resource). The server is started by the harness of ``tests/sources/server`` (its own venv; skipped
when it is not installed, see ``scripts/test.sh``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from fhir_pts.conformance import questionnaire
from fhir_pts.sources.server.http import FhirSession, check
from tests.sources.server.sekmet_harness import ServerInfo, own_server, smart_session

pytestmark = pytest.mark.server

Resource = dict[str, Any]
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}
#: What a server may add to or set on a stored resource.
SERVER_FIELDS = ("meta", "text")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A sekmet-fhir of this module's own (stopped at the end, whatever happens)."""
    with own_server(tmp_path_factory.mktemp("sekmet-questionnaires")) as info:
        yield info


@pytest.fixture(scope="module")
def admin(server: ServerInfo) -> FhirSession:
    return smart_session(server)


def stored_part(resource: Resource, *, drop_id: bool = False) -> Resource:
    """``resource`` without the fields a server adds (and without its id when the server assigned it)."""
    kept = {k: v for k, v in resource.items() if k not in SERVER_FIELDS}
    if drop_id:
        kept.pop("id", None)
    return kept


def test_stored_part_ignores_only_server_fields() -> None:
    original = questionnaire("villalta")
    echoed = {**copy.deepcopy(original), "meta": {"versionId": "3"}, "text": {"status": "generated"}}
    assert stored_part(echoed) == stored_part(original)
    changed = copy.deepcopy(original)
    changed["item"][0]["answerOption"].pop()
    assert stored_part(changed) != stored_part(original)


@pytest.mark.parametrize("name", ["villalta", "civiq-20"])
def test_update_then_read_back_intact(server: ServerInfo, admin: FhirSession, name: str) -> None:
    original = questionnaire(name)
    url = f"{server.base_url}/Questionnaire/{original['id']}"
    put = admin.put(url, json=original, headers=FHIR_JSON)
    check(put, url, "PUT Questionnaire")
    assert put.status_code in (200, 201)
    got = admin.get(url, headers=FHIR_JSON)
    check(got, url, "GET Questionnaire")
    read_back = got.json()
    assert read_back["resourceType"] == "Questionnaire" and read_back["id"] == original["id"]
    assert stored_part(read_back) == stored_part(original)
    # every item and answer option made the round trip, in order
    assert [i["linkId"] for i in read_back["item"]] == [i["linkId"] for i in original["item"]]


@pytest.mark.parametrize("name", ["villalta", "civiq-20"])
def test_create_then_read_back_intact(server: ServerInfo, admin: FhirSession, name: str) -> None:
    original = questionnaire(name)
    body = stored_part(original, drop_id=True)
    url = f"{server.base_url}/Questionnaire"
    created = admin.post(url, json=body, headers={**FHIR_JSON, "Prefer": "return=representation"})
    check(created, url, "POST Questionnaire")
    assert created.status_code == 201
    new_id = created.json()["id"]
    assert new_id
    got = admin.get(f"{url}/{new_id}", headers=FHIR_JSON)
    check(got, url, "GET Questionnaire")
    assert stored_part(got.json(), drop_id=True) == body
    assert got.json()["url"] == original["url"] and got.json()["version"] == original["version"]
