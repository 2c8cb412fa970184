"""The scripted model before the plugin's MCP server has connected: the orchestrator waits for the
glm tools (bounded), and an agent whose tool is missing reports its phase failed."""

from __future__ import annotations

from mcp_server.demo.script import Scenario, brain_for
from mcp_server.demo.tool_readiness import MAX_WAITS, TOOL, WAIT, glm_tools_offered

COMMAND = "<command-name>/hybrid:pilot</command-name>\n<command-args>01.2 --no-workflow</command-args>"
DEFERRED = ("The following deferred tools are now available via ToolSearch. Their schemas are NOT loaded:\n"
            "WebFetch\n{extra}Monitor")
GLM_DEFERRED = f"{TOOL}checkpoint_list\n{TOOL}checkpoint_write\n"
BASE_TOOLS = [{"name": "Bash"}, {"name": "Agent"}, {"name": "ToolSearch"}]


def request(first: str, turns: list[tuple[str, dict, str]] = (), deferred: str = "", tools=BASE_TOOLS) -> dict:
    messages = [{"role": "user", "content": [{"type": "text", "text": first}]}]
    if deferred:
        messages.append({"role": "system", "content": DEFERRED.format(extra=deferred)})
    for number, (name, arguments, result) in enumerate(turns):
        messages.append({"role": "assistant", "content": [{"type": "tool_use", "id": f"t{number}", "name": name, "input": arguments}]})
        messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"t{number}", "content": result}]})
    return {"messages": messages, "tools": list(tools)}


def answer(body: dict):
    return brain_for(Scenario())(body)


def test_the_glm_tools_count_as_offered_loaded_or_deferred_but_not_when_only_named_elsewhere():
    assert glm_tools_offered(request("hi", tools=[*BASE_TOOLS, {"name": f"{TOOL}checkpoint_write"}]))
    assert glm_tools_offered(request("hi", deferred=GLM_DEFERRED))
    assert not glm_tools_offered(request("hi", deferred="CronList\n"))
    # A call the model made, or its error, does not mean the tool is there.
    missing = f"<tool_use_error>Error: No such tool available: {TOOL}checkpoint_write</tool_use_error>"
    assert not glm_tools_offered(request("hi", [(f"{TOOL}checkpoint_write", {}, missing)]))


def test_the_orchestrator_waits_for_the_tools_then_starts_as_if_it_had_not_waited():
    first = answer(request(COMMAND, deferred="CronList\n"))
    assert first.tool_calls == (("Bash", WAIT),)
    waited = [("Bash", WAIT, "")] * 3
    started = answer(request(COMMAND, waited, deferred=GLM_DEFERRED))
    assert started == answer(request(COMMAND, deferred=GLM_DEFERRED))  # the waits change nothing after
    name, arguments = started.tool_calls[0]  # the pilot's own first step: its arguments checked
    assert name == "Bash" and "pilot-check 01.2 --no-workflow" in arguments["command"]


def test_the_orchestrator_gives_up_with_a_clear_line_after_its_waits():
    gave_up = answer(request(COMMAND, [("Bash", WAIT, "")] * MAX_WAITS, deferred="CronList\n"))
    assert not gave_up.tool_calls and "did not connect" in gave_up.text and TOOL in gave_up.text


def test_an_agent_whose_glm_tool_is_missing_reports_the_phase_failed_with_the_reason():
    missing = f"<tool_use_error>Error: No such tool available: {TOOL}checkpoint_read</tool_use_error>"
    status = {"name": "StructuredOutput", "input_schema": {"properties": {"status": {}, "summary": {}}}}
    body = request("[story 01.2 P1] Design the UX for story 01.2.", [(f"{TOOL}checkpoint_read", {"story": "01.2"}, missing)],
                   tools=[{"name": "Write"}, status])
    name, arguments = answer(body).tool_calls[0]
    assert name == "StructuredOutput" and arguments == {
        "status": "failed", "summary": f"Error: No such tool available: {TOOL}checkpoint_read"}
    in_agent_mode = request("[story 01.2 P1] Design the UX for story 01.2.", [(f"{TOOL}checkpoint_read", {}, missing)])
    assert answer(in_agent_mode).text == f"P1 01.2 failed: Error: No such tool available: {TOOL}checkpoint_read"
