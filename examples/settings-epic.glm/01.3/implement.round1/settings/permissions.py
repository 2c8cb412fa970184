"""Permissions (story 01.3)."""

from settings.errors import SettingsError

KNOWN_PERMISSIONS = ("settings.read", "settings.write", "users.invite", "billing.manage")

_GRANTS: dict[str, set[str]] = {}


class PermissionStore:
    def __init__(self, grants=_GRANTS):
        self._grants = grants

    def grant(self, role: str, permission: str) -> None:
        if permission not in KNOWN_PERMISSIONS:
            raise SettingsError(f"unknown permission {permission!r}")
        self._grants.setdefault(role, set()).add(permission)

    def revoke(self, role: str, permission: str) -> None:
        self._grants.get(role, set()).discard(permission)

    def can(self, role: str, permission: str) -> bool:
        return permission in self._grants.get(role, set())
