"""The MCP server `glm`: tool signatures only. Each tool is a thin wrapper over a module below.

Claude sees these tools as mcp__plugin_hybrid_glm__<name>. Their names and arguments
are a contract with the agents; test_tool_surface_is_stable in tests/test_tools_stdio.py
keeps them from drifting.
"""

from __future__ import annotations

import logging
import sqlite3
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated, AsyncIterator

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, TextContent

from mcp_server import checkpoint_tools
from mcp_server.config import ConfigError, GlmSettings, Settings, load_settings
from mcp_server.errors import HybridError
from mcp_server.delegation.glm import GlmClient
from mcp_server.delegation.run import DelegationRequest, Services, delegate
from mcp_server.delegation.summary import DelegationResult, as_text
from mcp_server.ledger import Ledger, ledger_path, utc_now
from mcp_server.pricing import PriceTable, PriceTableError

log = logging.getLogger("hybrid.server")

INSTRUCTIONS = (
    "Delegates bulk writing to GLM. write_tests, implement, refactor and write_docs write files "
    "straight into the project and return a short summary; pass paths in context_files, never "
    "file contents. checkpoint_* tools read and update .claude/checkpoints/<story>.yaml."
)


@dataclass
class Runtime:
    """Lives as long as the server: one pooled GLM client. The ledger, and the budget room held
    by GLM requests in flight (which lives in it), are opened per use."""

    run_started_at: str = field(default_factory=utc_now)
    _glm: GlmClient | None = None
    _glm_identity: tuple[GlmSettings, str | None] | None = None
    _retired: set[GlmClient] = field(default_factory=set)
    _tiers_set: set[str] = field(default_factory=set)

    async def _glm_client(self, settings: Settings) -> GlmClient:
        key = settings.api_key.get_secret_value() if settings.api_key else None
        # Reuse the pooled client unless the endpoint settings or key changed underneath.
        if self._glm is None or self._glm_identity != (settings.glm, key):
            old, self._glm = self._glm, GlmClient(settings.glm, key)
            self._glm_identity = (settings.glm, key)
            if old is not None:
                # Its pool closes once the calls still running on it end; until then it is kept
                # here, so that a server shutting down closes it too.
                self._retired = {client for client in self._retired if client.busy}
                self._retired.add(old)
                await old.retire()
        return self._glm

    async def services(self, settings: Settings) -> Services:
        glm = await self._glm_client(settings)
        path = ledger_path(settings.project_root)
        try:
            prices = PriceTable.load(settings.prices)
        except PriceTableError as error:
            raise ConfigError(f"prices: {error}") from None
        if str(path) not in self._tiers_set and path.is_file():  # a call that fails leaves no ledger
            _use_tiers(path, prices)
            self._tiers_set.add(str(path))
        return Services(settings, glm, path, prices, self.run_started_at)

    async def close(self) -> None:
        for client in (*self._retired, *([self._glm] if self._glm else [])):
            await client.aclose()


def _use_tiers(path, prices: PriceTable) -> None:
    """The ledger's running totals bucketed by this price table's tiers, so that a report sums
    those instead of every row (mcp_server/ledger_totals.py). Only speed depends on it."""
    ledger = Ledger(path)
    try:
        ledger.use_tiers(prices.thresholds)
    except sqlite3.Error as error:
        log.warning("the ledger's totals keep their tiers (%s): reports sum its rows instead", error)
    finally:
        ledger.close()


def _start_telemetry():
    """The ledger's metrics pusher (mcp_server/telemetry), only when `telemetry:` is configured."""
    try:
        settings = load_settings()
    except ConfigError as error:
        log.warning("telemetry not started: %s", error)  # the tools report the same error when called
        return None
    if not settings.telemetry.enabled:
        return None
    from mcp_server.telemetry.push import start_background

    return start_background(settings)


@asynccontextmanager
async def lifespan(_: MCPServer) -> AsyncIterator[Runtime]:
    runtime = Runtime()
    telemetry = _start_telemetry()
    try:
        yield runtime
    finally:
        await runtime.close()
        if telemetry is not None:  # the last push, bounded by telemetry.timeout_s
            await anyio.to_thread.run_sync(telemetry.stop)


app = MCPServer("glm", instructions=INSTRUCTIONS, lifespan=lifespan)
checkpoint_tools.register(app)

ToolResult = Annotated[CallToolResult, DelegationResult]


async def _delegate(ctx: Context, request: DelegationRequest) -> CallToolResult:
    runtime: Runtime = ctx.request_context.lifespan_context

    async def progress(step: float, total: float | None, message: str) -> None:
        await ctx.report_progress(step, total, message)

    try:
        services = await runtime.services(load_settings())
        result = await delegate(services, request, progress)
    except HybridError as error:
        raise ToolError(str(error)) from None
    except Exception as error:  # a bug: say so briefly, keep the traceback in the log
        log.exception("%s failed unexpectedly", request.tool)
        raise ToolError(f"internal error in {request.tool}: {type(error).__name__} (details in the server log)") from None
    return CallToolResult(
        content=[TextContent(type="text", text=as_text(result))],
        structured_content=result.model_dump(mode="json"),
    )


@app.tool()
async def write_tests(
    story: str, instructions: str, ctx: Context, context_files: list[str] = [], test_dir: str | None = None
) -> ToolResult:
    """P2: GLM writes the story's tests into the project. Returns a short summary, not the code."""
    return await _delegate(
        ctx, DelegationRequest("write_tests", story, instructions, list(context_files), write_under=test_dir)
    )


@app.tool()
async def implement(
    story: str,
    instructions: str,
    ctx: Context,
    context_files: list[str] = [],
    test_command: str | None = None,
    max_fix_rounds: int = 2,
) -> ToolResult:
    """P3: GLM implements the story in the project; with test_command, runs it and lets GLM fix failures."""
    return await _delegate(
        ctx,
        DelegationRequest(
            "implement", story, instructions, list(context_files), test_command=test_command, max_fix_rounds=max_fix_rounds
        ),
    )


@app.tool()
async def refactor(
    story: str,
    instructions: str,
    ctx: Context,
    context_files: list[str] = [],
    test_command: str | None = None,
    max_fix_rounds: int = 2,
) -> ToolResult:
    """P4: GLM refactors per the review's points, keeping tests green (same loop as implement)."""
    return await _delegate(
        ctx,
        DelegationRequest(
            "refactor", story, instructions, list(context_files), test_command=test_command, max_fix_rounds=max_fix_rounds
        ),
    )


@app.tool()
async def write_docs(
    story: str, instructions: str, ctx: Context, context_files: list[str] = [], docs_dir: str = "docs"
) -> ToolResult:
    """P7: GLM writes the story's documentation under docs_dir. Returns a short summary."""
    return await _delegate(
        ctx, DelegationRequest("write_docs", story, instructions, list(context_files), write_under=docs_dir)
    )


def main() -> None:
    # stdout is the MCP channel; the SDK logs to stderr. httpx's per-request INFO lines are noise there.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app.run()


if __name__ == "__main__":
    main()
