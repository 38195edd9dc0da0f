"""Settings: each source sets values, the precedence holds, bad values are one clear line."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from core.errors import SettingsError
from core.settings import Settings, load_settings

ALIASES = ("DOCKER_HOST", "LEADER_LEASE_TTL", "CLUSTER_NODE_ID")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting leaks in from the machine: own cwd (for .env), XDG dirs and no ORCHESTRY_* variables."""
    for name in list(os.environ):
        if name.startswith("ORCHESTRY_") or name in ALIASES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults(tmp_path: Path) -> None:
    settings = load_settings()

    assert (settings.host, settings.port, settings.lb_listen) == ("127.0.0.1", 8000, "127.0.0.1:8080")
    assert (settings.lb_host, settings.lb_port) == ("127.0.0.1", 8080)
    assert settings.state_dir == tmp_path / "state" / "orchestry"
    assert settings.database_url == f"sqlite:///{tmp_path / 'state' / 'orchestry' / 'orchestry.db'}"
    assert settings.node_id == f"{socket.gethostname()}-{os.getpid()}"
    assert settings.lease_ttl == 30
    assert settings.network_mode == "host"
    assert (settings.domain, settings.docker_url, settings.api_token, settings.secret_key) == (
        None,
        None,
        None,
        None,
    )
    assert (settings.log_level, settings.log_format) == ("info", "text")
    assert (settings.scaler_interval, settings.metrics_interval, settings.drain_timeout) == (5.0, 2.0, 30.0)
    assert settings.relist_interval == 30.0
    assert settings.malloc_threshold == 128 * 1024
    assert settings.api_url == "http://127.0.0.1:8000"
    assert settings.is_loopback


@pytest.mark.parametrize(
    ("value", "expected"),
    [("131072", 131072), ("128k", 131072), ("1 MiB", 2**20), ("32m", 32 * 2**20), ("off", 0)],
)
def test_malloc_threshold_spellings(monkeypatch: pytest.MonkeyPatch, value: str, expected: int) -> None:
    monkeypatch.setenv("ORCHESTRY_MALLOC_THRESHOLD", value)
    assert load_settings().malloc_threshold == expected


@pytest.mark.parametrize(
    ("value", "expected"), [("600", 600.0), ("10m", 600.0), ("2h", 7200.0), ("1d", 86_400.0)]
)
def test_node_retention_spellings(monkeypatch: pytest.MonkeyPatch, value: str, expected: float) -> None:
    monkeypatch.setenv("ORCHESTRY_NODE_RETENTION", value)
    assert load_settings().node_retention == expected


def test_node_retention_defaults_to_an_hour() -> None:
    assert load_settings().node_retention == 3600.0


