"""A stand-in for `claude -p "/hybrid:pilot IDS engine=E"` in the A/B tests: it records how it was
called, leaves the ledger and checkpoints the pilot would have left (tests/test_compare.py's two
runs, worked out by hand there), and prints a JSON result as `claude --output-format json` does.

Environment knobs (set by the tests): FAKE_CLAUDE_BARRIER, a folder where each engine says it
started and waits for the other (so two runs one after the other cannot pass); FAKE_CLAUDE_ORDER,
a file each run appends "<engine> start" and "<engine> end" to; FAKE_CLAUDE_FAIL, an engine that
fails at once, leaving nothing.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))


def main() -> int:
    argv = sys.argv[1:]
    prompt = argv[argv.index("-p") + 1]
    match = re.fullmatch(r"/hybrid:pilot (\S+) engine=(claude|hybrid)", prompt)
    if not match:
        print(f"fake claude: unexpected prompt {prompt!r}", file=sys.stderr)
        return 2
    stories, engine = match.group(1).split(","), match.group(2)
    project = Path.cwd()
    record = {"argv": argv, "cwd": str(project), "stories": stories,
              "env": {key: os.environ.get(key) for key in ("CLAUDE_PROJECT_DIR", "ANTHROPIC_BASE_URL", "HYBRID_GLM_BASE_URL", "HOME")}}
    (project / f".fake-claude-{engine}.json").write_text(json.dumps(record))
    order = os.environ.get("FAKE_CLAUDE_ORDER")
    if order:
        with open(order, "a") as log:
            log.write(f"{engine} start\n")
    if os.environ.get("FAKE_CLAUDE_FAIL") == engine:
        print("fake claude: the session failed", file=sys.stderr)
        return 1
    barrier = os.environ.get("FAKE_CLAUDE_BARRIER")
    if barrier:
        Path(barrier, f"{engine}.started").touch()
        other = "hybrid" if engine == "claude" else "claude"
        deadline = time.monotonic() + float(os.environ.get("FAKE_CLAUDE_BARRIER_S", "60"))
        while not Path(barrier, f"{other}.started").exists():
            if time.monotonic() > deadline:
                print(f"fake claude: {other} never started while {engine} ran: the runs were not at once", file=sys.stderr)
                return 3
            time.sleep(0.05)
    from tests.test_compare import claude_only_run, hybrid_run

    if engine == "claude":
        claude_only_run(project)
    else:
        hybrid_run(project)
        glm = os.environ.get("HYBRID_GLM_BASE_URL")
        if glm:  # the demo's GLM simulator: one request, so the test sees which simulator was used
            body = json.dumps({"model": "glm-4.7", "messages": [{"role": "user", "content": "hi"}]}).encode()
            request = urllib.request.Request(f"{glm}/chat/completions", body, {"content-type": "application/json"})
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except OSError:
                pass
    if order:
        with open(order, "a") as log:
            log.write(f"{engine} end\n")
    print(json.dumps({"type": "result", "subtype": "success", "is_error": False, "result": f"pilot {engine} done"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
