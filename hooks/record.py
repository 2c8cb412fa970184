#!/usr/bin/env python3
"""Claude Code runs this for every hook in hooks/hooks.json: ``record.py <action>``, payload on stdin.

Standard library only, and it never fails the session: whatever goes wrong, exit 0 (only the
budget guard exits 2, on purpose). The work is in mcp_server/usage/hook/.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
try:
    from mcp_server.usage.hook import main

    code = main(sys.argv[1] if len(sys.argv) > 1 else "")
except BaseException as error:  # even an import error must not break the session
    sys.stderr.write(f"hybrid hook: {type(error).__name__}: {error}\n")
    code = 0
sys.exit(2 if code == 2 else 0)
