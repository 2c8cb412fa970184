"""The report and the dashboard read at a glance: money below $1 with digits that explain it and
its sign, the same rounding in the Markdown and the dashboard, a footnote in plain sentences.
(The charts are looked at in chromium: tests/test_dashboard_browser.py; the demo's words:
tests/e2e/test_demo.py.)"""

from __future__ import annotations

import re
from decimal import Decimal

from mcp_server.monitor.cli import main
from mcp_server.monitor.money import money_text
from tests.test_dashboard_browser import browse, dashboard, embedded
from tests.test_monitor_builders import scripted_run


def test_money_below_a_dollar_explains_itself_and_keeps_its_sign():
    hybrid, claude_only = Decimal("0.2512"), Decimal("0.2461")
    assert (money_text(hybrid), money_text(claude_only), money_text(claude_only - hybrid)) == ("$0.251", "$0.246", "-$0.00510")
    assert money_text(Decimal("-0.0047")) == "-$0.00470"  # was "$0.00": the sign was lost
    assert money_text(Decimal("1234.5678")) == "$1,234.57" and money_text(Decimal("0")) == "$0.00"
    assert money_text(Decimal("0.2461"), 4) == "$0.2461"  # table columns keep four decimals


def test_markdown_and_dashboard_show_every_figure_alike(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    assert main(["--project", str(project)]) == 0
    markdown = capsys.readouterr().out
    data = embedded(dashboard(capsys, project, tmp_path / "dashboard.html"))
    text = data["headline"]["text"]
    head = "\n".join(markdown.splitlines()[:12])
    assert f"Total Cost: {text['total']} (Claude {text['claude']} + GLM {text['glm']})" in head
    # every baseline side by side, the primary first and alike in both
    assert f"vs Claude-Only: {text['baseline']} with sonnet-writes (primary)¹" in head
    assert f"Savings: {text['savings']} ({text['savings_pct']}) vs sonnet-writes" in head
    for name, base, savings, pct in text["baselines"]:
        assert f"{base} with {name}" in head and f"{savings} ({pct}) vs {name}" in head
    assert f"Claude Tokens Avoided: {text['avoided']}" in head
    assert f"AC Pass Rate: {text['ac']}" in head and f"Test Coverage: {text['coverage']} avg" in head
    stories = data["stories"]
    for i, story in enumerate(stories["id"]):
        [row, against] = [line for line in markdown.splitlines() if line.startswith(f"| {story} |")]
        cells = [cell.strip() for cell in row.split("|")[1:-1]]
        assert cells[3:6] == [stories["cost_text"][i], stories["base_text"][i], stories["savings_text"][i]], row
        assert cells[6].startswith(stories["ac_pct_text"][i]) and cells[7].startswith(stories["cov_text"][i]), row
        # the Claude tokens avoided: input / cache read / output in the dashboard, a column each in Markdown
        avoided = [cell.strip() for cell in against.split("|")[1:-1]][3:]
        assert " / ".join([avoided[0], avoided[1], avoided[3]]) == stories["avoided_text"][i], against


def test_the_dashboard_cards_show_those_texts(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    page = dashboard(capsys, project, tmp_path / "dashboard.html")
    text = embedded(page)["headline"]["text"]
    done = browse(tmp_path, page, "--dump-dom")  # in chromium
    values = re.findall(r'<div class="v">([^<]*)</div>', done.stdout)
    assert values[:3] == [text["total"], text["baseline"], text["savings"]], values


def test_the_footnote_is_plain_sentences(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    assert main(["--project", str(project)]) == 0
    [footnote] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("¹ ")]
    assert footnote.startswith("¹ Claude-only is what the same work would have cost with Claude alone.")
    assert " = " not in footnote and "+ GLM" not in footnote  # no formula to decode
    sentences = re.split(r"(?<=\.) (?=[A-Z])", footnote.removeprefix("¹ "))
    assert len(sentences) >= 5 and all(s.endswith(".") for s in sentences), sentences
    assert max(len(s) for s in sentences) < 260, sentences
