import os
import sys

from mcp_server import keys

if keys.holds_key(os.environ):
    # Started with the key in its environment (not by bin/hybrid-mcp): start again without it,
    # before anything else loads, so that /proc/<pid>/environ never shows it.
    os.execve(sys.executable, [sys.executable, "-m", "mcp_server", *sys.argv[1:]], keys.hand_over(dict(os.environ)))

keys.receive()

from mcp_server.server import main  # noqa: E402

main()