@pytest.mark.parametrize("value", ["30s", "soon", "-1h"])
def test_bad_node_retention_names_the_variable(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("ORCHESTRY_NODE_RETENTION", value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        f"ORCHESTRY_NODE_RETENTION={value!r} is not valid: expected a duration of at least one minute and "
        "longer than the lease TTL: seconds, or a number with s, m, h or d (e.g. 1h)"
    )


def test_node_retention_within_the_lease_ttl_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_NODE_RETENTION", "2m")
    monkeypatch.setenv("LEADER_LEASE_TTL", "120")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == (
        "ORCHESTRY_NODE_RETENTION (120 s) must be longer than the lease TTL (LEADER_LEASE_TTL, 120 s): "
        "raise the retention or lower the TTL"
    )


def test_state_dir_falls_back_to_home_without_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert load_settings().state_dir == tmp_path / "home" / ".local" / "state" / "orchestry"


def test_environment_variables_set_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_PORT", "9001")
    monkeypatch.setenv("ORCHESTRY_LB_LISTEN", "127.0.0.1:9080")
    monkeypatch.setenv("ORCHESTRY_DOMAIN", "Apps.Example.com")
    monkeypatch.setenv("ORCHESTRY_NETWORK_MODE", "bridge")
    monkeypatch.setenv("ORCHESTRY_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("ORCHESTRY_API_TOKEN", "tok")
    monkeypatch.setenv("ORCHESTRY_SECRET_KEY", "key")
    monkeypatch.setenv("ORCHESTRY_NGINX_CONF_DIR", "/etc/nginx/conf.d")
    monkeypatch.setenv("ORCHESTRY_DRAIN_TIMEOUT", "2.5")
    settings = load_settings()

    assert settings.port == 9001
    assert settings.lb_port == 9080
    assert settings.domain == "apps.example.com"
    assert settings.network_mode == "bridge"
    assert settings.log_level == "debug"
    assert settings.api_token is not None and settings.api_token.get_secret_value() == "tok"
    assert settings.secret_key is not None and settings.secret_key.get_secret_value() == "key"
    assert settings.nginx_conf_dir == Path("/etc/nginx/conf.d")
    assert settings.drain_timeout == 2.5


def test_empty_environment_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_PORT", "")
    monkeypatch.setenv("ORCHESTRY_API_TOKEN", "")
    settings = load_settings()
    assert settings.port == 8000
    assert settings.api_token is None


def test_dotenv_file_sets_values(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ORCHESTRY_PORT=9002\nCLUSTER_NODE_ID=from-dotenv\nUNRELATED=1\n")
    settings = load_settings()
    assert settings.port == 9002
    assert settings.node_id == "from-dotenv"


def test_dotenv_file_can_be_chosen_or_switched_off(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ORCHESTRY_PORT=9002\n")
    other = tmp_path / "other.env"
    other.write_text("ORCHESTRY_PORT=9003\n")
    assert load_settings(env_file=other).port == 9003
    assert load_settings(env_file=None).port == 8000


def test_toml_file_at_the_xdg_path_sets_values(tmp_path: Path) -> None:
    write_toml(
        tmp_path / "config" / "orchestry" / "config.toml", 'port = 9004\nlog_format = "json"\nlease_ttl = 9\n'
    )
    settings = load_settings()
    assert (settings.port, settings.log_format, settings.lease_ttl) == (9004, "json", 9)


def test_toml_file_named_by_orchestry_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = write_toml(tmp_path / "elsewhere.toml", 'state_dir = "/srv/orchestry"\n')
    monkeypatch.setenv("ORCHESTRY_CONFIG", str(path))
    settings = load_settings()
    assert settings.state_dir == Path("/srv/orchestry")
    assert settings.database_url == "sqlite:////srv/orchestry/orchestry.db"


def test_toml_file_passed_explicitly(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "explicit.toml", "metrics_interval = 0.5\n")
    assert load_settings(config_file=path).metrics_interval == 0.5


def test_settings_built_directly_read_the_same_sources(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "config" / "orchestry" / "config.toml", "port = 9005\n")
    monkeypatch.setenv("ORCHESTRY_HOST", "127.0.0.2")
    settings = Settings()
    assert (settings.host, settings.port) == ("127.0.0.2", 9005)


def test_precedence_kwargs_over_env_over_dotenv_over_toml(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    write_toml(tmp_path / "config" / "orchestry" / "config.toml", "port = 9101\nscaler_interval = 1.0\n")
    (tmp_path / ".env").write_text(
        "ORCHESTRY_PORT=9102\nORCHESTRY_SCALER_INTERVAL=2\nORCHESTRY_DRAIN_TIMEOUT=3\n"
    )
    monkeypatch.setenv("ORCHESTRY_PORT", "9103")
    monkeypatch.setenv("ORCHESTRY_DRAIN_TIMEOUT", "4")

    assert load_settings(port=9104).port == 9104
    settings = load_settings()
    assert settings.port == 9103  # env beats .env and TOML
    assert settings.scaler_interval == 2.0  # .env beats TOML
    assert settings.drain_timeout == 4.0
    monkeypatch.delenv("ORCHESTRY_PORT")
    assert load_settings().port == 9102
    (tmp_path / ".env").unlink()
    assert load_settings().port == 9101


def test_lease_ttl_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_LEASE_TTL", "12")
    assert load_settings().lease_ttl == 12
    monkeypatch.setenv("LEADER_LEASE_TTL", "15")
    assert load_settings().lease_ttl == 15  # the documented name wins
    assert load_settings(lease_ttl=6).lease_ttl == 6


def test_node_id_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLUSTER_NODE_ID", "node-b")
    assert load_settings().node_id == "node-b"
    monkeypatch.setenv("ORCHESTRY_NODE_ID", "node-a")
    assert load_settings().node_id == "node-a"


def test_docker_url_falls_back_to_docker_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "unix:///tmp/docker.sock")
    assert load_settings().docker_url == "unix:///tmp/docker.sock"
    monkeypatch.setenv("ORCHESTRY_DOCKER_URL", "tcp://127.0.0.1:2375")
    assert load_settings().docker_url == "tcp://127.0.0.1:2375"


def test_database_url_default_follows_state_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert (
        load_settings(state_dir=tmp_path / "a").database_url == f"sqlite:///{tmp_path / 'a' / 'orchestry.db'}"
    )
    monkeypatch.setenv("ORCHESTRY_STATE_DIR", str(tmp_path / "b"))
    assert load_settings().database_url == f"sqlite:///{tmp_path / 'b' / 'orchestry.db'}"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@127.0.0.1:5432/test", "postgresql://postgres@127.0.0.1:5432/test"),
        ("postgresql+psycopg2://u:p@127.0.0.1/db", "postgresql+psycopg2://u:p@127.0.0.1/db"),
        ("postgres://u@127.0.0.1/db", "postgresql://u@127.0.0.1/db"),
        ("sqlite:////var/lib/x.db", "sqlite:////var/lib/x.db"),
    ],
)
def test_database_urls_accepted(url: str, expected: str) -> None:
    assert load_settings(database_url=url).database_url == expected


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("ORCHESTRY_PORT", "abc", "ORCHESTRY_PORT='abc' is not valid: expected an integer port 1-65535"),
        ("ORCHESTRY_PORT", "70000", "ORCHESTRY_PORT='70000' is not valid: expected an integer port 1-65535"),
        ("ORCHESTRY_LB_LISTEN", "8080", "ORCHESTRY_LB_LISTEN='8080' is not valid: expected HOST:PORT"),
        ("ORCHESTRY_LB_LISTEN", "127.0.0.1:0", "ORCHESTRY_LB_LISTEN='127.0.0.1:0' is not valid"),
        (
            "ORCHESTRY_NETWORK_MODE",
            "overlay",
            "ORCHESTRY_NETWORK_MODE='overlay' is not valid: expected host or bridge",
        ),
        (
            "LEADER_LEASE_TTL",
            "2",
            "LEADER_LEASE_TTL='2' is not valid: expected a whole number of seconds, at least 3",
        ),
        ("ORCHESTRY_LEASE_TTL", "soon", "ORCHESTRY_LEASE_TTL='soon' is not valid"),
        (
            "CLUSTER_NODE_ID",
            "a b",
            "CLUSTER_NODE_ID='a b' is not valid: expected a non-empty id without spaces",
        ),
        (
            "ORCHESTRY_LOG_LEVEL",
            "loud",
            "ORCHESTRY_LOG_LEVEL='loud' is not valid: expected debug, info, warning or error",
        ),
        ("ORCHESTRY_LOG_FORMAT", "xml", "ORCHESTRY_LOG_FORMAT='xml' is not valid: expected text or json"),
        (
            "ORCHESTRY_DOMAIN",
            "not a domain",
            "ORCHESTRY_DOMAIN='not a domain' is not valid: expected a DNS domain",
        ),
        (
            "ORCHESTRY_DATABASE_URL",
            "mysql://u:hunter2@h/db",
            "ORCHESTRY_DATABASE_URL='mysql://u:***@h/db' is not valid",
        ),
        (
            "ORCHESTRY_SCALER_INTERVAL",
            "0",
            "ORCHESTRY_SCALER_INTERVAL='0' is not valid: expected a number of seconds above 0",
        ),
        (
            "ORCHESTRY_DRAIN_TIMEOUT",
            "-1",
            "ORCHESTRY_DRAIN_TIMEOUT='-1' is not valid: expected a number of seconds, 0 or more",
        ),
        ("ORCHESTRY_HOST", "a b", "ORCHESTRY_HOST='a b' is not valid"),
        (
            "ORCHESTRY_MALLOC_THRESHOLD",
            "lots",
            "ORCHESTRY_MALLOC_THRESHOLD='lots' is not valid: expected bytes up to 32 MiB (e.g. 131072",
        ),
        (
            "ORCHESTRY_MALLOC_THRESHOLD",
            "33m",
            "ORCHESTRY_MALLOC_THRESHOLD='33m' is not valid: expected bytes",
        ),
    ],
)
def test_invalid_values_are_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message
    assert "hunter2" not in message


