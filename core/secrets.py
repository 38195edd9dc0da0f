"""Secrets encrypted at rest, and the key that encrypts them.

A secret is a name with a few fields (``db-credentials`` → ``user``, ``password``).  All fields of a
secret are encrypted together as one Fernet token (AES-128-CBC + HMAC-SHA256) of their JSON; only the
field names are stored in clear, so listing never needs the key.  Every value set or decrypted is
registered with the redactor, so it cannot reach a log, event or API answer afterwards.

The key comes from ``ORCHESTRY_SECRET_KEY`` or from ``<state_dir>/secret.key`` (created on first use,
mode 0600).  ``ORCHESTRY_SECRET_KEY`` may be a Fernet key (44 url-safe base64 characters) or any
passphrase; a passphrase is stretched with **scrypt** (n=2**14, r=8, p=1, 32 bytes) and the fixed salt
``orchestry-secret-key-v1``, so the same passphrase gives the same key on every node.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import stat
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from core.errors import BadRequest, NotFound, SecretError
from core.redaction import Redactor
from core.store import Store

log = logging.getLogger(__name__)

KEY_FILE_NAME = "secret.key"
KDF_SALT = b"orchestry-secret-key-v1"
SECRET_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
FIELD_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
DEFAULT_KEY_ORIGIN = "ORCHESTRY_SECRET_KEY (or <state_dir>/secret.key)"


def _is_fernet_key(candidate: bytes) -> bool:
    try:
        return len(base64.urlsafe_b64decode(candidate)) == 32
    except (binascii.Error, ValueError):
        return False


def derive_key(passphrase: str) -> bytes:
    """A Fernet key from a passphrase: scrypt(n=2**14, r=8, p=1) with the fixed Orchestry salt."""
    raw = Scrypt(salt=KDF_SALT, length=32, n=2**14, r=8, p=1).derive(passphrase.encode())
    return base64.urlsafe_b64encode(raw)


def load_or_create_key(state_dir: Path, env_key: str | None) -> bytes:
    """The secret-encryption key: ``env_key`` when given, else the key file, created if missing."""
    if env_key:
        candidate = env_key.strip().encode()
        return candidate if _is_fernet_key(candidate) else derive_key(env_key)
    path = Path(state_dir) / KEY_FILE_NAME
    if not path.exists():
        _create_key_file(path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "secret key file %s is readable by other users (mode %o): run `chmod 600 %s`", path, mode, path
        )
    key = path.read_bytes().strip()
    if not _is_fernet_key(key):
        raise SecretError(
            f"secret key file {path} does not hold a Fernet key: restore the original file, or remove it "
            "to start over (secrets stored with the old key can then no longer be read)"
        )
    return key


def _create_key_file(path: Path) -> None:
    """Write a new key atomically: a private temp file, then a hard link that fails if one exists.

    Two processes starting together must end up with the same key: the loser of the link simply
    reads the winner's file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(Fernet.generate_key() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)
        except FileExistsError:
            pass
    finally:
        temp.unlink(missing_ok=True)


class SecretStore:
    """Named secrets with encrypted fields.  Synchronous: call it from a thread in asyncio code."""

    def __init__(
        self, store: Store, key: bytes, redactor: Redactor, *, key_origin: str = DEFAULT_KEY_ORIGIN
    ) -> None:
        self._repo = store.secrets
        self.lanes = store.lanes  # where asyncio callers run these methods (core/store/lanes.py)
        self._fernet = Fernet(key)
        self._redactor = redactor
        self._key_origin = key_origin
        # set() reads, merges and writes back; serialising it keeps two writers from losing fields.
        self._write_lock = threading.Lock()

    def set(self, name: str, fields: dict[str, str]) -> list[str]:
        """Add or replace fields of a secret (others are kept); returns all its field names."""
        _check_name(name)
        if not isinstance(fields, dict) or not fields:
            raise BadRequest(f"secret '{name}' needs at least one field, e.g. password=...")
        for field, value in fields.items():
            if not isinstance(field, str) or not FIELD_NAME.match(field):
                raise BadRequest(
                    f"secret field name {field!r} is not allowed: use letters, digits, '_', '.' or '-'"
                )
            if not isinstance(value, str):
                raise BadRequest(f"secret field '{field}' must be a string, not {type(value).__name__}")
        for value in fields.values():
            self._redactor.add(value)
        with self._write_lock:
            stored = self._repo.get(name)
            merged = self._decrypt(name, stored[1]) if stored else {}
            merged.update(fields)
            token = self._fernet.encrypt(json.dumps(merged, sort_keys=True).encode())
            self._repo.put(name, sorted(merged), token)
        return sorted(merged)

    def field_names(self, name: str) -> list[str]:
        stored = self._repo.get(name)
        if stored is None:
            raise NotFound(_missing_message(name))
        return sorted(stored[0])

    def list(self) -> dict[str, list[str]]:
        """Names and field names only; values never leave this class except through resolve()."""
        return {name: sorted(names) for name, names in self._repo.list().items()}

    def delete(self, name: str) -> None:
        if not self._repo.delete(name):
            raise NotFound(_missing_message(name))

    def exists(self, name: str, field: str) -> bool:
        stored = self._repo.get(name)
        return stored is not None and field in stored[0]

    def resolve(self, name: str, field: str) -> str:
        """The clear value of one field; SecretError naming what is missing and how to fix it."""
        stored = self._repo.get(name)
        if stored is None:
            raise SecretError(_missing_message(name, field))
        values = self._decrypt(name, stored[1])
        if field not in values:
            raise SecretError(
                f"secret '{name}' has no field '{field}': fields are {', '.join(sorted(values))}"
            )
        return values[field]

    def register_all(self) -> int:
        """Teach the redactor every stored value (at start, so logs are clean before first use)."""
        count = 0
        for name in self._repo.list():
            stored = self._repo.get(name)
            if stored is not None:
                count += len(self._decrypt(name, stored[1]))
        return count

    def _decrypt(self, name: str, token: bytes) -> dict[str, str]:
        try:
            values = json.loads(self._fernet.decrypt(token))
        except InvalidToken:
            raise SecretError(
                f"cannot decrypt secret '{name}': the key in {self._key_origin} is not the one it was "
                "stored with"
            ) from None
        for value in values.values():
            self._redactor.add(value)
        return values


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not SECRET_NAME.match(name):
        raise BadRequest(
            f"secret name {name!r} is not allowed: use lowercase letters, digits and '-' "
            "(a DNS label, at most 63 characters)"
        )


def _missing_message(name: str, field: str = "password") -> str:
    """``field``: the one an app needs, so the command given creates what it reads."""
    return f"secret '{name}' does not exist: create it with `orchestry secret set {name} {field}=...`"
