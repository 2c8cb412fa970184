"""What the demo's run did, in words: per story, the review loop (who asked for what, and how it
ended) and GLM's fix rounds (a first implementation that failed its tests, then fixed), read from
the checkpoints and the usage ledger the run left behind."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, Sequence

from mcp_server.ledger import ledger_path

CODE_TOOLS = ("implement", "refactor")


def glm_code_requests(project: Path) -> dict[str, int]:
    """Per story, the GLM requests of implement and refactor: one per call, plus one per fix round."""
    path = ledger_path(project)
    if not path.is_file():
        return {}
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            "SELECT story, COUNT(*) FROM usage WHERE provider = 'glm' AND tool IN (?, ?) GROUP BY story", CODE_TOOLS
        ).fetchall()
    return {story: count for story, count in rows if story}


def _rounds(n: int) -> str:
    return f"{n} fix round" + ("" if n == 1 else "s")


def story_lines(checkpoints: Sequence[Any], requests: dict[str, int]) -> list[str]:
    """One sentence or two per story. ``checkpoints`` are mcp_server.checkpoints.Checkpoint."""
    from mcp_server.checkpoints import review_rounds

    lines = []
    for checkpoint in checkpoints:
        phases, story = checkpoint.phases, checkpoint.story
        calls = phases["P3"]["iteration"] + (1 if phases["P4"]["status"] == "done" else 0)
        fixes = max(0, requests.get(story, 0) - calls)
        if phases["P3"]["status"] == "failed":
            parts = [f"GLM's code still failed its tests after {_rounds(fixes)}"]
        elif phases["P3"]["status"] != "done":
            parts = ["P3 (implementation) has not finished"]
        else:
            parts = [f"GLM's first code failed its tests and passed after {_rounds(fixes)}" if fixes
                     else "GLM's code passed its tests at the first attempt"]
        reviews = review_rounds(checkpoint)
        for number, review in enumerate(reviews, 1):
            issues = review.get("issues") or []
            said = f"review {number}: {review['verdict'].replace('_', ' ').lower()} ({review['score']}/10)"
            if review["verdict"] == "REQUEST_CHANGES":
                said += f", so P3 ran again on its {len(issues)} issue" + ("" if len(issues) == 1 else "s")
            elif issues:
                said += f" with {len(issues)} minor issue" + ("" if len(issues) == 1 else "s") + ", so P4 refactored it"
            parts.append(said)
        if not reviews:
            parts.append("no review yet")
        lines.append(f"{story}: " + "; ".join(parts) + ".")
    return lines
