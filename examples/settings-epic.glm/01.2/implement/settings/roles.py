"""Roles (story 01.2): unique names, sorted listing, no deleting a role in use."""

import re

from settings.errors import SettingsError

ROLE_NAME = re.compile(r"^[a-z0-9-]{3,32}$")


class RoleStore:
    def __init__(self):
        self._roles: set[str] = set()
        self._assignments: dict[str, str] = {}  # user -> role

    def create(self, name: str) -> None:
        if not ROLE_NAME.fullmatch(name or ""):
            raise SettingsError(f"role name {name!r} must be 3-32 lowercase letters, digits or '-'")
        if name in self._roles:
            raise SettingsError(f"role {name!r} already exists")
        self._roles.add(name)

    def names(self) -> list[str]:
        return sorted(self._roles)

    def assign(self, user: str, role: str) -> None:
        if role not in self._roles:
            raise SettingsError(f"role {role!r} does not exist")
        self._assignments[user] = role

    def delete(self, name: str) -> None:
        if name not in self._roles:
            raise SettingsError(f"role {name!r} does not exist")
        users = sorted(user for user, role in self._assignments.items() if role == name)
        if users:
            raise SettingsError(f"role {name!r} is assigned to {', '.join(users)}")
        self._roles.remove(name)
