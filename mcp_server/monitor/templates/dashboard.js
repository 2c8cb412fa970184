(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("hybrid-data").textContent);
  var NO = "no data";
  var COLORS = { claude: "#c96442", glm: "#2f6fdb", base: "#555b66", time: "#7a5cc2" };
  var charts = [];

  function esc(text) {
    return String(text).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function isNum(v) { return typeof v === "number" && isFinite(v); }
  // digits fixed for axis ticks; else as money_text in monitor/money.py: cents from $1 up, three
  // significant digits below (the report's cards and tables come ready-made from Python)
  function usd(v, digits) {
    if (!isNum(v)) return NO;
    var a = Math.abs(v);
    if (digits === undefined) digits = a >= 1 || a === 0 ? 2 : Math.min(6, Math.max(2, 2 - Math.floor(Math.log10(a))));
    var parts = a.toFixed(digits).split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (v < 0 ? "-$" : "$") + parts.join(".");
  }
  function pct(v) {
    if (!isNum(v)) return NO;
    return (Math.round(v * 10) / 10) + "%";
  }
  function dur(s) {
    if (!isNum(s)) return NO;
    s = Math.round(s);
    var h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
    if (h) return h + "h " + (m < 10 ? "0" : "") + m + "m";
    if (m) return m + "m " + (r < 10 ? "0" : "") + r + "s";
    return r + "s";
  }
  function sum(a, b) { return isNum(a) || isNum(b) ? (a || 0) + (b || 0) : null; }
  // axis ticks: seconds while they are under two minutes, so short phases never all read "0m"
  function durShort(s) {
    if (!isNum(s)) return "";
    if (s < 120) return Math.round(s) + "s";
    if (s < 3600) return (Math.round(s / 6) / 10) + "m";
    return (Math.round(s / 360) / 10) + "h";
  }

  // --- headline ---------------------------------------------------------------------------------
  var meta = D.meta, h = D.headline;
  document.getElementById("meta").textContent =
    meta.stories + " stories · generated " + meta.generated_at + " · " + meta.project +
    (meta.since || meta.until ? " · ledger from " + (meta.since || "the start") + " to " + (meta.until || "now") : "");
  if (meta.note) document.getElementById("note").textContent = meta.note;
  var verdict = document.getElementById("verdict");
  verdict.className = "verdict " + meta.verdict;
  verdict.textContent = { APPROVED: "✓ ", NEEDS_ATTENTION: "⚠ ", REJECTED: "✗ " }[meta.verdict] + meta.verdict_text;
  // money and percents come as the Markdown report writes them (h.text), so both agree to the digit
  var ht = h.text || {};
  // the primary baseline's figure is the card's value; the line under it names it and gives the others
  function baselinesLine(at) {
    var all = ht.baselines || [];
    if (!all.length) return "";
    return all.map(function (b, k) {
      var shown = at === 3 ? b[3] : "";
      if (k === 0) return (at === 3 ? shown + " " : "") + "vs " + b[0] + " (primary)" + (at === 1 ? " ¹" : "");
      return (at === 3 ? b[2] + " (" + shown + ")" : b[1]) + " vs " + b[0];
    }).join(" · ");
  }
  var cards = [
    ["Total cost", (h.lower_bound ? "≥ " : "") + (ht.total || NO), "Claude " + (h.lower_bound ? "≥ " : "") + (ht.claude || NO) + " + GLM " + (ht.glm || NO) + (h.lower_bound ? " (a lower bound: see the warnings)" : "")],
    ["vs Claude-only", ht.baseline || NO, baselinesLine(1) || "the same work, Claude only ¹"],
    ["Savings", ht.savings || NO, baselinesLine(3) || ht.savings_pct || NO],
    ["Claude tokens avoided", ht.avoided_total || NO, ht.avoided_total ? ht.avoided : ""],
    ["AC pass rate", isNum(h.ac) ? ht.ac : NO, h.ac_detail || NO],
    ["Test coverage", isNum(h.coverage) ? ht.coverage + " avg" : NO, h.coverage_detail || ""],
    ["Code quality", isNum(h.quality) ? h.quality + "/10 avg" : NO, h.quality_detail || ""],
    ["Time", isNum(h.wall) ? dur(h.wall) : NO, isNum(h.wall) ? "wall-clock; Σ stories " + dur(h.story_sum) + (isNum(h.speedup) ? ", speed-up " + h.speedup + "×" : "") : ""]
  ];
  document.getElementById("cards").innerHTML = cards.map(function (c) {
    return '<div class="card"><div class="k">' + esc(c[0]) + '</div><div class="v">' + esc(c[1]) +
      '</div><div class="s">' + esc(c[2]) + "</div></div>";
  }).join("");
  document.getElementById("checks").innerHTML = D.checks.map(function (c) {
    return '<li class="' + esc(c[0]) + '">' + esc(c[1]) + "</li>";
  }).join("");
  document.getElementById("warnings").innerHTML = D.warnings.length
    ? D.warnings.map(function (w) { return "<li>" + esc(w) + "</li>"; }).join("")
    : "<li>None.</li>";
  document.getElementById("footnote").textContent = D.footnote;

  // --- charts -----------------------------------------------------------------------------------
  var bars = uPlot.paths.bars;

  function categoryAxis(labels) {
    var longest = labels.reduce(function (n, label) { return Math.max(n, String(label).length); }, 0);
    return {
      space: Math.max(36, 12 + 7 * longest),
      incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000],
      values: function (u, splits) {
        return splits.map(function (i) { return Number.isInteger(i) && labels[i] !== undefined ? labels[i] : ""; });
      }
    };
  }
  // legend values: blank while the cursor is off the chart, "no data" for a missing value
  function money(u, v, si, i) { return i === null || i === undefined ? "" : isNum(v) ? usd(v) : NO; }
  function upFromZero(u, min, max) { return [Math.min(0, min || 0), (max > 0 ? max : 1) * 1.08]; }

  // as many decimals as the tick step needs: $0.025, not a rounded $0.03
  function moneyTicks(u, ticks) {
    var step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : Math.abs(ticks[0] || 1);
    var digits = 2;
    while (digits < 6 && Math.abs(Math.round(step * Math.pow(10, digits)) - step * Math.pow(10, digits)) > 1e-6) digits++;
    return ticks.map(function (t) { return usd(t, digits); });
  }

  function chart(id, labels, series, data, extra, xLabel) {
    var el = document.getElementById(id);
    var points = labels.length;
    if (!points) {
      el.className += " empty";
      el.textContent = NO;
      el.setAttribute("data-points", "0");
      return;
    }
    var x = labels.map(function (_, i) { return i; });
    var opts = {
      width: Math.max(320, el.clientWidth || 600),
      height: 270,
      // half a category of room on each side, also when zoomed in (drag; double-click resets). With
      // one category uPlot asks for 0..100, which drew a lone bar at the left edge, half cut.
      scales: { x: { time: false, range: function (u, min, max) {
        min = Math.max(isNum(min) ? min : 0, 0);
        max = Math.min(isNum(max) ? max : points - 1, points - 1);
        return max > min ? [min - 0.6, max + 0.6] : [min - 0.6, min + 0.6];
      } }, y: { range: upFromZero } },
      axes: [categoryAxis(labels), { values: moneyTicks, size: 70 }],
      series: [{ label: xLabel || "", value: function (u, v) { return isNum(v) ? labels[v] : ""; } }].concat(series),
      legend: { live: true },
      cursor: { drag: { x: true, y: false } }
    };
    if (extra) extra(opts);
    var u = new uPlot(opts, [x].concat(data), el);
    el.setAttribute("data-points", String(points));
    el.setAttribute("data-values", String(data[0].filter(isNum).length));
    charts.push([u, el]);
  }

  function stacked(claude, glm, base, glmLabel) {
    var total = claude.map(function (c, i) { return sum(c, glm[i]); });
    return {
      series: [
        { label: glmLabel, fill: COLORS.glm, stroke: COLORS.glm, paths: bars({ size: [0.7, 48] }), points: { show: false },
          value: function (u, v, si, i) { return money(u, i === null || i === undefined ? null : glm[i], si, i); } },
        { label: "Claude", fill: COLORS.claude, stroke: COLORS.claude, paths: bars({ size: [0.7, 48] }), points: { show: false }, value: money },
        { label: "Claude-only", stroke: COLORS.base, width: 2, dash: [6, 4], value: money, points: { size: 5 } }
      ],
      data: [total, claude, base]
    };
  }

  var S = D.stories;
  var st = stacked(S.claude, S.glm, S.base, "GLM");
  chart("chart-stories", S.id, st.series, st.data, null, "story");

  var P = D.phases;
  var ph = stacked(P.claude, P.glm, P.base, "GLM");
  chart("chart-phases", P.name, ph.series, ph.data, null, "phase");

  var T = D.time;
  chart("chart-time", T.name, [
    { label: "mean per story", fill: COLORS.time, stroke: COLORS.time, paths: bars({ size: [0.6, 48] }), points: { show: false }, value: timeValue },
    { label: "all stories (right axis)", stroke: COLORS.base, width: 2, scale: "total", value: timeValue, points: { size: 5 } }
  ], [T.mean, T.total], function (opts) {
    opts.scales.total = { range: upFromZero };
    var steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 432000, 864000];
    opts.axes[1] = { incrs: steps, values: function (u, ticks) { return ticks.map(durShort); }, size: 56 };
    opts.axes.push({ scale: "total", side: 1, grid: { show: false }, incrs: steps, values: function (u, ticks) { return ticks.map(durShort); }, size: 56 });
  }, "phase");

  var R = D.runs;
  chart("chart-runs", R.label, [
    { label: "cost per story", fill: "rgba(47,111,219,.35)", stroke: COLORS.glm, paths: bars({ size: [0.5, 64] }), points: { show: false }, value: money },
    { label: "savings (right axis)", stroke: COLORS.claude, width: 2, scale: "pct", value: function (u, v, si, i) { return i === null || i === undefined ? "" : pct(v); }, points: { size: 6 } }
  ], [R.per_story, R.savings], function (opts) {
    opts.scales.pct = { range: function (u, min, max) { return [Math.min(0, min || 0) - 5, Math.max(0, max || 0) + 5]; } };
    opts.axes.push({ scale: "pct", side: 1, grid: { show: false }, values: function (u, ticks) { return ticks.map(function (t) { return t + "%"; }); }, size: 56 });
  }, "run");

  // --- the story table ----------------------------------------------------------------------------
  function cell(text, cls) { return "<td" + (cls ? ' class="' + cls + '"' : "") + ">" + esc(text) + "</td>"; }
  function timeValue(u, v, si, i) { return i === null || i === undefined ? "" : dur(v); }
  function value(v, shown, low) { return isNum(v) ? cell(shown, low ? "low" : "") : cell(NO, "nd"); }
  var th = D.thresholds, rows = [];
  for (var i = 0; i < S.id.length; i++) {
    rows.push("<tr>" + cell(S.id[i]) + cell(S.title[i] || "") +
      (isNum(S.ac[i]) ? cell(S.ac_pct_text[i] + " (" + S.ac_text[i] + ")", S.ac[i] < th.ac_pass_rate ? "low" : "") : cell(NO, "nd")) +
      value(S.cov[i], S.cov_text[i] + (S.cov_checkpoint[i] ? " (checkpoint)" : ""), S.cov[i] < th.coverage) +
      value(S.q[i], S.q[i] + "/10", S.q[i] < th.quality) +
      value(S.rounds[i], String(S.rounds[i]), false) +
      value(S.secs[i], dur(S.secs[i]), false) +
      (S.has_cost[i] ? cell(S.cost_text[i]) + cell(S.base_text[i]) + cell(S.savings_text[i]) + cell(S.avoided_text[i]) : cell(NO, "nd") + cell(NO, "nd") + cell(NO, "nd") + cell(NO, "nd")) +
      cell(S.next[i] || "") + "</tr>");
  }
  var table = document.getElementById("stories");
  table.tBodies[0].innerHTML = rows.join("");
  table.setAttribute("data-rows", String(S.id.length));
  var shown = document.getElementById("shown");
  shown.textContent = S.id.length + " stories";
  document.getElementById("filter").addEventListener("input", function (event) {
    var needle = event.target.value.toLowerCase(), count = 0;
    Array.prototype.forEach.call(table.tBodies[0].rows, function (row, k) {
      var hit = !needle || (S.id[k] + " " + (S.title[k] || "")).toLowerCase().indexOf(needle) >= 0;
      row.style.display = hit ? "" : "none";
      count += hit ? 1 : 0;
    });
    shown.textContent = count + " of " + S.id.length + " stories";
  });

  // --- the model scorecard: cells as `hybrid report --models` writes them -----------------------
  var M = D.models || { columns: [], rows: [], no_writer: [] };
  var models = document.getElementById("models");
  var head = models.tHead.insertRow();
  M.columns.forEach(function (c) { var th = document.createElement("th"); th.textContent = c; head.appendChild(th); });
  M.rows.forEach(function (r) {
    var row = models.tBodies[0].insertRow();
    r.forEach(function (c) { var td = row.insertCell(); td.textContent = c; if (c === NO) td.className = "nd"; });
  });
  if (!M.rows.length) {
    var none = models.tBodies[0].insertRow().insertCell();
    none.colSpan = Math.max(1, M.columns.length);
    none.className = "nd";
    none.textContent = NO;
  }
  models.setAttribute("data-rows", String(M.rows.length));
  document.getElementById("models-note").textContent =
    "First attempt and fix rounds: implement/refactor calls that ran their tests. Review score, REQUEST_CHANGES and AC pass: " +
    "the stories each model wrote (did P3 of), every review round counted once." +
    (M.no_writer.length ? " No model is known to have done P3 of " + M.no_writer.join(", ") + "." : "");

  window.addEventListener("resize", function () {
    charts.forEach(function (pair) { pair[0].setSize({ width: Math.max(320, pair[1].clientWidth), height: 270 }); });
  });
  window.hybridCharts = charts;  // [uPlot, element] pairs, for whoever inspects the drawn page
  document.body.setAttribute("data-ready", "1");
  document.documentElement.setAttribute("data-errors", String(window.__hybridErrors.length));
})();