def test_invalid_override_names_the_variable() -> None:
    with pytest.raises(SettingsError, match=r"^ORCHESTRY_PORT='0' is not valid"):
        load_settings(port=0)


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(SettingsError, match="'prot' is not a setting"):
        load_settings(prot=1)


def test_invalid_value_in_toml_names_the_file_and_key(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config" / "orchestry" / "config.toml", 'port = "abc"\n')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value) == f"port in {path}='abc' is not valid: expected an integer port 1-65535"


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    path = write_toml(tmp_path / "config" / "orchestry" / "config.toml", 'host = "127.0.0.1"\nport = = 3\n')
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert str(path) in message
    assert "line 2" in message


def test_unknown_toml_key_suggests_the_right_one(tmp_path: Path) -> None:
    write_toml(tmp_path / "config" / "orchestry" / "config.toml", "lease_tll = 9\n")
    with pytest.raises(SettingsError, match=r"'lease_tll' is not a setting.*did you mean 'lease_ttl'"):
        load_settings()


def test_orchestry_config_naming_a_file_not_written_yet_is_accepted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The console creates this file on its first save: pointing the variable at it beforehand is normal.
    path = tmp_path / "orchestry" / "nope.toml"
    monkeypatch.setenv("ORCHESTRY_CONFIG", str(path))
    assert load_settings().port == Settings.model_fields["port"].default
    assert not path.exists()  # reading settings creates nothing: the console's save does
    write_toml(path, '[console]\ntheme = "textual-light"\n')  # what that save writes
    assert load_settings().port == Settings.model_fields["port"].default


def test_malformed_orchestry_config_names_the_variable_the_file_and_the_fix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = write_toml(tmp_path / "bad.toml", "port = = 3\n")
    monkeypatch.setenv("ORCHESTRY_CONFIG", str(path))
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"ORCHESTRY_CONFIG='{path}': {path} is not valid TOML")
    assert "fix the file at that line, or point ORCHESTRY_CONFIG at another file" in message


