import unittest

from settings.errors import SettingsError
from settings.permissions import KNOWN_PERMISSIONS, PermissionStore


class PermissionStoreTest(unittest.TestCase):
    def setUp(self):
        self.store = PermissionStore()

    def test_ac1_known_permissions(self):
        self.assertEqual(
            set(KNOWN_PERMISSIONS), {"settings.read", "settings.write", "users.invite", "billing.manage"}
        )

    def test_ac1_grant(self):
        self.store.grant("editor", "settings.write")
        self.assertTrue(self.store.can("editor", "settings.write"))

    def test_ac2_unknown_permission_is_refused(self):
        with self.assertRaises(SettingsError):
            self.store.grant("editor", "root.everything")

    def test_ac3_can_answers_per_role(self):
        self.store.grant("editor", "settings.read")
        self.assertTrue(self.store.can("editor", "settings.read"))
        self.assertFalse(self.store.can("editor", "billing.manage"))
        self.assertFalse(self.store.can("viewer", "settings.read"))

    def test_ac4_revoking_a_missing_permission_is_a_no_op(self):
        self.store.grant("editor", "settings.read")
        self.store.revoke("editor", "users.invite")
        self.store.revoke("nobody", "settings.read")
        self.assertTrue(self.store.can("editor", "settings.read"))


if __name__ == "__main__":
    unittest.main()
