"""The dashboard in a real browser: Debian's chromium, headless, with every name lookup failing
(so any network use would show), --dump-dom and a screenshot.

The page records script errors (window.onerror, unhandled rejections, console.error) in
<html data-errors>, marks <body data-ready="1"> when it has drawn everything, and gives each
chart its point count (data-points) and the count of points with a value (data-values).
.ci/run installs chromium, and without it these tests fail: CI must never pass them by
skipping. On a machine where no browser can be installed, HYBRID_SKIP_BROWSER=1 skips them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mcp_server.monitor import main

from tests.test_monitor import SONNET_BASELINE, configure
from mcp_server.ledger import Ledger, ledger_path
from tests.test_monitor_builders import checkpoint_data, phase, scripted_run, usage, write_checkpoint

CHROMIUM = next((p for p in (shutil.which("chromium"), shutil.which("chromium-browser"), "/usr/bin/chromium") if p and os.path.exists(p)), None)
pytestmark = pytest.mark.skipif(
    os.environ.get("HYBRID_SKIP_BROWSER") == "1", reason="HYBRID_SKIP_BROWSER=1: no browser on this machine"
)


@pytest.fixture(autouse=True)
def _chromium_is_there():
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: ./install installs it (apt-get install chromium), or set HYBRID_SKIP_BROWSER=1")

FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
    "--enable-logging=stderr", "--v=0", "--window-size=1366,900", "--virtual-time-budget=5000", "--hide-scrollbars",
]
CHARTS = ("chart-stories", "chart-phases", "chart-time", "chart-runs")


class Attributes(HTMLParser):
    def __init__(self):
        super().__init__()
        self.by_id: dict[str, dict[str, str]] = {}
        self.tags: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag, attrs):
        values = {k: v or "" for k, v in attrs}
        self.tags.setdefault(tag, values)
        if "id" in values:
            self.by_id[values["id"]] = values


def browse(tmp: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp / f"chromium-profile-{len(list(tmp.glob('chromium-profile-*')))}"
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )


def loaded(tmp: Path, page: Path) -> tuple[Attributes, str]:
    done = browse(tmp, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = Attributes()
    parsed.feed(done.stdout)
    return parsed, done.stderr


def embedded(page: Path) -> dict:
    text = page.read_text()
    match = re.search(r'<script type="application/json" id="hybrid-data">(.*?)</script>', text, re.S)
    return json.loads(match.group(1))


def dashboard(capsys, project: Path, out: Path) -> Path:
    assert main(["--project", str(project), "--action", "dashboard", "--output", str(out)]) == 0
    capsys.readouterr()
    return out


def assert_clean(parsed: Attributes, stderr: str) -> None:
    assert parsed.tags["html"].get("data-errors") == "0", stderr[-2000:]
    assert parsed.tags["body"].get("data-ready") == "1"
    assert "Uncaught" not in stderr and "ERR_NAME_NOT_RESOLVED" not in stderr, stderr[-2000:]


def test_dashboard_loads_offline_with_no_errors_and_charts_hold_their_points(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    configure(project, SONNET_BASELINE)
    write_checkpoint(project, checkpoint_data("01.4", title="Org Profile", phases={"P1": phase("done", "10:00", "10:05")}))
    page = dashboard(capsys, project, tmp_path / "dashboard.html")
    html = page.read_text()
    assert not re.search(r"<(script|link|img|iframe)[^>]+(src|href)=", html)  # everything inline
    assert "@import" not in html and "@font-face" not in html

    parsed, stderr = loaded(tmp_path, page)
    assert_clean(parsed, stderr)
    data = embedded(page)
    expected = {
        "chart-stories": (3, 2),  # 01.2, 01.3 and 01.4 (no usage: a gap, "no data")
        "chart-phases": (7, 7),  # P1 P2 P3 P5 P6 P7 and the orchestration; P4 had no usage
        "chart-time": (6, 6),
        "chart-runs": (1, 1),
    }
    for chart, (points, values) in expected.items():
        attrs = parsed.by_id[chart]
        assert (int(attrs["data-points"]), int(attrs["data-values"])) == (points, values), chart
    assert int(parsed.by_id["chart-stories"]["data-points"]) == len(data["stories"]["id"])
    assert int(parsed.by_id["chart-phases"]["data-points"]) == len(data["phases"]["name"])
    assert int(parsed.by_id["stories"]["data-rows"]) == 3
    assert data["stories"]["has_cost"] == [1, 1, 0] and data["stories"]["claude"][2] is None
    assert data["meta"]["verdict"] == "NEEDS_ATTENTION"

    shot = tmp_path / "dashboard.png"
    done = browse(tmp_path, page, f"--screenshot={shot}")
    assert done.returncode == 0 and "Uncaught" not in done.stderr
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert struct.unpack(">II", png[16:24]) == (1366, 900)


# Runs in the page after it has drawn: per chart, the tick labels uPlot drew on each axis, and the
# marks: plot-area pixels that are neither background nor grid (saturated, or darker than a grid
# line), with the leftmost and rightmost column holding one, so a bar cut by the edge shows.
INSPECT = """<script>
setTimeout(function () {
  (window.hybridCharts || []).forEach(function (pair) {
    var u = pair[0], el = pair[1], b = u.bbox;
    el.setAttribute("data-axis-labels", JSON.stringify(u.axes.map(function (axis) {
      return (axis._values || []).map(String).filter(function (text) { return text.trim() !== ""; });
    })));
    var pixels = u.ctx.getImageData(b.left, b.top, b.width, b.height).data, marks = 0, left = b.width, right = -1;
    for (var i = 0; i < pixels.length; i += 4) {
      var r = pixels[i], g = pixels[i + 1], bl = pixels[i + 2], a = pixels[i + 3];
      var spread = Math.max(r, g, bl) - Math.min(r, g, bl), dark = (r + g + bl) / 3 < 160;
      if (a > 200 && (spread > 60 || dark)) {
        var x = (i / 4) % b.width;
        marks++; left = Math.min(left, x); right = Math.max(right, x);
      }
    }
    el.setAttribute("data-marks", JSON.stringify({count: marks, left: left, right: right, width: b.width}));
    el.setAttribute("data-legend", JSON.stringify(Array.prototype.map.call(el.querySelectorAll(".u-legend th"), function (th) {
      return th.textContent + getComputedStyle(th, "::after").content.replace(/^none$|^normal$|^""$/, "");
    })));
  });
  document.body.setAttribute("data-inspected", "1");
}, 50);
</script>"""


def inspected_charts(tmp: Path, page: Path) -> dict[str, dict]:
    """Every chart as drawn in chromium: its axis labels and its marks."""
    probe = tmp / f"inspected-{page.name}"
    probe.write_text(page.read_text().replace("</body>", INSPECT + "</body>", 1))
    parsed, stderr = loaded(tmp, probe)
    assert_clean(parsed, stderr)
    assert parsed.tags["body"].get("data-inspected") == "1", stderr[-2000:]
    return {chart: {"axes": json.loads(parsed.by_id[chart]["data-axis-labels"]),
                    "marks": json.loads(parsed.by_id[chart]["data-marks"]),
                    "legend": json.loads(parsed.by_id[chart]["data-legend"])} for chart in CHARTS}


def assert_charts_readable(charts: dict[str, dict]) -> None:
    for chart, seen in charts.items():
        axes, marks = seen["axes"], seen["marks"]
        assert axes and all(axes), (chart, axes)  # every axis has labels
        for labels in axes[1:]:  # value axes: not one label repeated (both axes "0m")
            assert len(set(labels)) > 1, (chart, labels)
        assert marks["count"] > 200, (chart, marks)  # bars and lines, not an empty plot
        assert 0 < marks["left"] and marks["right"] < marks["width"] - 1, (chart, marks)  # nothing cut by the edge
        assert seen["legend"] and not any(":" in label for label in seen["legend"]), (chart, seen["legend"])


def test_every_chart_has_axis_labels_and_visible_marks(capsys, tmp_path):
    project = scripted_run(tmp_path / "project")
    configure(project, SONNET_BASELINE)
    charts = inspected_charts(tmp_path, dashboard(capsys, project, tmp_path / "dashboard.html"))
    assert_charts_readable(charts)
    assert charts["chart-stories"]["axes"][0] == ["01.2", "01.3"]


def test_a_one_run_project_with_short_phases_reads_in_seconds_and_its_run_is_drawn_whole(capsys, tmp_path):
    project = tmp_path / "project"
    write_checkpoint(project, checkpoint_data("01.2", phases={
        name: phase("done", f"10:00:{10 * k:02d}", f"10:00:{10 * k + 8:02d}") for k, name in enumerate(("P1", "P2", "P3"))
    }))
    ledger_path(project).parent.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(ledger_path(project))
    usage(ledger, "glm", "glm-4.7", "01.2", "P2", 12_000, out=3_000)
    usage(ledger, "anthropic", "claude-sonnet-5-5", "01.2", "P1", 20_000, out=2_000)
    charts = inspected_charts(tmp_path, dashboard(capsys, project, tmp_path / "dashboard.html"))
    assert_charts_readable(charts)
    assert all(label.endswith("s") for label in charts["chart-time"]["axes"][1]), charts["chart-time"]
    runs = charts["chart-runs"]["marks"]
    middle = (runs["left"] + runs["right"]) / 2
    assert abs(middle - runs["width"] / 2) < runs["width"] * 0.1, runs  # the one run sits in the middle, whole


def test_a_script_error_would_be_caught(tmp_path, capsys):
    """The checks above can fail: a page whose script throws says so."""
    project = scripted_run(tmp_path / "project")
    page = dashboard(capsys, project, tmp_path / "dashboard.html")
    broken = tmp_path / "broken.html"
    broken.write_text(page.read_text().replace('document.body.setAttribute("data-ready", "1");', "notAFunction();", 1))
    parsed, stderr = loaded(tmp_path, broken)
    assert parsed.tags["html"].get("data-errors") == "1" and "data-ready" not in parsed.tags["body"]
    assert "Uncaught" in stderr


def test_a_thousand_stories_draw(tmp_path):
    from tests.test_monitor import thousand_story_report
    from mcp_server.monitor import render_dashboard

    page = tmp_path / "big.html"
    page.write_text(render_dashboard(thousand_story_report(tmp_path)))
    parsed, stderr = loaded(tmp_path, page)
    assert_clean(parsed, stderr)
    assert parsed.by_id["chart-stories"]["data-points"] == "1000" and parsed.by_id["stories"]["data-rows"] == "1000"
    shot = tmp_path / "big.png"
    assert browse(tmp_path, page, f"--screenshot={shot}").returncode == 0 and shot.stat().st_size > 20_000


class TableCells(HTMLParser):
    """The text of each cell of one table (by id), row by row, header row included."""

    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows, self._cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table" and dict(attrs).get("id") == self.table_id:
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def test_the_model_scorecard_is_drawn_cell_for_cell(capsys, tmp_path):
    """The dashboard's model table, as chromium built it from the data: the rows and the very
    cells `hybrid report --models` prints (tests/test_scorecard.py works them out by hand)."""
    from tests.test_scorecard import scorecard_run

    project = scorecard_run(tmp_path / "project")
    page = dashboard(capsys, project, tmp_path / "dashboard.html")
    done = browse(tmp_path, page, "--dump-dom")
    assert done.returncode == 0, done.stderr[-2000:]
    parsed = Attributes()
    parsed.feed(done.stdout)
    assert_clean(parsed, done.stderr)
    assert parsed.by_id["models"]["data-rows"] == "6"
    table = TableCells("models")
    table.feed(done.stdout)
    header, *rows = table.rows
    assert header[:2] == ["model", "calls"] and header[6] == "tests passed at first attempt" and len(header) == 12
    by_model = {row[0]: row for row in rows}
    assert by_model["glm-4.7"] == ["glm-4.7", "8", "247,000", "65,000", "55,200", "$0.2378", "50% (2/4)", "3 (0.75 per call)",
                                   "2", "7.83/10 (3 rounds)", "33.3% (1/3)", "100% (5/5)"]
    assert by_model["glm-5.3"][6:] == ["50% (1/2)", "2 (1 per call)", "1", "6/10 (3 rounds)", "66.7% (2/3)", "75% (3/4)"]
    assert "No model is known to have done P3 of 01.5." in done.stdout
    shot = tmp_path / "models.png"
    assert browse(tmp_path, page, f"--screenshot={shot}", "--window-size=1366,3000").returncode == 0
