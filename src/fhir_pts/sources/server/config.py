"""How to reach a hospital FHIR server: :class:`ServerConfig`, from a TOML file, the environment and overrides.

:func:`load_server_config` merges them (precedence: overrides > environment > TOML file > defaults); the
command line's options, which give the overrides, live in the CLI (:mod:`fhir_pts.options`), not here.
Secrets are never taken from the command line alone: a bearer token comes from ``FHIR_PTS_TOKEN`` or a token
file, a private key from a file (``--private-key FILE`` / ``FHIR_PTS_PRIVATE_KEY``, a PEM or JWKS path).

TOML (``--config FILE``)::

    url = "https://fhir.hospital.example/R4"
    auth = "smart"                 # none | bearer | smart (default: smart if a client id is given, ...)
    client_id = "fhir-pts"
    private_key = "/etc/fhir-pts/key.pem"
    ca_bundle = "/etc/ssl/hospital-ca.pem"
    bulk = true
    export_level = "group"         # system | patient | group
    group_id = "pts-cohort"
    page_size = 1000
    workers = 4
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ServerError

if TYPE_CHECKING:  # auth (joserfc), discovery and http (requests) are imported by connect(): the CLI parser stays fast
    from .discovery import ServerCapabilities
    from .http import FhirSession

AuthKind = Literal["none", "bearer", "smart"]
ExportLevel = Literal["system", "patient", "group"]

ENV = {
    "url": "FHIR_PTS_SERVER_URL",
    "auth": "FHIR_PTS_AUTH",
    "client_id": "FHIR_PTS_CLIENT_ID",
    "private_key": "FHIR_PTS_PRIVATE_KEY",
    "key_id": "FHIR_PTS_KEY_ID",
    "token": "FHIR_PTS_TOKEN",
    "token_file": "FHIR_PTS_TOKEN_FILE",
    "ca_bundle": "FHIR_PTS_CA_BUNDLE",
    "scope": "FHIR_PTS_SCOPE",
    "export_level": "FHIR_PTS_EXPORT_LEVEL",
    "group_id": "FHIR_PTS_GROUP_ID",
}


class ConfigError(ServerError):
    """The server configuration is unusable (the message says which setting and why)."""


@dataclass(frozen=True)
class ServerConfig:
    """Everything needed to fetch from (and write back to) one FHIR server."""

    url: str
    auth: AuthKind = "none"
    client_id: str | None = None
    private_key: Path | None = None  # PEM or JWKS file
    key_id: str | None = None
    token: str | None = field(default=None, repr=False)  # never printed
    token_url: str | None = None  # default: discovered from the SMART configuration
    scope: str | None = None  # default: chosen from the server's smart-configuration
    ca_bundle: Path | None = None
    verify_tls: bool = True
    bulk: bool = False
    export_level: ExportLevel = "system"
    group_id: str | None = None
    type_filter: bool = True  # send _typeFilter with $export (checked, and dropped when the export looks wrong)
    page_size: int = 1000
    max_pages: int = 10_000  # per search: a server that keeps sending next links is stopped there
    patients_per_request: int = 50
    workers: int = 4
    retries: int = 5
    timeout: float = 120.0
    write_back: bool = False

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"server url {self.url!r} must start with https:// (or http://)")
        if self.auth not in ("none", "bearer", "smart"):
            raise ConfigError(f"auth {self.auth!r} is not one of none, bearer, smart")
        if self.auth == "bearer" and not self.token:
            raise ConfigError("auth 'bearer' needs a token: set FHIR_PTS_TOKEN or give a token file")
        if self.auth == "smart" and (not self.client_id or not self.private_key):
            raise ConfigError("auth 'smart' needs a client id and a private key file (PEM or JWKS)")
        if self.export_level not in ("system", "patient", "group"):
            raise ConfigError(f"export level {self.export_level!r} is not one of system, patient, group")
        if self.export_level == "group" and not self.group_id:
            raise ConfigError("export level 'group' needs a group id")
        for name in ("page_size", "patients_per_request", "workers", "max_pages"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1")
        if self.ca_bundle is not None and not Path(self.ca_bundle).is_file():
            raise ConfigError(f"CA bundle {self.ca_bundle} does not exist")
        if self.private_key is not None and not Path(self.private_key).is_file():
            raise ConfigError(f"private key file {self.private_key} does not exist")

    @property
    def base_url(self) -> str:
        """The FHIR base URL without a trailing slash."""
        return self.url.rstrip("/")


_PATHS = {"private_key", "ca_bundle"}
_INTS = {"page_size", "patients_per_request", "workers", "retries", "max_pages"}
_BOOLS = {"verify_tls", "bulk", "write_back", "type_filter"}


def _coerce(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _PATHS:
        return Path(str(value)).expanduser()
    if name in _INTS:
        try:
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if name == "timeout":
        return float(value)
    if name in _BOOLS and isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return value


def _read_token_file(path: str | Path) -> str:
    try:
        token = Path(path).expanduser().read_text().strip()
    except OSError as e:
        raise ConfigError(f"cannot read the token file {path}: {e.strerror}") from None
    if not token:
        raise ConfigError(f"the token file {path} is empty")
    from fhir_pts.sources.private_files import warn_if_exposed

    warn_if_exposed(Path(path).expanduser(), "token file")
    return token


def load_toml(path: str | Path) -> dict[str, Any]:
    """Settings from a TOML file (top level, or a ``[server]`` table). A token must not be written in it."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"cannot read the config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    data = data.get("server", data)
    if "token" in data:
        raise ConfigError(f"config file {path} holds a token; use token_file or FHIR_PTS_TOKEN instead")
    known = {f.name for f in fields(ServerConfig)} | {"token_file"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"config file {path}: unknown setting(s) {', '.join(unknown)}")
    return dict(data)


