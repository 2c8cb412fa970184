"""The base of every error the user can fix: its message is shown as it is, so it is clear,
short, and free of secrets. Anything else that escapes a tool is a bug, reported as one."""


class HybridError(Exception):
    """A problem with the user's input, configuration or environment; nothing was changed."""
