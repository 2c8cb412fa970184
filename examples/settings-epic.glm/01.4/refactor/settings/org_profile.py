"""Organisation profile (story 01.4): every field is checked before any is changed."""

import re

from settings.errors import SettingsError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCALES = ("en", "pl", "de", "fr")
FIELDS = ("name", "email", "locale")


def _check(field: str, value: str) -> None:
    if field == "name" and not 1 <= len(value) <= 80:
        raise SettingsError("name must be 1-80 characters")
    if field == "email" and not EMAIL.fullmatch(value):
        raise SettingsError(f"email {value!r} is not valid")
    if field == "locale" and value not in LOCALES:
        raise SettingsError(f"locale {value!r} is not one of {', '.join(LOCALES)}")


class OrgProfile:
    def __init__(self, name: str, email: str, locale: str):
        self.name, self.email, self.locale = "", "", ""
        self.update(name=name, email=email, locale=locale)

    def update(self, **fields: str) -> None:
        unknown = sorted(set(fields) - set(FIELDS))
        if unknown:
            raise SettingsError(f"unknown profile field(s): {', '.join(unknown)}")
        for field, value in fields.items():
            _check(field, value)
        for field, value in fields.items():
            setattr(self, field, value)
