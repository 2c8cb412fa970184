"""The exception a delegation step raises for a problem the user can fix."""

from mcp_server.errors import HybridError


class DelegationError(HybridError):
    """A delegation failed for a reason worth telling the user; nothing was written."""
