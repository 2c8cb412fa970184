"""Builders for the monitor's tests and bench: schema-valid checkpoints, ledger rows, coverage
files, and the scripted run whose costs tests/test_monitor.py works out by hand."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from mcp_server import checkpoints as cp
from mcp_server.ledger import Ledger, UsageRow, ledger_path

DAY = "2026-11-25"


def at(clock: str, day: str = DAY) -> str:
    """'10:08' -> '2026-11-25T10:08:00+00:00' (the checkpoints' form)."""
    return f"{day}T{clock}:00+00:00" if len(clock) == 5 else f"{day}T{clock}+00:00"


def ts(clock: str, day: str = DAY) -> str:
    """'10:08' -> '2026-11-25T10:08:00.000+00:00' (the ledger's form)."""
    return f"{day}T{clock}:00.000+00:00" if len(clock) == 5 else f"{day}T{clock}.000+00:00"


def phase(status: str = "pending", start: str | None = None, end: str | None = None, *, iteration: int = 1,
          agent: str | None = None, summary: str | None = None, day: str = DAY) -> dict[str, Any]:
    return {
        "status": status,
        "agent": agent,
        "model": None,
        "iteration": iteration,
        "started_at": at(start, day) if start else None,
        "finished_at": at(end, day) if end else None,
        "summary": summary,
        "artifacts": [],
        "tokens": cp.zero_tokens(),
    }


def review(score: float, verdict: str = "APPROVED", *, iteration: int = 1, when: str = "10:45", issues: Sequence[dict] = (), day: str = DAY) -> dict:
    return {"verdict": verdict, "score": score, "issues": list(issues), "iteration": iteration, "at": at(when, day)}


def checkpoint_data(
    story: str,
    *,
    title: str = "A story",
    acs: int = 2,
    phases: dict[str, dict] | None = None,
    current_review: dict | None = None,
    earlier_reviews: Sequence[dict] = (),
    qa: Sequence[str] | None = None,  # "pass"/"fail" per AC, in order
    coverage: tuple[float, str] | None = None,
    day: str = DAY,
) -> dict[str, Any]:
    all_phases = {name: phase() for name in cp.PHASES}
    all_phases.update(phases or {})
    data = {
        "version": 1,
        "story": story,
        "title": title,
        "story_file": f"docs/stories/{story}.md",
        "acceptance_criteria": [{"id": f"AC-{i}", "text": f"criterion {i}"} for i in range(1, acs + 1)],
        "phases": all_phases,
        "review": current_review,
        "reviews": list(earlier_reviews),
        "qa": None if qa is None else {
            "results": [{"ac": f"AC-{i}", "result": r, "evidence": f"test_ac{i} {r}ed"} for i, r in enumerate(qa, start=1)],
            "iteration": all_phases["P6"]["iteration"],
            "at": at("11:00", day),
        },
        "coverage": None if coverage is None else {"percent": coverage[0], "source": coverage[1], "at": at("11:00", day)},
        "revision": 5,
        "created_at": at("09:55", day),
        "updated_at": at("11:30", day),
    }
    return data


def write_checkpoint(root: Path, data: dict[str, Any], history: Iterable[cp.HistoryEntry] = (), *, validate: bool = True) -> Path:
    path = cp.checkpoint_path(root, data["story"])
    path.parent.mkdir(parents=True, exist_ok=True)
    if validate:
        cp.validate_data(data, path)
    path.write_text(cp.render_checkpoint(data, list(history)), encoding="utf-8")
    return path


def finished(story: str, *, times: dict[str, tuple[str, str]], iterations: dict[str, int] | None = None, day: str = DAY, **kwargs) -> dict[str, Any]:
    """A story through P7 (P4 skipped), with each phase's (start, end) clock times."""
    iterations = iterations or {}
    phases = {
        name: phase("done", *times[name], iteration=iterations.get(name, 1), day=day) if name in times else phase("skipped", summary="no refactor needed")
        for name in cp.PHASES
    }
    return checkpoint_data(story, phases=phases, day=day, **kwargs)


def usage(ledger: Ledger, provider: str, model: str, story: str | None, phase_: str | None, prompt: int, *,
          cached: int = 0, w5m: int = 0, w1h: int = 0, out: int = 0, clock: str = "10:00", day: str = DAY, agent_type: str | None = None,
          session: str | None = None) -> None:
    ledger.record(UsageRow(
        provider=provider, model=model, story=story, phase=phase_, prompt_tokens=prompt, cached_tokens=cached,
        cache_write_5m_tokens=w5m, cache_write_1h_tokens=w1h, completion_tokens=out, ts=ts(clock, day),
        agent_type=agent_type or ("main" if story is None and provider == "anthropic" else None), session_id=session,
    ))


COBERTURA = """<?xml version="1.0" ?>
<coverage version="7.6.1" timestamp="1764064800000" lines-valid="{valid}" lines-covered="{covered}" line-rate="{rate}" branches-covered="0" branches-valid="0" branch-rate="0" complexity="0">
  <sources><source>/project/app</source></sources>
  <packages><package name="app" line-rate="{rate}" branch-rate="0" complexity="0"><classes/></package></packages>
</coverage>
"""

LCOV = """TN:
SF:app/roles.py
DA:1,1
DA:2,0
LF:{lf1}
LH:{lh1}
end_of_record
TN:
SF:app/perms.py
DA:1,3
LF:{lf2}
LH:{lh2}
end_of_record
"""


def cobertura(covered: int, valid: int) -> str:
    return COBERTURA.format(valid=valid, covered=covered, rate=round(covered / valid, 4))


# --- the scripted run ------------------------------------------------------------------------------
# Two stories of the seed's pilot, 01.2 and 01.3, and the orchestrator's own turns; every cost is
# worked out by hand in tests/test_monitor.py.


def scripted_run(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "reports").mkdir(exist_ok=True)
    (root / "reports" / "01.2-coverage.xml").write_text(cobertura(185, 200))  # 92.5%
    (root / "reports" / "01.3-lcov.info").write_text(LCOV.format(lf1=60, lh1=50, lf2=40, lh2=35))  # 85/100
    write_checkpoint(root, finished(
        "01.2", title="User Roles", acs=3, qa=["pass", "pass", "pass"], coverage=(92.5, "reports/01.2-coverage.xml"),
        current_review=review(9, when="10:45"),
        times={"P1": ("10:00", "10:08"), "P2": ("10:08", "10:20"), "P3": ("10:20", "10:35"), "P5": ("10:35", "10:45"),
               "P6": ("10:45", "10:53"), "P7": ("10:53", "10:58")},
    ))
    write_checkpoint(root, finished(
        "01.3", title="Permissions", acs=2, qa=["pass", "pass"], coverage=(85.0, "reports/01.3-lcov.info"),
        current_review=review(8.5, iteration=2, when="11:10"),
        earlier_reviews=[review(6, "REQUEST_CHANGES", when="10:40", issues=[{"severity": "major", "file": "app/perms.py", "line": 3, "text": "no check"}])],
        times={"P1": ("10:02", "10:10"), "P2": ("10:10", "10:22"), "P3": ("10:45", "11:00"), "P5": ("11:00", "11:10"),
               "P6": ("11:10", "11:20"), "P7": ("11:20", "11:30")},
        iterations={"P3": 2, "P5": 2},
    ))
    ledger = Ledger(ledger_path(root))
    sonnet, haiku, opus = "claude-sonnet-5-5", "claude-haiku-5-5", "claude-opus-5-5"
    # 01.2
    usage(ledger, "anthropic", sonnet, "01.2", "P1", 10_000, cached=6_000, w5m=2_000, out=1_000, clock="10:05")
    usage(ledger, "anthropic", haiku, "01.2", "P2", 8_000, cached=5_000, w5m=1_000, out=400, clock="10:09")
    usage(ledger, "glm", "glm-4.7", "01.2", "P2", 20_000, cached=5_000, out=8_000, clock="10:15")
    usage(ledger, "glm", "glm-4.7", "01.2", "P3", 30_000, cached=10_000, out=12_000, clock="10:25")
    usage(ledger, "glm", "glm-4.7", "01.2", "P3", 30_000, cached=10_000, out=12_000, clock="10:30")
    usage(ledger, "anthropic", sonnet, "01.2", "P5", 20_000, cached=15_000, w1h=1_000, out=2_000, clock="10:40")
    usage(ledger, "anthropic", sonnet, "01.2", "P6", 12_000, cached=10_000, out=1_500, clock="10:50")
    usage(ledger, "glm", "glm-4.5-air", "01.2", "P7", 10_000, out=5_000, clock="10:55")
    # 01.3: a Haiku call over 100,000 prompt tokens, a GLM call over it, and a second review round
    usage(ledger, "anthropic", sonnet, "01.3", "P1", 10_000, cached=6_000, w5m=2_000, out=1_000, clock="10:06")
    usage(ledger, "glm", "glm-4.7", "01.3", "P2", 20_000, cached=5_000, out=8_000, clock="10:15")
    usage(ledger, "anthropic", haiku, "01.3", "P3", 150_000, cached=100_000, out=2_000, clock="10:24")
    usage(ledger, "anthropic", haiku, "01.3", "P3", 50_000, cached=40_000, out=1_000, clock="10:26")
    usage(ledger, "glm", "glm-4.7", "01.3", "P3", 120_000, cached=20_000, out=10_000, clock="10:28")
    usage(ledger, "anthropic", sonnet, "01.3", "P5", 20_000, cached=15_000, w1h=1_000, out=2_000, clock="10:38")
    usage(ledger, "glm", "glm-4.7", "01.3", "P3", 25_000, cached=15_000, out=5_000, clock="10:50")
    usage(ledger, "anthropic", sonnet, "01.3", "P5", 10_000, cached=8_000, out=1_000, clock="11:05")
    usage(ledger, "anthropic", sonnet, "01.3", "P6", 12_000, cached=10_000, out=1_500, clock="11:15")
    usage(ledger, "glm", "glm-4.5-air", "01.3", "P7", 10_000, out=5_000, clock="11:25")
    # the orchestrator's own turns: unattributed
    usage(ledger, "anthropic", opus, None, None, 5_000, cached=4_000, w5m=1_000, out=500, clock="10:01")
    usage(ledger, "anthropic", opus, None, None, 5_000, cached=4_000, w5m=1_000, out=500, clock="11:29")
    ledger.close()
    return root


# --- the builders themselves ------------------------------------------------------------------------


def test_scripted_run_checkpoints_are_valid_and_done(tmp_path):
    root = scripted_run(tmp_path / "p")
    for story in ("01.2", "01.3"):
        checkpoint = cp.load_checkpoint(root, story)
        assert cp.next_action(checkpoint) == "done"
    assert len(cp.review_rounds(cp.load_checkpoint(root, "01.3"))) == 2
