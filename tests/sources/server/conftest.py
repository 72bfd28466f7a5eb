"""Fixtures for the hospital-server tests: one real sekmet-fhir per session, loaded with a small cohort."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fhir_pts.sources.server.http import FhirSession, check
from tests.sources.server.cohort_factory import cohort_resources, transaction
from tests.sources.server.sekmet_harness import ServerInfo, own_server, smart_session


@pytest.fixture(scope="session")
def sekmet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    """A running sekmet-fhir (stopped at the end of the session, whatever happens)."""
    with own_server(tmp_path_factory.mktemp("sekmet")) as info:
        yield info


@pytest.fixture(scope="session")
def admin(sekmet: ServerInfo) -> FhirSession:
    """A read/write session (RS384 client)."""
    return smart_session(sekmet)


@pytest.fixture(scope="session")
def cohort(sekmet: ServerInfo, admin: FhirSession) -> list[dict]:
    """The test cohort, loaded into the server in one transaction; returns the resources loaded."""
    resources = cohort_resources()
    r = admin.post(sekmet.base_url, json=transaction(resources), headers={"Content-Type": "application/fhir+json"})
    check(r, sekmet.base_url, "transaction")
    return resources


@pytest.fixture(scope="session")
def reader(sekmet: ServerInfo) -> FhirSession:
    """A read-only session (ES384 client, system/*.read)."""
    return smart_session(sekmet, "reader", "system/*.read")