def test_orchestry_config_that_is_not_a_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ORCHESTRY_CONFIG", str(tmp_path))
    with pytest.raises(SettingsError, match=r"ORCHESTRY_CONFIG=.* is not valid: .* is not a file; point"):
        load_settings()


def test_public_dict_hides_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCHESTRY_API_TOKEN", "token-value-123")
    monkeypatch.setenv("ORCHESTRY_SECRET_KEY", "key-value-456")
    monkeypatch.setenv("ORCHESTRY_DATABASE_URL", "postgresql://orch:pw-789@127.0.0.1:5432/orch")
    public = load_settings().public_dict()
    text = json.dumps(public)

    for secret in ("token-value-123", "key-value-456", "pw-789"):
        assert secret not in text
    assert public["api_token"] == "***"
    assert public["secret_key"] == "***"
    assert public["database_url"] == "postgresql://orch:***@127.0.0.1:5432/orch"
    assert set(public) == set(Settings.model_fields)


def test_public_dict_shows_unset_secrets_as_none() -> None:
    public = load_settings().public_dict()
    assert public["api_token"] is None and public["secret_key"] is None


@pytest.mark.parametrize(
    ("host", "loopback", "api_url"),
    [
        ("127.0.0.1", True, "http://127.0.0.1:8000"),
        ("127.0.0.5", True, "http://127.0.0.5:8000"),
        ("localhost", True, "http://localhost:8000"),
        ("::1", True, "http://[::1]:8000"),
        ("0.0.0.0", False, "http://127.0.0.1:8000"),
        ("192.168.1.10", False, "http://192.168.1.10:8000"),
        ("ctl.example.com", False, "http://ctl.example.com:8000"),
    ],
)
def test_loopback_and_api_url(host: str, loopback: bool, api_url: str) -> None:
    settings = load_settings(host=host)
    assert settings.is_loopback is loopback
    assert settings.api_url == api_url


def test_lb_listen_with_ipv6_and_bare_port() -> None:
    assert (load_settings(lb_listen="[::1]:9090").lb_host, load_settings(lb_listen="[::1]:9090").lb_port) == (
        "::1",
        9090,
    )
    assert load_settings(lb_listen=":9091").lb_host == "127.0.0.1"


def test_invalid_flag_names_the_flag() -> None:
    with pytest.raises(SettingsError, match=r"^--lb-listen 'nope' is not valid: expected HOST:PORT"):
        load_settings(flags=True, lb_listen="nope")
