"""The errors of the server source, in a module that imports nothing (re-exported by :mod:`.http`).

Kept apart from :mod:`.http` so that code which only needs to name or raise them (configuration, the CLI)
does not import ``requests``.
"""

from __future__ import annotations


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
