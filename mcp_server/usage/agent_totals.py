"""The cross-check of an agent's total as the main transcript reports it against the agent's
own transcript, as the ledger holds it.

Standard library and the ledger only (the hooks import this). The main transcript reports one
number per agent: the Agent tool's ``toolUseResult.totalTokens``, or ``subagent_tokens`` in the
``<task-notification>`` of an agent run in the background. In CLI 2.1.330 that number is the
agent's last request (its input, cache reads and writes, and output), not a sum of its requests;
the captured transcripts show it (1,550 = 1,000 + 200 + 300 + 50). So it is compared with the
agent's last request in the ledger: a reported figure above it means the transcript is missing
usage (the final record never written), and the agent's totals are lower bounds.

The figure used for cost is always the transcript's: its rows carry the input, output and cache
split that pricing needs; the reported total is one number and is used only for this check. A
resumed agent's notification is a running total: the largest report is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_server.ledger import Ledger


@dataclass(frozen=True)
class AgentCheck:
    session_id: str
    agent_id: str
    source: str  # "agent-tool" or "task-notification"
    reported: int
    last_request: int | None  # None: no row of the agent in the ledger
    transcript_sum: int
    requests: int

    @property
    def gap(self) -> int:
        """Tokens the main transcript reports beyond what the agent's transcript has."""
        return self.reported - (self.last_request or 0)


def record_reports(ledger: Ledger, session_id: str, reports: dict[str, tuple[str, int]]) -> None:
    for agent_id, (source, tokens) in reports.items():
        ledger.execute(
            "INSERT INTO agent_report (session_id, agent_id, source, tokens) VALUES (?, ?, ?, ?)"
            " ON CONFLICT(session_id, agent_id, source) DO UPDATE SET tokens = MAX(tokens, excluded.tokens)",
            (session_id, agent_id, source, tokens),
        )


CROSS_CHECK_SQL = (
    "SELECT r.session_id, r.agent_id, r.source, r.tokens,"
    " (SELECT u.prompt_tokens + u.completion_tokens FROM usage u WHERE u.agent_id = r.agent_id"
    "  AND u.provider = 'anthropic' ORDER BY u.ts DESC, u.id DESC LIMIT 1),"
    " (SELECT COALESCE(SUM(u.prompt_tokens + u.completion_tokens), 0) FROM usage u"
    "  WHERE u.agent_id = r.agent_id AND u.provider = 'anthropic'),"
    " (SELECT COUNT(*) FROM usage u WHERE u.agent_id = r.agent_id AND u.provider = 'anthropic')"
    " FROM agent_report r ORDER BY r.session_id, r.agent_id, r.source"
)


def checks(rows: list[tuple]) -> list[AgentCheck]:
    return [AgentCheck(*row) for row in rows]


def cross_check(ledger: Ledger, *, with_gap_only: bool = False) -> list[AgentCheck]:
    found = checks(ledger.fetchall(CROSS_CHECK_SQL))
    return [check for check in found if check.gap > 0] if with_gap_only else found


def describe(check: AgentCheck) -> str:
    return (
        f"agent {check.agent_id}: its {check.source} total is {check.reported:,} tokens, its transcript's last "
        f"request {check.last_request or 0:,} (gap {check.gap:,}); the totals use the transcript's "
        f"{check.requests} request(s), {check.transcript_sum:,} tokens: a lower bound"
    )
