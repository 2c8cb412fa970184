"""The one exception type a delegation step raises for a problem the user can fix.

Its message is shown to Claude as it is, so it must be clear, short, and free of
secrets. Anything else that escapes a tool is a bug and is reported as such.
"""


class DelegationError(Exception):
    """A delegation failed for a reason worth telling the user; nothing was written."""
