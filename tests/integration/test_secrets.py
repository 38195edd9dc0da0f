"""Secrets encrypted at rest on both stores, the key file, and redaction of every value."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.errors import BadRequest, NotFound, SecretError
from core.redaction import RedactingFilter, Redactor
from core.secrets import SecretStore, derive_key, load_or_create_key
from core.store import Store

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture
def key(tmp_path: Path) -> bytes:
    return load_or_create_key(tmp_path / "state", None)


def test_stored_row_holds_no_plaintext(store: Store, key: bytes) -> None:
    secrets = SecretStore(store, key, Redactor())
    secrets.set("db", {"user": "orchestry-admin", "password": PASSWORD})
    with store.database.engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT * FROM secrets")).mappings().all()
    assert len(rows) == 1
    dumped = repr(dict(rows[0])).encode() + bytes(rows[0]["ciphertext"])
    assert PASSWORD.encode() not in dumped
    assert b"orchestry-admin" not in dumped
    assert "password" in repr(rows[0]["field_names"])  # names are not secret


def test_round_trip_merge_list_delete(store: Store, key: bytes) -> None:
    secrets = SecretStore(store, key, Redactor())
    assert secrets.set("db", {"password": PASSWORD}) == ["password"]
    assert secrets.set("db", {"user": "app"}) == ["password", "user"]
    assert secrets.resolve("db", "password") == PASSWORD
    assert secrets.resolve("db", "user") == "app"
    assert secrets.field_names("db") == ["password", "user"]
    assert secrets.exists("db", "user") and not secrets.exists("db", "nope")
    assert not secrets.exists("other", "user")
    assert secrets.list() == {"db": ["password", "user"]}
    # A second SecretStore with the same key (another node) reads the same value.
    assert SecretStore(store, key, Redactor()).resolve("db", "password") == PASSWORD
    secrets.delete("db")
    assert secrets.list() == {}
    with pytest.raises(NotFound, match="orchestry secret set db"):
        secrets.delete("db")
    with pytest.raises(NotFound):
        secrets.field_names("db")


def test_missing_secret_and_field_messages_name_the_fix(store: Store, key: bytes) -> None:
    secrets = SecretStore(store, key, Redactor())
    with pytest.raises(SecretError) as missing:
        secrets.resolve("db", "password")
    assert str(missing.value) == (
        "secret 'db' does not exist: create it with `orchestry secret set db password=...`"
    )
    secrets.set("db", {"password": PASSWORD, "user": "app"})
    with pytest.raises(SecretError) as typo:
        secrets.resolve("db", "pasword")
    assert str(typo.value) == "secret 'db' has no field 'pasword': fields are password, user"


def test_a_missing_secret_names_the_field_the_app_reads(store: Store, key: bytes) -> None:
    """`up` of an app reading field 'token' of a missing secret: the command given creates that field."""
    with pytest.raises(SecretError) as missing:
        SecretStore(store, key, Redactor()).resolve("api-keys", "token")
    assert str(missing.value) == (
        "secret 'api-keys' does not exist: create it with `orchestry secret set api-keys token=...`"
    )


def test_wrong_key_is_a_clear_secret_error(store: Store, key: bytes, tmp_path: Path) -> None:
    SecretStore(store, key, Redactor()).set("x", {"password": PASSWORD})
    other_key = load_or_create_key(tmp_path / "elsewhere", None)
    with pytest.raises(SecretError) as caught:
        SecretStore(store, other_key, Redactor()).resolve("x", "password")
    assert str(caught.value) == (
        "cannot decrypt secret 'x': the key in ORCHESTRY_SECRET_KEY (or <state_dir>/secret.key) "
        "is not the one it was stored with"
    )
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_invalid_names_and_values_are_refused(store: Store, key: bytes) -> None:
    secrets = SecretStore(store, key, Redactor())
    with pytest.raises(BadRequest, match="secret name"):
        secrets.set("../etc", {"password": PASSWORD})
    with pytest.raises(BadRequest, match="field name"):
        secrets.set("db", {"pass word": PASSWORD})
    with pytest.raises(BadRequest, match="must be a string"):
        secrets.set("db", {"port": 5432})  # type: ignore[dict-item]
    with pytest.raises(BadRequest, match="at least one field"):
        secrets.set("db", {})
    assert secrets.list() == {}


def test_every_value_set_or_resolved_is_redacted(store: Store, key: bytes) -> None:
    setter = Redactor()
    SecretStore(store, key, setter).set("db", {"password": PASSWORD})
    assert setter.redact(f"dsn=postgres://u:{PASSWORD}@h") == "dsn=postgres://u:***@h"

    reader = Redactor()  # another process: learns the value when it resolves it
    SecretStore(store, key, reader).resolve("db", "password")
    assert PASSWORD not in reader.redact(PASSWORD)

    at_start = Redactor()
    assert SecretStore(store, key, at_start).register_all() == 1
    assert at_start.redact(PASSWORD) == "***"


def test_redactor_scrubs_a_planted_value_from_a_log_record(
    store: Store, key: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    redactor = Redactor()
    SecretStore(store, key, redactor).set("db", {"password": PASSWORD})
    caplog.handler.addFilter(RedactingFilter(redactor))
    logging.getLogger("orchestry.test").warning("starting with DATABASE_PASSWORD=%s", PASSWORD)
    assert PASSWORD not in caplog.text
    assert "DATABASE_PASSWORD=***" in caplog.text


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = load_or_create_key(state, None)
    path = state / "secret.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_key(state, None) == key
    assert [p.name for p in state.iterdir()] == ["secret.key"]  # no temp file left behind


def test_key_file_readable_by_others_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    load_or_create_key(tmp_path, None)
    os.chmod(tmp_path / "secret.key", 0o644)
    with caplog.at_level(logging.WARNING, logger="core.secrets"):
        load_or_create_key(tmp_path, None)
    assert "chmod 600" in caplog.text


def test_corrupt_key_file_is_a_secret_error(tmp_path: Path) -> None:
    (tmp_path / "secret.key").write_text("not a key")
    os.chmod(tmp_path / "secret.key", 0o600)
    with pytest.raises(SecretError, match="does not hold a Fernet key"):
        load_or_create_key(tmp_path, None)


def test_env_key_fernet_or_passphrase(tmp_path: Path, store: Store) -> None:
    fernet_key = load_or_create_key(tmp_path / "a", None).decode()
    assert load_or_create_key(tmp_path / "b", fernet_key) == fernet_key.encode()
    assert not (tmp_path / "b").exists()  # no key file when the environment gives one
    derived = load_or_create_key(tmp_path / "c", "a long shared passphrase")
    assert derived == derive_key("a long shared passphrase")  # same on every node
    assert derived != derive_key("another passphrase")
    SecretStore(store, derived, Redactor()).set("db", {"password": PASSWORD})
    again = load_or_create_key(tmp_path / "d", "a long shared passphrase")
    assert SecretStore(store, again, Redactor()).resolve("db", "password") == PASSWORD
