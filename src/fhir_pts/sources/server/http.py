"""HTTP plumbing for talking to a hospital FHIR server: a retrying ``requests`` Session and clear errors.

Retries (urllib3 ``Retry`` mounted on the Session): 429, 502, 503, 504 and connection/read errors, with capped
exponential backoff, honouring ``Retry-After`` (itself capped). Other 4xx are never retried. TLS verification
is on unless explicitly switched off; a CA bundle may be given. Messages never contain credentials.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read (seconds)


class ServerError(Exception):
    """The FHIR server could not be used; the message says what was refused and why (never a secret)."""


class AuthenticationError(ServerError):
    """401 or a refused token request: the client is not who the server accepts."""


class AuthorizationError(ServerError):
    """403: the client is known but its scopes do not allow the request."""


class RequestRefused(ServerError):
    """Another 4xx/5xx answer (after retries), with the server's diagnostics."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CappedRetry(Retry):
    """urllib3 ``Retry`` whose ``Retry-After`` sleep is capped at ``retry_after_max`` seconds."""

    retry_after_max: float = 60.0

    def get_retry_after(self, response: Any) -> float | None:
        value = super().get_retry_after(response)
        return None if value is None else min(value, self.retry_after_max)

    def new(self, **kw: Any) -> CappedRetry:  # keep the cap across increments
        new = super().new(**kw)
        new.retry_after_max = self.retry_after_max
        return new


def make_retry(
    retries: int = 5, backoff_factor: float = 0.5, backoff_max: float = 30.0, retry_after_max: float = 60.0
) -> CappedRetry:
    """The retry policy: ``retries`` attempts on 429/502/503/504 and connection errors, idempotent methods
    plus POST (our only POSTs are idempotent: conditional-create transactions, ``_search``)."""
    retry = CappedRetry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        status_forcelist=sorted(RETRY_STATUSES),
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST"}),
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is returned and turned into a clear error by check()
    )
    retry.retry_after_max = retry_after_max
    return retry


class FhirSession(requests.Session):
    """A ``requests.Session`` with a default timeout and a count of the requests it was asked to make."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT) -> None:
        super().__init__()
        self.default_timeout = timeout
        self._counter = itertools.count(1)
        self.requests_made = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """As ``requests.Session.request``, with the default timeout and the request counted."""
        kwargs.setdefault("timeout", self.default_timeout)
        self.requests_made = next(self._counter)
        return super().request(method, url, *args, **kwargs)


def make_session(
    auth: requests.auth.AuthBase | None = None,
    *,
    verify: bool = True,
    ca_bundle: str | Path | None = None,
    retries: int = 5,
    backoff_factor: float = 0.5,
    backoff_max: float = 30.0,
    retry_after_max: float = 60.0,
    timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    pool_size: int = 8,
) -> FhirSession:
    """A Session for a FHIR server: retries, timeout, auth, TLS verification (on unless ``verify=False``;
    ``ca_bundle`` names a PEM file of trusted CAs). ``Accept: application/fhir+json`` by default."""
    session = FhirSession(timeout=timeout)
    adapter = HTTPAdapter(
        max_retries=make_retry(retries, backoff_factor, backoff_max, retry_after_max),
        pool_connections=pool_size,
        pool_maxsize=pool_size,
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    if ca_bundle is not None:
        if not Path(ca_bundle).is_file():
            raise ServerError(f"CA bundle {ca_bundle} does not exist")
        session.verify = str(ca_bundle)
    else:
        session.verify = verify
    session.auth = auth
    session.headers["Accept"] = FHIR_JSON
    session.trust_env = True  # proxies from the environment, as any requests client
    return session


def _short(url: str, limit: int = 200) -> str:
    return url if len(url) <= limit else url[: limit - 3] + "..."


def resource_type_of(url: str, base_url: str | None = None) -> str:
    """The resource type (or operation) a URL addresses, for messages: ``Observation``, ``$export``, ..."""
    path = url.split("?", 1)[0]
    if base_url and path.startswith(base_url.rstrip("/")):
        path = path[len(base_url.rstrip("/")) :]
    first = path.strip("/").split("/", 1)[0]
    return first or "(server root)"


def diagnostics(response: requests.Response) -> str:
    """The server's explanation: OperationOutcome diagnostics/details, an OAuth error, or the start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300].strip()
    if isinstance(body, Mapping):
        if body.get("resourceType") == "OperationOutcome":
            parts = []
            for issue in body.get("issue", []):
                text = issue.get("diagnostics") or (issue.get("details") or {}).get("text") or issue.get("code")
                if text:
                    parts.append(str(text))
            return "; ".join(parts)
        if "error" in body:
            return f"{body.get('error')}: {body.get('error_description', '')}".strip(": ")
    return str(body)[:300]


def check(response: requests.Response, base_url: str | None = None, what: str | None = None) -> requests.Response:
    """Return the response if it is a success, else raise a clear error naming the URL and resource type."""
    if response.ok:
        return response
    request = response.request
    method = request.method if request is not None else "GET"
    url = str(response.url or (request.url if request is not None else ""))
    target = what or resource_type_of(url, base_url)
    why = diagnostics(response)
    where = f"{method} {_short(url)}"
    if response.status_code == 401:
        raise AuthenticationError(
            f"server refused the credentials (401) for {target} at {where}: {why or 'no explanation'}"
        )
    if response.status_code == 403:
        raise AuthorizationError(
            f"server forbids {target} (403) at {where} - check the client's scopes: {why or 'no explanation'}"
        )
    raise RequestRefused(
        f"server answered {response.status_code} {response.reason} for {target} at {where}: {why or 'no body'}",
        response.status_code,
    )
