import unittest

from settings.errors import SettingsError
from settings.org_profile import OrgProfile


class OrgProfileTest(unittest.TestCase):
    def make(self):
        return OrgProfile(name="Acme", email="admin@acme.example", locale="en")

    def test_ac1_profile_fields(self):
        profile = self.make()
        self.assertEqual((profile.name, profile.email, profile.locale), ("Acme", "admin@acme.example", "en"))

    def test_ac1_name_length(self):
        for name in ("", "x" * 81):
            with self.subTest(name=name), self.assertRaises(SettingsError):
                OrgProfile(name=name, email="a@b.example", locale="en")

    def test_ac2_invalid_email_names_the_field(self):
        for email in ("no-at-sign", "a@", "@b.example", "a b@c.example"):
            with self.subTest(email=email), self.assertRaises(SettingsError) as error:
                OrgProfile(name="Acme", email=email, locale="en")
            self.assertIn("email", str(error.exception))

    def test_ac3_unknown_locale_names_the_field(self):
        with self.assertRaises(SettingsError) as error:
            OrgProfile(name="Acme", email="a@b.example", locale="xx")
        self.assertIn("locale", str(error.exception))

    def test_ac4_update_changes_only_given_fields(self):
        profile = self.make()
        profile.update(locale="pl")
        self.assertEqual((profile.name, profile.email, profile.locale), ("Acme", "admin@acme.example", "pl"))

    def test_ac4_invalid_update_changes_nothing(self):
        profile = self.make()
        with self.assertRaises(SettingsError):
            profile.update(name="Acme 2", email="broken")
        self.assertEqual(profile.name, "Acme")


if __name__ == "__main__":
    unittest.main()
