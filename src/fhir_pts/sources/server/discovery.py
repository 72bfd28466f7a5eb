"""What a FHIR server says about itself: ``/metadata`` (must be R4, 4.0.x) and SMART configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

import requests

from .auth import NoAuth
from .http import ServerError, check

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"


class FhirVersionError(ServerError):
    """The server does not speak FHIR R4."""


@dataclass(frozen=True)
class ServerCapabilities:
    """The facts about a server the client acts on."""

    base_url: str
    fhir_version: str
    software: str | None = None
    token_url: str | None = None
    scopes_supported: tuple[str, ...] = ()
    capabilities: tuple[str, ...] = ()
    #: resource type -> search parameter names the CapabilityStatement declares
    search_params: dict[str, frozenset[str]] = field(default_factory=dict)
    #: operation names declared at system or type level (``export``, ``everything``, ...)
    operations: frozenset[str] = frozenset()
    #: resource type -> interaction codes declared (``read``, ``search-type``, ...)
    interactions: dict[str, frozenset[str]] = field(default_factory=dict)
    #: resource type -> operation names declared on that type (``export`` on Patient and Group)
    type_operations: dict[str, frozenset[str]] = field(default_factory=dict)
    #: operation names declared at system level (``export``)
    system_operations: frozenset[str] = frozenset()
    #: (type or "" for system level, operation name) -> the OperationDefinition it names
    operation_definitions: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def declares_resources(self) -> bool:
        """Does the CapabilityStatement list any resource (if not, nothing can be concluded from it)?"""
        return bool(self.interactions)

    def offers_search(self, resource_type: str) -> bool | None:
        """True/False when the CapabilityStatement says whether ``resource_type`` can be searched (a
        ``search-type`` interaction), None when it lists no resources at all."""
        if not self.declares_resources:
            return None
        return "search-type" in self.interactions.get(resource_type, frozenset())

    def export_levels(self) -> frozenset[str]:
        """The ``$export`` levels declared: ``system``, ``patient`` (on Patient), ``group`` (on Group)."""
        levels = set()
        if "export" in self.system_operations:
            levels.add("system")
        if "export" in self.type_operations.get("Patient", frozenset()):
            levels.add("patient")
        if "export" in self.type_operations.get("Group", frozenset()):
            levels.add("group")
        return frozenset(levels)

    def supports_search(self, resource_type: str, param: str) -> bool:
        """Does the CapabilityStatement declare this search parameter (True when it declares none)?"""
        declared = self.search_params.get(resource_type)
        return True if not declared else param in declared


def _get_json(session: requests.Session, url: str, base_url: str, what: str) -> dict:
    try:
        response = session.get(url, auth=NoAuth(), headers={"Accept": "application/fhir+json, application/json"})
    except requests.RequestException as e:
        raise ServerError(f"cannot reach {url} ({what}): {type(e).__name__}: {e}") from None
    check(response, base_url, what)
    try:
        body = response.json()
    except ValueError:
        raise ServerError(f"{url} ({what}) did not answer JSON") from None
    if not isinstance(body, dict):
        raise ServerError(f"{url} ({what}) did not answer a JSON object")
    return body


def read_metadata(session: requests.Session, base_url: str) -> dict:
    """The server's CapabilityStatement; refuses anything but FHIR 4.0.x with a clear message."""
    base_url = base_url.rstrip("/")
    cs = _get_json(session, f"{base_url}/metadata", base_url, "CapabilityStatement")
    if cs.get("resourceType") != "CapabilityStatement":
        raise ServerError(f"{base_url}/metadata answered a {cs.get('resourceType')!r}, not a CapabilityStatement")
    version = str(cs.get("fhirVersion") or "")
    if not version.startswith("4.0."):
        raise FhirVersionError(
            f"server {base_url} speaks FHIR {version or '(no fhirVersion given)'}; expected 4.0.x (R4)"
        )
    return cs


def read_smart_configuration(session: requests.Session, base_url: str) -> dict | None:
    """``{base}/.well-known/smart-configuration``, or None when the server has none (404)."""
    base_url = base_url.rstrip("/")
    url = f"{base_url}/.well-known/smart-configuration"
    try:
        response = session.get(url, auth=NoAuth(), headers={"Accept": "application/json"})
    except requests.RequestException as e:
        raise ServerError(f"cannot reach {url}: {type(e).__name__}") from None
    if response.status_code in (404, 405):
        return None
    check(response, base_url, "SMART configuration")
    try:
        body = response.json()
    except ValueError:
        raise ServerError(f"{url} did not answer JSON") from None
    return body if isinstance(body, dict) else None


def _oauth_token_url(cs: dict) -> str | None:
    for rest in cs.get("rest", []):
        for ext in (rest.get("security") or {}).get("extension", []):
            if ext.get("url") == OAUTH_URIS:
                for sub in ext.get("extension", []):
                    if sub.get("url") == "token":
                        return sub.get("valueUri")
    return None


def discover(session: requests.Session, base_url: str) -> ServerCapabilities:
    """Read ``/metadata`` and the SMART configuration into :class:`ServerCapabilities`."""
    base_url = base_url.rstrip("/")
    cs = read_metadata(session, base_url)
    smart = read_smart_configuration(session, base_url) or {}
    search: dict[str, frozenset[str]] = {}
    operations: set[str] = set()
    system_ops: set[str] = set()
    interactions: dict[str, frozenset[str]] = {}
    type_ops: dict[str, frozenset[str]] = {}
    definitions: dict[tuple[str, str], str] = {}

    def names(ops: list, rtype: str) -> set[str]:
        found = set()
        for op in ops or []:
            name = str(op.get("name", "")).lstrip("$")
            found.add(name)
            if isinstance(op.get("definition"), str):
                definitions.setdefault((rtype, name), op["definition"])
        return found

    for rest in cs.get("rest", []):
        if rest.get("mode", "server") != "server":
            continue
        system_ops |= names(rest.get("operation", []), "")
        for res in rest.get("resource", []):
            rtype = res.get("type", "")
            search[rtype] = frozenset(p.get("name", "") for p in res.get("searchParam", []))
            interactions[rtype] = frozenset(str(i.get("code", "")) for i in res.get("interaction", []))
            type_ops[rtype] = frozenset(names(res.get("operation", []), rtype))
    operations = system_ops.union(*type_ops.values())
    return ServerCapabilities(
        base_url=base_url,
        fhir_version=str(cs.get("fhirVersion")),
        software=(cs.get("software") or {}).get("name"),
        token_url=smart.get("token_endpoint") or _oauth_token_url(cs),
        scopes_supported=tuple(smart.get("scopes_supported") or ()),
        capabilities=tuple(smart.get("capabilities") or ()),
        search_params=search,
        operations=frozenset(operations),
        interactions=interactions,
        type_operations=type_ops,
        system_operations=frozenset(system_ops),
        operation_definitions=definitions,
    )
