"""Permissions (story 01.3): grants per role, only from the known set."""

from settings.errors import SettingsError

KNOWN_PERMISSIONS = ("settings.read", "settings.write", "users.invite", "billing.manage")


class PermissionStore:
    def __init__(self):
        # Each store owns its grants: a shared module-level dict leaked grants between stores.
        self._grants: dict[str, set[str]] = {}

    def grant(self, role: str, permission: str) -> None:
        if permission not in KNOWN_PERMISSIONS:
            known = ", ".join(KNOWN_PERMISSIONS)
            raise SettingsError(f"unknown permission {permission!r}; known: {known}")
        self._grants.setdefault(role, set()).add(permission)

    def revoke(self, role: str, permission: str) -> None:
        self._grants.get(role, set()).discard(permission)

    def can(self, role: str, permission: str) -> bool:
        return permission in self._grants.get(role, set())
