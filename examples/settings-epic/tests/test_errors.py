import unittest

from settings.errors import SettingsError


class SettingsErrorTest(unittest.TestCase):
    def test_is_a_value_error(self):
        self.assertTrue(issubclass(SettingsError, ValueError))
