"""HTTP plumbing for talking to a hospital FHIR server: a retrying ``requests`` Session and clear errors.

One retry policy (:class:`RetryPolicy`) for every request of a run, kick-off, status polls, file downloads,
searches and the token endpoint alike:

- connection and read errors: urllib3 ``Retry`` mounted on the Session;
- *transient answers* (:func:`is_transient`): 429, 502, 503, 504, and a 500 whose OperationOutcome has an issue
  of code ``transient`` (as the Bulk Data IG has servers say "try again"): :meth:`FhirSession.request` waits
  (``Retry-After`` when given, capped; else capped exponential backoff) and sends the request again;
- a body cut off after the headers (connection reset, short read: ``ChunkedEncodingError``): sent again by
  :meth:`FhirSession.request` the same way; a JSON body that does not parse (a truncated page) by :func:`get_json`;
- other 4xx/5xx are never retried.

The token endpoint uses the same policy through :meth:`RetryPolicy.delays`, with a fresh client assertion per
attempt (an assertion's ``jti`` must not be reused). TLS verification is on unless explicitly switched off; a
CA bundle may be given. Messages never contain credentials, nor the values of search parameters (they can
be patient ids): :func:`redact` keeps a URL's path and parameter names, also in urllib3's retry log lines.
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
from urllib.parse import parse_qsl, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from .errors import AuthenticationError, AuthorizationError, RequestRefused, ServerError

log = logging.getLogger(__name__)

__all__ = ["AuthenticationError", "AuthorizationError", "RequestRefused", "ServerError"]

FHIR_JSON = "application/fhir+json"
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: OperationOutcome issue codes that mean "the same request may succeed later" (on a 500 answer).
TRANSIENT_ISSUE_CODES = frozenset({"transient", "throttled", "timeout", "lock-error"})
DEFAULT_TIMEOUT = (10.0, 120.0)  # connect, read (seconds)


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


#: Faults after the answer's headers, which urllib3's retries do not cover: a connection reset or a short read
#: in the body (requests raises ChunkedEncodingError), a body that does not decode.
BODY_ERRORS: tuple[type[Exception], ...] = (
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
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
            try:
                response = super().request(method, url, *args, **kwargs)
            except BODY_ERRORS as exc:  # the body was cut off: the same request again, as a transient answer
                if kwargs.get("stream"):
                    raise
                if attempt >= self.policy.retries:
                    text = url.decode() if isinstance(url, bytes) else str(url)
                    raise ServerError(
                        f"{method} {redact(text)}: the answer was cut off ({type(exc).__name__}) "
                        f"{attempt + 1} times"
                    ) from None
                wait = self.policy.wait(attempt)
                log.warning("%s %s: answer cut off (%s); retry %d/%d in %.1f s", method, _path(url),
                            type(exc).__name__, attempt + 1, self.policy.retries, wait)  # fmt: skip
                self.retried += 1
                attempt += 1
                time.sleep(wait)
                continue
            if attempt >= self.policy.retries or not is_transient(response):
                return response
            wait = self.policy.wait(attempt, response)
            log.info("%s %s answered %s (transient); retry %d/%d in %.1f s", method, _path(url),
                     response.status_code, attempt + 1, self.policy.retries, wait)
            response.close()
            self.retried += 1
            attempt += 1
            time.sleep(wait)


def get_json(session: requests.Session, url: str, **kwargs: Any) -> tuple[requests.Response, Any]:
    """GET ``url`` and parse its JSON body; a successful answer whose body does not parse (a page cut off with a
    correct ``Content-Length``, a proxy's error page) is fetched again under the session's :class:`RetryPolicy`.

    Returns the response and the parsed body (``None`` when the status is not a success: give the response to
    :func:`check`). Raises :class:`ServerError` when the body still does not parse after the last retry.
    """
    policy: RetryPolicy = getattr(session, "policy", None) or RetryPolicy()
    for attempt in policy.delays():
        response = session.get(url, **kwargs)
        if not response.ok:
            return response, None
        try:
            return response, response.json()
        except ValueError:
            if attempt >= policy.retries:
                break
            wait = policy.wait(attempt)
            log.warning("GET %s: the answer is not complete JSON; retry %d/%d in %.1f s", _path(url), attempt + 1,
                        policy.retries, wait)  # fmt: skip
            if isinstance(session, FhirSession):
                session.retried += 1
            time.sleep(wait)
    raise ServerError(
        f"GET {redact(url)} answered something that is not JSON, {policy.retries + 1} times "
        f"({resource_type_of(url)}: a truncated page or not a FHIR server)"
    )


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
    url = redact(url)
    return url if len(url) <= limit else url[: limit - 3] + "..."


def redact(url: str) -> str:
    """``url`` without the values of its query parameters (they can be patient ids): ``.../Observation?code=…``."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    names = list(dict.fromkeys(name for name, _ in parse_qsl(parts.query, keep_blank_values=True)))
    shown = "&".join(f"{name}=…" for name in names) or "…"
    return f"{parts.scheme}://{parts.netloc}{parts.path}?{shown}" if parts.scheme else f"{parts.path}?{shown}"


class _RedactUrls(logging.Filter):
    """Takes the query values out of the URLs urllib3 logs when it retries (``Retrying (...) ...: /path?query``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args and isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) and "?" in a else a for a in record.args)
        return True


logging.getLogger("urllib3.connectionpool").addFilter(_RedactUrls())


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
