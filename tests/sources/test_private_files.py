"""Secrets and patient data on disk (issue #18 items 5, 10): key and token files readable by others are
warned about (as ssh does), the raw FHIR copy is owner-only."""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_pts.sources.private_files import make_private_dir, protect_tree, warn_if_exposed

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX file modes")


@pytest.fixture(autouse=True)
def _capture_security_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The CLI's logging setup stops ``fhir_pts`` loggers from propagating: listen on the logger itself."""
    logger = logging.getLogger("fhir_pts.security")
    logger.addHandler(caplog.handler)
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.removeHandler(caplog.handler)
    logger.setLevel(level)


def secret(tmp_path: Path, mode: int, text: str = "s3cret-token") -> Path:
    path = tmp_path / "secret.txt"
    path.write_text(text)
    path.chmod(mode)
    return path


@pytest.mark.parametrize(("mode", "warned"), [(0o600, False), (0o400, False), (0o640, True), (0o644, True),
                                              (0o606, True)])  # fmt: skip
def test_group_or_world_access_is_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture, mode: int,
                                         warned: bool) -> None:  # fmt: skip
    path = secret(tmp_path, mode)
    with caplog.at_level(logging.WARNING):
        assert warn_if_exposed(path, "token file") is warned
    assert ("chmod 600" in caplog.text) is warned
    assert "s3cret" not in caplog.text


def test_server_token_file_is_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fhir_pts.sources.server.config import load_server_config

    path = secret(tmp_path, 0o644)
    with caplog.at_level(logging.WARNING):
        config = load_server_config(environ={}, overrides={"url": "https://fhir.example/R4", "token_file": str(path)})
    assert config.token == "s3cret-token"
    assert "token file" in caplog.text and "accessible by others" in caplog.text


def test_private_key_file_is_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from fhir_pts.sources.server.auth import load_signing_key

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "key.pem"
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))  # fmt: skip
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        load_signing_key(path)
    assert "private key file" in caplog.text
    caplog.clear()
    path.chmod(0o600)
    with caplog.at_level(logging.WARNING):
        load_signing_key(path)
    assert caplog.text == ""


def test_serve_token_file_is_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from fhir_pts.serve import _token

    path = secret(tmp_path, 0o664)
    with caplog.at_level(logging.WARNING):
        assert _token(argparse.Namespace(serve_token_file=path), {}) == "s3cret-token"
    assert "token file" in caplog.text


def test_private_dir_and_tree(tmp_path: Path) -> None:
    raw = make_private_dir(tmp_path / "out" / "raw")
    (raw / "Patient.ndjson").write_text("{}\n")
    (raw / "sub").mkdir()
    (raw / "sub" / "x").write_text("x")
    protect_tree(raw)
    assert raw.stat().st_mode & 0o777 == 0o700
    assert (raw / "sub").stat().st_mode & 0o777 == 0o700
    assert {p.stat().st_mode & 0o777 for p in raw.rglob("*") if p.is_file()} == {0o600}


def test_raw_writer_creates_owner_only_files(tmp_path: Path) -> None:
    from fhir_pts.sources.server.rawdir import NdjsonWriter

    writer = NdjsonWriter(tmp_path)
    writer.add({"resourceType": "Patient", "id": "a", "birthDate": "1970-01-01"})
    assert {p.stat().st_mode & 0o777 for p in tmp_path.glob(".*.tmp")} == {0o600}
    (path,) = writer.close()
    assert path.stat().st_mode & 0o777 == 0o600
