"""Organisation profile (story 01.4)."""

import re

from settings.errors import SettingsError

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
LOCALES = ("en", "pl", "de", "fr")


class OrgProfile:
    def __init__(self, name: str, email: str, locale: str):
        self.name, self.email, self.locale = "", "", ""
        self.update(name=name, email=email, locale=locale)

    def update(self, **fields: str) -> None:
        if "name" in fields and not 1 <= len(fields["name"]) <= 80:
            raise SettingsError("name must be 1-80 characters")
        if "email" in fields and not EMAIL.fullmatch(fields["email"]):
            raise SettingsError(f"email {fields['email']!r} is not valid")
        if "locale" in fields and fields["locale"] not in LOCALES:
            raise SettingsError(f"locale {fields['locale']!r} is not one of {', '.join(LOCALES)}")
        for key, value in fields.items():
            setattr(self, key, value)
