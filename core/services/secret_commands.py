"""Secrets as the operator manages them: set, list, read field names, delete (values never leave)."""

from __future__ import annotations

from core.collaborators import Emit, Leadership, require_leader
from core.errors import BadRequest
from core.secrets import SecretStore


class SecretCommands:
    def __init__(self, secrets: SecretStore, emit: Emit, leadership: Leadership) -> None:
        self._secrets = secrets
        self._emit = emit
        self._leadership = leadership

    async def set_secret(self, name: str, fields: dict[str, str]) -> list[str]:
        require_leader(self._leadership)
        if not isinstance(fields, dict) or not fields:
            raise BadRequest('a secret needs at least one field, e.g. {"password": "..."}')
        for key, value in fields.items():
            if not isinstance(value, str):
                raise BadRequest(f"secret field '{key}' must be a string")
        names = await self._secrets.lanes.write(self._secrets.set, name, fields)
        await self._emit("lifecycle", "secret_set", f"secret {name} set (fields: {', '.join(names)})")
        return names

    async def secret_fields(self, name: str) -> list[str]:
        return await self._secrets.lanes.read(self._secrets.field_names, name)

    async def list_secrets(self) -> dict[str, list[str]]:
        return await self._secrets.lanes.read(self._secrets.list)

    async def delete_secret(self, name: str) -> None:
        require_leader(self._leadership)
        await self._secrets.lanes.write(self._secrets.delete, name)
        await self._emit("lifecycle", "secret_deleted", f"secret {name} deleted")
