"""Authentication to a hospital FHIR server, as ``requests.auth.AuthBase`` objects.

- :class:`BearerTokenAuth`: a static token (from a file or an environment variable, never the command line).
- :class:`SmartBackendAuth`: SMART Backend Services (``client_credentials`` with a ``private_key_jwt``
  assertion signed RS384 or ES384; key from a PEM or a JWKS file). The access token is cached, renewed
  before it expires (a minute before, or at half its lifetime when that is shorter: a server may grant
  1-second tokens), and renewed once when the server answers 401. A transient answer of the token endpoint
  (429, 503, a 500 ``transient`` OperationOutcome, a dropped connection) is retried with the run's
  :class:`~.http.RetryPolicy`, each attempt with a fresh assertion.

Tokens and keys never appear in ``repr``, messages or logs.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey, import_key

from .http import AuthenticationError, RetryPolicy, ServerError, diagnostics, is_transient, make_session

log = logging.getLogger(__name__)

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SUPPORTED_ALGS = ("RS384", "ES384")
ASSERTION_LIFETIME = 240  # seconds; SMART requires exp <= 5 minutes ahead
RENEW_MARGIN = 60  # renew a token this many seconds before it expires (half its lifetime when shorter)

#: Read and write scopes in SMART v1 and v2 syntax.
SCOPES_V1 = {"read": "system/*.read", "write": "system/*.write"}
SCOPES_V2 = {"read": "system/*.rs", "write": "system/*.cud"}


class BearerTokenAuth(requests.auth.AuthBase):
    """A static bearer token."""

    def __init__(self, token: str) -> None:
        token = token.strip()
        if not token:
            raise ServerError("the bearer token is empty")
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "BearerTokenAuth(token=<hidden>)"


class NoAuth(requests.auth.AuthBase):
    """No credentials (also used to keep a session's auth off public endpoints like ``/metadata``)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        return request


def load_signing_key(path: str | Path, kid: str | None = None) -> tuple[RSAKey | ECKey, str]:
    """Load a private key from a PEM file or a JWKS (JSON) file; return it with its algorithm.

    RSA keys sign RS384, P-384 EC keys ES384; anything else is refused. From a JWKS, the key with ``kid``
    (or the first private RS384/ES384-capable key) is used.
    """
    path = Path(path)
    from fhir_pts.sources.private_files import warn_if_exposed

    warn_if_exposed(path, "private key file")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ServerError(f"cannot read the private key file {path}: {e.strerror}") from None
    key: Any
    try:
        if data.lstrip().startswith(b"{"):
            doc = json.loads(data)
            keys = KeySet.import_key_set(doc) if "keys" in doc else KeySet([import_key(doc, doc.get("kty"))])
            candidates = [k for k in keys.keys if k.is_private and (kid is None or k.kid == kid)]
            candidates = [k for k in candidates if _alg_for(k) is not None]
            if not candidates:
                raise ServerError(
                    f"no private RSA or P-384 EC key{f' with kid {kid!r}' if kid else ''} in the JWKS file {path}"
                )
            key = candidates[0]
        elif _looks_rsa(data):
            key = RSAKey.import_key(data)
        else:
            key = ECKey.import_key(data)
    except (ValueError, JoseError, TypeError) as e:
        raise ServerError(
            f"the private key file {path} is not a PEM private key or a JWKS: {type(e).__name__}"
        ) from None
    if not key.is_private:
        raise ServerError(f"the key in {path} is a public key; the client needs its private key")
    alg = _alg_for(key)
    if alg is None:
        raise ServerError(f"the key in {path} cannot sign {' or '.join(SUPPORTED_ALGS)} (need RSA or EC P-384)")
    return key, alg


def _looks_rsa(pem: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return isinstance(load_pem_private_key(pem, password=None), rsa.RSAPrivateKey)
    except (ValueError, TypeError):
        return False


def _alg_for(key: Any) -> str | None:
    if isinstance(key, RSAKey):
        return "RS384"
    if isinstance(key, ECKey) and key.curve_name == "P-384":
        return "ES384"
    return None


def choose_scopes(scopes_supported: Iterable[str] = (), capabilities: Iterable[str] = (), write: bool = False) -> str:
    """SMART v2 scopes (``system/*.rs``) when the server advertises them (``permission-v2`` or v2 scopes in
    ``scopes_supported``) and not v1, else v1 (``system/*.read``); write scopes added when ``write``."""
    supported, caps = set(scopes_supported), set(capabilities)
    v2 = "permission-v2" in caps or any(s.endswith((".rs", ".cruds", ".cud")) for s in supported)
    table = SCOPES_V2 if v2 else SCOPES_V1
    parts = [table["read"]] + ([table["write"]] if write else [])
    return " ".join(parts)


@dataclass
class _Token:
    value: str
    expires_at: float  # time.monotonic() deadline
    scope: str
    margin: float = RENEW_MARGIN  # renewed this many seconds before ``expires_at``


class SmartBackendAuth(requests.auth.AuthBase):
    """SMART Backend Services: ``client_credentials`` grant with an RS384/ES384 ``private_key_jwt``."""

    def __init__(
        self,
        token_url: str,
        client_id: str,
        private_key: str | Path,
        scope: str = SCOPES_V1["read"],
        *,
        kid: str | None = None,
        token_session: requests.Session | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if not client_id:
            raise ServerError("SMART Backend Services needs a client id")
        self.token_url = token_url
        self.client_id = client_id
        self.scope = scope
        self._key, self.alg = load_signing_key(private_key, kid)
        self._kid = kid or getattr(self._key, "kid", None) or self._key.thumbprint()
        # a token request is never retried blindly: a re-sent assertion would reuse its jti
        self._http = token_session or make_session(retries=0)
        self.retry = retry or RetryPolicy()
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.tokens_fetched = 0

    def __repr__(self) -> str:
        return f"SmartBackendAuth(client_id={self.client_id!r}, token_url={self.token_url!r}, alg={self.alg})"

    # -- token ---------------------------------------------------------------------------------
    def client_assertion(self) -> str:
        """A fresh signed assertion: iss = sub = client id, aud = token URL, exp <= 5 min, unique jti."""
        now = int(time.time())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        header = {"alg": self.alg, "typ": "JWT", "kid": self._kid}
        return jwt.encode(header, claims, self._key, algorithms=[self.alg])

    def _post_token_request(self) -> requests.Response:
        """POST the client-credentials form, retrying transient answers with a fresh assertion each time."""
        for attempt in self.retry.delays():
            form = {
                "grant_type": "client_credentials",
                "scope": self.scope,
                "client_assertion_type": ASSERTION_TYPE,
                "client_assertion": self.client_assertion(),
            }
            last = attempt >= self.retry.retries
            try:
                response = self._http.post(self.token_url, data=form, headers={"Accept": "application/json"})
            except requests.RequestException as e:
                if last:
                    raise AuthenticationError(
                        f"token endpoint {self.token_url} unreachable: {type(e).__name__}"
                    ) from None
                wait = self.retry.wait(attempt)
                log.info("token endpoint unreachable (%s); retry %d in %.1f s", type(e).__name__, attempt + 1, wait)
            else:
                if last or not is_transient(response):
                    return response
                wait = self.retry.wait(attempt, response)
                log.info("token endpoint answered %s (transient); retry %d in %.1f s", response.status_code,
                         attempt + 1, wait)
                response.close()
            time.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def _fetch_token(self) -> _Token:
        response = self._post_token_request()
        if not response.ok:
            raise AuthenticationError(
                f"token endpoint {self.token_url} refused client {self.client_id!r} "
                f"(scope {self.scope!r}, {self.alg}): {response.status_code} {diagnostics(response)}"
            )
        try:
            body = response.json()
            value = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthenticationError(f"token endpoint {self.token_url} answered without an access_token") from None
        lifetime = float(body.get("expires_in") or 300)
        self.tokens_fetched += 1
        log.debug("SMART token for %s, %.0f s, scope %s", self.client_id, lifetime, body.get("scope"))
        return _Token(value, time.monotonic() + lifetime, str(body.get("scope") or self.scope),
                      min(RENEW_MARGIN, lifetime / 2))

    def token(self, force: bool = False) -> str:
        """The cached access token, fetched or renewed when missing, (nearly) expired, or ``force``."""
        with self._lock:
            tok = self._token
            if force or tok is None or tok.expires_at - time.monotonic() < tok.margin:
                self._token = tok = self._fetch_token()
            return tok.value

    @property
    def granted_scope(self) -> str | None:
        """The scope the server granted (None before the first token)."""
        return self._token.scope if self._token else None

    # -- requests hook -------------------------------------------------------------------------
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """Renew the token once and re-send the request when the server answers 401."""
        if response.status_code != 401 or getattr(response.request, "_pts_renewed", False):
            return response
        response.content  # noqa: B018 - drain the body so the connection can be reused
        response.close()
        retry = response.request.copy()
        retry.headers["Authorization"] = f"Bearer {self.token(force=True)}"
        retry._pts_renewed = True  # type: ignore[attr-defined]
        again = response.connection.send(retry, **kwargs)
        again.history.append(response)
        again.request = retry
        return again