def load_server_config(
    toml_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> ServerConfig | None:
    """Merge TOML file < environment < overrides (CLI) into a :class:`ServerConfig`; None if no URL anywhere.

    ``auth`` defaults to ``smart`` when a client id is known, ``bearer`` when a token is, else ``none``.
    """
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = load_toml(toml_path) if toml_path else {}
    for name, var in ENV.items():
        if environ.get(var):
            values[name] = environ[var]
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    if not values.get("url"):
        return None
    token_file = values.pop("token_file", None)
    if token_file and not values.get("token"):
        values["token"] = _read_token_file(token_file)
    if not values.get("auth"):
        values["auth"] = "smart" if values.get("client_id") else "bearer" if values.get("token") else "none"
    return ServerConfig(**{k: _coerce(k, v) for k, v in values.items()})


def connect(config: ServerConfig, write: bool | None = None) -> tuple[FhirSession, ServerCapabilities]:
    """Discover the server (R4 checked) and return an authenticated, retrying session with what was learnt.

    ``write`` (default: ``config.write_back``) asks SMART for write scopes as well.
    """
    from .auth import BearerTokenAuth, SmartBackendAuth, choose_scopes
    from .discovery import discover
    from .http import RetryPolicy, make_session

    write = config.write_back if write is None else write
    common: dict[str, Any] = {
        "verify": config.verify_tls,
        "ca_bundle": config.ca_bundle,
        "retries": config.retries,
        "timeout": (10.0, config.timeout),
        "pool_size": max(8, config.workers * 2),
    }
    session = make_session(**common)
    caps = discover(session, config.base_url)
    if config.auth == "bearer":
        session.auth = BearerTokenAuth(config.token or "")
    elif config.auth == "smart":
        token_url = config.token_url or caps.token_url
        if not token_url:
            raise ConfigError(f"server {config.base_url} advertises no token endpoint; give token_url")
        scope = config.scope or choose_scopes(caps.scopes_supported, caps.capabilities, write=write)
        token_session = make_session(retries=0, verify=config.verify_tls, ca_bundle=config.ca_bundle)
        session.auth = SmartBackendAuth(
            token_url, config.client_id or "", config.private_key or "", scope, kid=config.key_id,
            token_session=token_session, retry=RetryPolicy(config.retries),
        )
    return session, caps
