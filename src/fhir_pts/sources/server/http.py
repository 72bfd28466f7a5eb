"""HTTP plumbing for talking to a hospital FHIR server: a retrying ``requests`` Session and clear errors.

One retry policy (:class:`RetryPolicy`) for every request of a run, kick-off, status polls, file downloads,
searches and the token endpoint alike:

- connection and read errors: urllib3 ``Retry`` mounted on the Session;
- *transient answers* (:func:`is_transient`): 429, 502, 503, 504, and a 500 whose OperationOutcome has an issue
  of code ``transient`` (as the Bulk Data IG has servers say "try again"): :meth:`FhirSession.request` waits
  (``Retry-After`` when given, capped; else capped exponential backoff) and sends the request again;
- other 4xx/5xx are never retried.

The token endpoint uses the same policy through :meth:`RetryPolicy.delays`, with a fresh client assertion per
attempt (an assertion's ``jti`` must not be reused). TLS verification is on unless explicitly switched off; a
CA bundle may be given. Messages never contain credentials.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: OperationOutcome issue codes that mean "the same request may succeed later" (on a 500 answer).
TRANSIENT_ISSUE_CODES = frozenset({"transient", "throttled", "timeout", "lock-error"})
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read (seconds)


class ServerError(Exception):
    """The FHIR server could not be used; the message says what was refused and why (never a secret)."""


class AuthenticationError(ServerError):
    """401 or a refused token request: the client is not who the server accepts."""


class AuthorizationError(ServerError):
    """403: the client is known but its scopes do not allow the request."""


class RequestRefused(ServerError):
    """Another 4xx/5xx answer (after retries), with the server's diagnostics."""

    def __init__(self, message: str, status: int, diagnostics: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.diagnostics = diagnostics  # the server's own explanation (OperationOutcome text), for callers


def retry_after(response: requests.Response) -> float | None:
    """The server's ``Retry-After`` in seconds (delta-seconds or an HTTP date), or None."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    with contextlib.suppress(ValueError):
        return max(0.0, float(value))
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


def is_transient(response: requests.Response) -> bool:
    """Is this answer one to try again later: 429/502/503/504, or a 500 carrying an OperationOutcome whose
    issue code is ``transient`` (also ``throttled``, ``timeout``, ``lock-error``)?"""
    if response.status_code in RETRY_STATUSES:
        return True
    if response.status_code != 500:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return False
    return any(isinstance(i, Mapping) and i.get("code") in TRANSIENT_ISSUE_CODES for i in body.get("issue") or [])


@dataclass(frozen=True)
class RetryPolicy:
    """How transient answers are retried: ``retries`` more attempts, waiting ``Retry-After`` (at most
    ``retry_after_max`` s) when the server gives one, else ``backoff_factor * 2**n`` (at most ``backoff_max`` s)."""

    retries: int = 5
    backoff_factor: float = 0.5
    backoff_max: float = 30.0
    retry_after_max: float = 60.0

    def wait(self, attempt: int, response: requests.Response | None = None) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``attempt`` counts from 0) after ``response``."""
        given = retry_after(response) if response is not None else None
        if given is not None:
            return min(given, self.retry_after_max)
        return min(self.backoff_max, self.backoff_factor * 2**attempt)

    def delays(self) -> Iterator[int]:
        """The attempt numbers 0..retries (for loops that build a fresh request each attempt)."""
        return iter(range(self.retries + 1))


def make_retry(retries: int = 5, backoff_factor: float = 0.5, backoff_max: float = 30.0) -> Retry:
    """The transport-level part: ``retries`` attempts on connection and read errors (status answers are
    retried by :class:`FhirSession`, which can read the body)."""
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=0,
        other=0,
        allowed_methods=frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "POST"}),
        backoff_factor=backoff_factor,
        backoff_max=backoff_max,
        raise_on_status=False,
    )


class FhirSession(requests.Session):
    """A ``requests.Session`` with a default timeout, the :class:`RetryPolicy` for transient answers, and a
    count of the requests it sent (``requests_made``) and of the transient answers it retried (``retried``)."""

    def __init__(self, timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
                 policy: RetryPolicy | None = None) -> None:
        super().__init__()
        self.default_timeout = timeout
        self.policy = policy or RetryPolicy()
        self._counter = itertools.count(1)
        self.requests_made = 0
        self.retried = 0

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        """As ``requests.Session.request``, with the default timeout, every attempt counted, and a transient
        answer (:func:`is_transient`) waited for and sent again up to ``policy.retries`` times."""
        kwargs.setdefault("timeout", self.default_timeout)
        attempt = 0
        while True:
            self.requests_made = next(self._counter)
            response = super().request(method, url, *args, **kwargs)
            if attempt >= self.policy.retries or not is_transient(response):
                return response
            wait = self.policy.wait(attempt, response)
            log.info("%s %s answered %s (transient); retry %d/%d in %.1f s", method, _path(url),
                     response.status_code, attempt + 1, self.policy.retries, wait)
            response.close()
            self.retried += 1
            attempt += 1
            time.sleep(wait)


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
    session = FhirSession(timeout=timeout, policy=RetryPolicy(retries, backoff_factor, backoff_max, retry_after_max))
    adapter = HTTPAdapter(
        max_retries=make_retry(retries, backoff_factor, backoff_max),
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


def _path(url: str | bytes) -> str:
    """The path of a URL (no query: it may name patients), for log lines."""
    return urlsplit(url.decode() if isinstance(url, bytes) else url).path


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
        why,
    )
