import unittest

from settings.errors import SettingsError
from settings.roles import RoleStore


class RoleStoreTest(unittest.TestCase):
    def setUp(self):
        self.store = RoleStore()

    def test_ac1_create_role_with_valid_name(self):
        self.store.create("billing-admin")
        self.assertEqual(self.store.names(), ["billing-admin"])

    def test_ac1_invalid_names_are_refused(self):
        for name in ("ab", "x" * 33, "Admin", "has space", ""):
            with self.subTest(name=name), self.assertRaises(SettingsError):
                self.store.create(name)

    def test_ac2_duplicate_name_is_refused_and_named(self):
        self.store.create("editor")
        with self.assertRaises(SettingsError) as error:
            self.store.create("editor")
        self.assertIn("editor", str(error.exception))

    def test_ac3_roles_are_listed_sorted(self):
        for name in ("viewer", "admin", "editor"):
            self.store.create(name)
        self.assertEqual(self.store.names(), ["admin", "editor", "viewer"])

    def test_ac4_assigned_role_cannot_be_deleted(self):
        self.store.create("editor")
        self.store.assign("ada@example.com", "editor")
        with self.assertRaises(SettingsError):
            self.store.delete("editor")
        self.assertIn("editor", self.store.names())

    def test_ac4_unassigned_role_can_be_deleted(self):
        self.store.create("editor")
        self.store.delete("editor")
        self.assertEqual(self.store.names(), [])


if __name__ == "__main__":
    unittest.main()
