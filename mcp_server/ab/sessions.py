"""The two pilot sessions of an A/B run: `claude -p "/hybrid:pilot <ids> engine=<engine>"` in
each engine's project, with the plugin loaded, in parallel (two threads, each waiting on its own
process) or one after the other. Each session's stderr and JSON result go to `<engine>.log` in
the A/B folder; a session that fails is reported, never retried.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping, Sequence

from mcp_server.demo.run import ALLOWED_TOOLS, PLUGIN_ROOT, DemoError, run_session

ENGINES = ("claude", "hybrid")  # A and B of the comparison, in this order
# The Claude-only engine's agents edit files with Claude Code's own tools.
AB_ALLOWED_TOOLS = f"{ALLOWED_TOOLS} Edit MultiEdit"
# Set by a Claude Code session around it: not for the nested sessions, which have projects of
# their own.
INHERITED_OUT = ("CLAUDE_PROJECT_DIR", "CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT")


@dataclass
class Outcome:
    engine: str
    returncode: int | None  # None: it did not finish (timed out, could not start)
    seconds: float
    problem: str | None = None
    result: str | None = None  # the session's last words

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.problem is None


def pilot_prompt(stories: Sequence[str], engine: str) -> str:
    return f"/hybrid:pilot {','.join(stories)} engine={engine}"


def user_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The user's own environment (keys, endpoints, settings), less what tied it to a session."""
    return {key: value for key, value in (os.environ if environ is None else environ).items() if key not in INHERITED_OUT}


def run_sessions(
    claude: str,
    projects: Mapping[str, Path],
    stories: Sequence[str],
    *,
    env_for: Callable[[str], dict[str, str]],
    parallel: bool = True,
    plugin_dir: Path | None = PLUGIN_ROOT,
    timeout_s: float = 3600,
    log_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> dict[str, Outcome]:
    def one(engine: str) -> Outcome:
        prompt = pilot_prompt(stories, engine)
        say(f"{engine}: claude -p \"{prompt}\" in {projects[engine]}")
        started = time.monotonic()
        try:
            run = run_session(claude, projects[engine], prompt, env_for(engine), plugin_dir=plugin_dir,
                              allowed_tools=AB_ALLOWED_TOOLS, timeout_s=timeout_s)
        except (DemoError, OSError) as error:
            outcome = Outcome(engine, None, time.monotonic() - started, problem=str(error))
            _log(log_dir, engine, outcome, "")
            return outcome
        text = run.result.get("result") if isinstance(run.result, dict) else None
        problem = None if run.returncode == 0 else f"exit {run.returncode}: {(run.stderr.strip() or str(text or ''))[-300:]}"
        outcome = Outcome(engine, run.returncode, time.monotonic() - started, problem, str(text)[-500:] if text else None)
        _log(log_dir, engine, outcome, run.stderr, run.result)
        say(f"{engine}: {'done' if outcome.ok else 'failed'} in {outcome.seconds:.0f} s" + (f" ({problem})" if problem else ""))
        return outcome

    engines = list(projects)
    if parallel and len(engines) > 1:
        with ThreadPoolExecutor(len(engines)) as pool:
            return dict(zip(engines, pool.map(one, engines)))
    return {engine: one(engine) for engine in engines}


def _log(log_dir: Path | None, engine: str, outcome: Outcome, stderr: str, result: object = None) -> None:
    if log_dir is None:
        return
    summary = {"engine": engine, "returncode": outcome.returncode, "seconds": round(outcome.seconds, 1), "problem": outcome.problem}
    text = json.dumps(summary) + "\n" + json.dumps(result, ensure_ascii=False) + "\n--- stderr ---\n" + stderr
    (log_dir / f"{engine}.log").write_text(text, encoding="utf-8")
