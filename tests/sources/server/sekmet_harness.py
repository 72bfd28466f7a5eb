"""Start and stop the real sekmet-fhir test server (used by conftest.py and benchmarks/bench_server.py).

The server runs in its own virtual environment (``.ci/server-venv``, made by ``scripts/test.sh``); its python is
given by ``FHIR_PTS_TEST_SERVER`` (or found at the default place). Keys are generated here at run time, in a
temporary directory, and never committed.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from fhir_pts.sources.server.auth import SmartBackendAuth
from fhir_pts.sources.server.http import FhirSession, make_session

REPO = Path(__file__).resolve().parents[3]
LAUNCHER = REPO / ".ci" / "fhir-server" / "launch.py"
DEFAULT_SERVER_PYTHON = REPO / ".ci" / "server-venv" / "bin" / "python"

FULL_SCOPES = "system/*.read system/*.write"
READ_SCOPES = "system/*.read"


def server_python() -> Path | None:
    """The server venv's python, or None when it is not installed."""
    env = os.environ.get("FHIR_PTS_TEST_SERVER")
    candidate = Path(env) if env else DEFAULT_SERVER_PYTHON
    return candidate if candidate.is_file() else None


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write_key(private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, directory: Path, name: str) -> Path:
    """Write a private key (PKCS8, 0600) and its public half; return the private key path."""
    private = directory / f"{name}.pem"
    private.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    private.chmod(0o600)
    (directory / f"{name}.pub.pem").write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private


@dataclass(frozen=True)
class ClientKeys:
    """A registered SMART client: its id, private key file, algorithm and scopes."""

    client_id: str
    private_key: Path
    alg: str
    scopes: str


@dataclass(frozen=True)
class ServerInfo:
    """How to reach a running test server."""

    base_url: str
    token_url: str
    root_url: str
    full_rs384: ClientKeys
    full_es384: ClientKeys
    reader: ClientKeys
    stranger_key: Path  # a private key no client is registered with


def make_keys(directory: Path) -> dict[str, Path]:
    """Generate the test keys: RSA (RS384) and EC P-384 (ES384) clients, plus an unregistered key."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        "full-rs": _write_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), directory, "full-rs"),
        "full-es": _write_key(ec.generate_private_key(ec.SECP384R1()), directory, "full-es"),
        "reader": _write_key(ec.generate_private_key(ec.SECP384R1()), directory, "reader"),
        "stranger": _write_key(rsa.generate_private_key(public_exponent=65537, key_size=2048), directory, "stranger"),
    }


class SekmetServer:
    """A sekmet-fhir process on a free loopback port, owned by this object (a context manager)."""

    def __init__(self, python: Path, workdir: Path, validation: str | None = None) -> None:
        self.python = python
        self.workdir = workdir
        self.validation = validation
        self.proc: subprocess.Popen[bytes] | None = None
        self.info: ServerInfo | None = None

    def start(self, timeout: float = 60.0) -> ServerInfo:
        """Start the server and wait until ``/fhir/metadata`` answers 200."""
        keys = make_keys(self.workdir / "keys")
        port = free_port()
        pub = {name: path.with_name(f"{name}.pub.pem") for name, path in keys.items()}
        cmd = [
            str(self.python), str(LAUNCHER), "--port", str(port), "--data-dir", str(self.workdir / "data"),
            "--smart-client", f"pts-full-rs={pub['full-rs']}={FULL_SCOPES}",
            "--smart-client", f"pts-full-es={pub['full-es']}={FULL_SCOPES}",
            "--smart-client", f"pts-reader={pub['reader']}={READ_SCOPES}",
        ]
        if self.validation:
            cmd += ["--validation", self.validation]
        log = (self.workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        root = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sekmet-fhir exited early ({self.proc.returncode}); see {self.workdir}/server.log")
            try:
                if requests.get(f"{root}/fhir/metadata", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"sekmet-fhir did not answer on {root} in {timeout:.0f} s")
            time.sleep(0.1)
        self.info = ServerInfo(
            base_url=f"{root}/fhir",
            token_url=f"{root}/auth/token",
            root_url=root,
            full_rs384=ClientKeys("pts-full-rs", keys["full-rs"], "RS384", FULL_SCOPES),
            full_es384=ClientKeys("pts-full-es", keys["full-es"], "ES384", FULL_SCOPES),
            reader=ClientKeys("pts-reader", keys["reader"], "ES384", READ_SCOPES),
            stranger_key=keys["stranger"],
        )
        return self.info

    def stop(self) -> None:
        """Stop the process (terminate, then kill), whatever state it is in."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> ServerInfo:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextmanager
def own_server(workdir: Path) -> Iterator[ServerInfo]:
    """A sekmet-fhir of a test module's own (its data kept apart from the session server's), stopped at the end;
    the test is skipped, saying why, when the server venv is missing."""
    import pytest

    python = server_python()
    if python is None:
        pytest.skip("FHIR test server venv missing: run scripts/test.sh (or set FHIR_PTS_TEST_SERVER)")
    server = SekmetServer(python, workdir)
    try:
        yield server.start()
    finally:
        server.stop()


def smart_session(info: ServerInfo, client: str = "full_rs384", scope: str = "system/*.read system/*.write",
                  **kw: object) -> FhirSession:
    """A session authenticated as one of the registered clients."""
    keys = getattr(info, client)
    auth = SmartBackendAuth(info.token_url, keys.client_id, keys.private_key, scope)
    return make_session(auth, **kw)  # type: ignore[arg-type]


if __name__ == "__main__":  # manual use: start a server and print how to reach it
    import tempfile

    py = server_python()
    if py is None:
        sys.exit("no server venv: run scripts/test.sh once or set FHIR_PTS_TEST_SERVER")
    with tempfile.TemporaryDirectory() as tmp, SekmetServer(py, Path(tmp)) as info:
        print(info, flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
