"""ServerConfig from TOML, environment and command line; end to end through fetch_from_server."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import pytest

from fhir_pts.options import SERVER_OPTIONS, add_server_arguments, server_config_from_args
from fhir_pts.sources.server.auth import SmartBackendAuth
from fhir_pts.sources.server.config import ConfigError, ServerConfig, load_server_config
from fhir_pts.sources.server.fetch import fetch_from_server
from tests.sources.server.cohort_factory import expected_keys, read_keys
from tests.sources.server.sekmet_harness import ServerInfo


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_server_arguments(parser)
    return parser.parse_args(list(argv))


def test_no_server_anywhere_gives_none() -> None:
    assert server_config_from_args(parse(), environ={}) is None


def test_precedence_toml_env_cli(tmp_path: Path) -> None:
    key = tmp_path / "key.pem"
    key.write_text("placeholder")
    toml = tmp_path / "server.toml"
    toml.write_text(f'url = "https://a.example/fhir"\nclient_id = "from-toml"\nprivate_key = "{key}"\n'
                    'page_size = 200\nworkers = 2\n')
    env = {"FHIR_PTS_CLIENT_ID": "from-env"}
    config = server_config_from_args(parse("--config", str(toml), "--server-workers", "3"), environ=env)
    assert config is not None
    assert (config.url, config.client_id, config.page_size, config.workers) == (
        "https://a.example/fhir", "from-env", 200, 3)
    assert config.auth == "smart" and config.verify_tls and not config.bulk


def test_every_server_option_sets_its_field(tmp_path: Path) -> None:
    """Each option of :data:`SERVER_OPTIONS` overrides the :class:`ServerConfig` field it names, and only
    ``run`` / ``validate`` get the Bulk options, only ``run`` ``--write-back``."""
    import dataclasses

    fields = {f.name for f in dataclasses.fields(ServerConfig)}
    assert {o.setting for o in SERVER_OPTIONS if o.setting} <= fields | {"token_file"}  # read into ``token``
    key, token = tmp_path / "key.pem", tmp_path / "token"
    key.write_text("placeholder")
    token.write_text("from-file\n")
    parser = argparse.ArgumentParser()
    add_server_arguments(parser, bulk=True, write_back=True)
    argv = ["--server", "https://c.example/fhir", "--auth", "bearer", "--client-id", "c", "--private-key", str(key),
            "--key-id", "k1", "--token-file", str(token), "--ca-bundle", str(key), "--bulk", "--export-level", "group",
            "--group-id", "g", "--no-type-filter", "--page-size", "7", "--max-pages", "9", "--server-workers", "3",
            "--write-back"]  # fmt: skip
    config = server_config_from_args(parser.parse_args(argv), environ={})
    assert config is not None
    assert dataclasses.asdict(config) | {"token": None} == dataclasses.asdict(ServerConfig(
        url="https://c.example/fhir", auth="bearer", client_id="c", private_key=key, key_id="k1", ca_bundle=key,
        bulk=True, export_level="group", group_id="g", type_filter=False, page_size=7, max_pages=9, workers=3,
        write_back=True, token="from-file")) | {"token": None}  # fmt: skip
    assert config.token == "from-file"
    flags = {f for o in SERVER_OPTIONS for f in o.flags}
    for bulk, write_back, left_out in ((False, False, {"--bulk", "--export-level", "--group-id", "--no-type-filter",
                                                       "--write-back"}), (True, False, {"--write-back"})):
        parser = argparse.ArgumentParser()
        add_server_arguments(parser, bulk=bulk, write_back=write_back)
        assert flags - set(parser._option_string_actions) == left_out


def test_max_pages_from_toml_or_cli(tmp_path: Path) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text('url = "https://a.example/fhir"\nmax_pages = 50\n')
    assert server_config_from_args(parse("--config", str(toml)), environ={}).max_pages == 50
    assert server_config_from_args(parse("--config", str(toml), "--max-pages", "7"), environ={}).max_pages == 7
    assert server_config_from_args(parse("--server", "https://a.example/fhir"), environ={}).max_pages == 10_000


def test_token_from_env_or_file_never_printed(tmp_path: Path) -> None:
    config = load_server_config(environ={"FHIR_PTS_SERVER_URL": "https://b.example/fhir", "FHIR_PTS_TOKEN": "s3cr3t"})
    assert config is not None and config.auth == "bearer" and "s3cr3t" not in repr(config)
    token_file = tmp_path / "token"
    token_file.write_text("from-file\n")
    config = server_config_from_args(parse("--server", "https://b.example/fhir", "--token-file", str(token_file)),
                                     environ={})
    assert config is not None and config.token == "from-file"


def test_token_on_command_line_is_impossible() -> None:
    with pytest.raises(SystemExit):
        parse("--server", "https://b.example/fhir", "--token", "abc")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('url = "https://x/fhir"\ntoken = "abc"\n', "holds a token"),
        ('url = "https://x/fhir"\ncolour = "red"\n', "unknown setting"),
        ('url = "ftp://x/fhir"\n', "must start with https://"),
        ('url = "https://x/fhir"\nauth = "smart"\n', "needs a client id and a private key"),
        ('url = "https://x/fhir"\nexport_level = "group"\n', "needs a group id"),
        ('url = "https://x/fhir"\npage_size = 0\n', "page_size must be at least 1"),
        ('url = "https://x/fhir"\nca_bundle = "/no/such.pem"\n', "CA bundle /no/such.pem does not exist"),
        ("url = ", "not valid TOML"),
    ],
)
def test_bad_config_is_refused_clearly(tmp_path: Path, text: str, message: str) -> None:
    toml = tmp_path / "server.toml"
    toml.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_server_config(toml, environ={})


@pytest.mark.server
@pytest.mark.parametrize("bulk", [False, True])
def test_fetch_from_server_with_env_config(sekmet: ServerInfo, cohort: list[dict], tmp_path: Path, bulk: bool,
                                           caplog: pytest.LogCaptureFixture) -> None:
    env = {
        "FHIR_PTS_SERVER_URL": sekmet.base_url,
        "FHIR_PTS_CLIENT_ID": sekmet.full_es384.client_id,
        "FHIR_PTS_PRIVATE_KEY": str(sekmet.full_es384.private_key),
    }
    config = load_server_config(environ=env, overrides={"bulk": bulk})
    assert isinstance(config, ServerConfig)
    with caplog.at_level(logging.DEBUG):
        result = fetch_from_server(config, tmp_path / "raw")
    assert read_keys(result.paths) == expected_keys(cohort)
    assert result.mode == ("bulk" if bulk else "search") and result.requests > 0
    assert "eyJ" not in caplog.text and "BEGIN" not in caplog.text  # no token, no key in logs


@pytest.mark.server
def test_token_renewed_before_expiry(sekmet: ServerInfo) -> None:
    auth = SmartBackendAuth(sekmet.token_url, "pts-reader", sekmet.reader.private_key, "system/*.rs")
    first = auth.token()
    assert auth.token() == first
    auth._token.expires_at = time.monotonic() + 5  # type: ignore[union-attr]  # about to expire
    assert auth.token() != first and auth.tokens_fetched == 2
    assert auth.granted_scope == "system/*.rs"
