class SettingsError(ValueError):
    """A settings change was refused; the message says why."""
