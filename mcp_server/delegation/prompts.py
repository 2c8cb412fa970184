"""The words sent to GLM: one role per tool, the user message, and the fix-round request."""

from __future__ import annotations

from mcp_server.delegation.context import GatheredContext

ROLES = {
    "write_tests": (
        "You are a senior test engineer. Write thorough, runnable automated tests for the story "
        "below: one or more tests per acceptance criterion, named after it, plus edge cases. "
        "Match the project's language, framework and layout as shown in the context files. "
        "Write tests only; do not implement the feature."
    ),
    "implement": (
        "You are a senior software engineer. Implement the story below so that its acceptance "
        "criteria hold and the project's tests pass. Follow the conventions of the context files. "
        "Prefer small, focused changes; use SEARCH/REPLACE edits for large existing files."
    ),
    "refactor": (
        "You are a senior engineer doing a careful refactor after code review. Address the review "
        "points in the instructions without changing behaviour. Keep every test passing."
    ),
    "write_docs": (
        "You are a technical writer. Document the story's feature for its users and maintainers: "
        "what it does, how to use it, configuration, and examples that match the code."
    ),
}


def system_prompt(tool: str, output_contract: str) -> str:
    return f"{ROLES[tool]}\n\n{output_contract}"


def user_message(
    context: GatheredContext, instructions: str, *, write_under: str | None, test_command: str | None
) -> str:
    parts = [context.render(), f"## Instructions\n\n{instructions.strip()}"]
    if write_under:
        parts.append(f"Write files only under `{write_under}/`.")
    if test_command:
        parts.append(f"The tests are run with: `{test_command}`")
    return "\n\n".join(parts)


def fix_request(test_command: str, output_tail: str) -> str:
    return (
        f"The tests failed after your change. Command: `{test_command}`\n\n"
        f"Last lines of its output:\n\n{output_tail}\n\n"
        "Fix the code so that the tests pass. Reply in the same format, with only the files "
        "or edits that change. Do not weaken or delete tests to make them pass."
    )
