// Draws the report's charts with uPlot from the JSON in #report-data.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = 0;
  var C = {
    p50: "#0969da", p90: "#1a7f37", p99: "#bf8700", max: "#cf222e",
    grey: "#8c959f", green: "#1a7f37", red: "#cf222e", orange: "#bf8700",
    purple: "#8250df", blue: "#0969da", brown: "#953800",
  };
  var PALETTE = ["#0969da", "#1a7f37", "#bf8700", "#cf222e", "#8250df", "#57606a", "#953800", "#1b7c83"];

  function fmtMs(v) {
    if (v == null) return "-";
    if (v >= 10000) return (v / 1000).toFixed(1) + "s";
    if (v >= 1000) return (v / 1000).toFixed(2) + "s";
    if (v >= 10) return v.toFixed(0) + "ms";
    return v.toFixed(1) + "ms";
  }
  function fmtNum(v) {
    if (v == null) return "-";
    return Math.abs(v - Math.round(v)) < 1e-9 ? String(Math.round(v)) : v.toFixed(1);
  }
  function secs(u, v) { return v == null ? "-" : v + "s"; }
  // On a log axis, labels at the decades only (uPlot also places ticks between them).
  function decade(v) { var l = Math.log10(v); return Math.abs(l - Math.round(l)) < 1e-6; }
  function decades(fmt) { return function (u, s) { return s.map(function (v) { return decade(v) ? fmt(v) : ""; }); }; }

  // Shades the run's phases (grey) and fault windows (red) behind the series, labelled.
  function bands() {
    function span(u, s, fill, stroke, label, row) {
      var x0 = u.valToPos(s.from_s, "x", true);
      var x1 = u.valToPos(s.to_s, "x", true);
      var left = u.bbox.left, right = u.bbox.left + u.bbox.width;
      x0 = Math.max(left, Math.min(right, x0));
      x1 = Math.max(left, Math.min(right, x1));
      if (x1 <= x0) return;
      var ctx = u.ctx;
      ctx.fillStyle = fill;
      ctx.fillRect(x0, u.bbox.top, x1 - x0, u.bbox.height);
      if (stroke) {
        ctx.strokeStyle = stroke;
        ctx.lineWidth = 1.5 * uPlot.pxRatio;
        ctx.setLineDash([5 * uPlot.pxRatio, 3 * uPlot.pxRatio]);
        ctx.beginPath();
        ctx.moveTo(x0, u.bbox.top); ctx.lineTo(x0, u.bbox.top + u.bbox.height);
        ctx.moveTo(x1, u.bbox.top); ctx.lineTo(x1, u.bbox.top + u.bbox.height);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      if (label) {
        ctx.font = (row === 0 ? "" : "bold ") + Math.round(12 * uPlot.pxRatio) + "px system-ui, sans-serif";
        ctx.fillStyle = stroke || "#57606a";
        ctx.textBaseline = "top";
        ctx.fillText(label, x0 + 4 * uPlot.pxRatio, u.bbox.top + (4 + row * 16) * uPlot.pxRatio, Math.max(x1 - x0 - 6, 40));
      }
    }
    return {
      hooks: {
        drawClear: [function (u) {
          u.ctx.save();
          (D.phases || []).forEach(function (p, i) {
            span(u, p, i % 2 ? "rgba(140,149,159,0.07)" : "rgba(140,149,159,0.16)", null, null, 0);
          });
          (D.faults || []).forEach(function (f) { span(u, f, "rgba(207,34,46,0.13)", null, null, 1); });
          u.ctx.restore();
        }],
        draw: [function (u) {
          u.ctx.save();
          (D.phases || []).forEach(function (p) { span(u, p, "rgba(0,0,0,0)", null, p.label, 0); });
          (D.faults || []).forEach(function (f) {
            span(u, f, "rgba(0,0,0,0)", "#cf222e", "fault: " + f.label + " (" + f.from_s.toFixed(0) + "s–" + f.to_s.toFixed(0) + "s)", 1);
          });
          u.ctx.restore();
        }],
      },
    };
  }

  function chart(id, opts, data) {
    var el = document.getElementById(id);
    if (!el) return;
    opts.width = Math.max(300, el.clientWidth - 4);
    opts.height = opts.height || 260;
    opts.legend = opts.legend || { live: true };
    opts.cursor = opts.cursor || { drag: { x: true, y: false } };
    new uPlot(opts, data, el);
    drawn++;
  }

  function timeAxes(yLabel, yValues) {
    return [
      { label: "seconds since arrivals started", labelSize: 18, values: function (u, s) { return s.map(function (v) { return v + "s"; }); } },
      { label: yLabel, labelSize: 18, size: 64, values: yValues || function (u, s) { return s.map(fmtNum); } },
    ];
  }
  function line(label, color, width, extra) {
    var s = { label: label, stroke: color, width: width || 2, value: function (u, v) { return fmtNum(v); }, spanGaps: false };
    for (var k in extra || {}) s[k] = extra[k];
    return s;
  }
  var x = { label: "t", value: secs };
  var T = D.t;
  var endX = Math.max(D.end_s || 0, T.length ? T[T.length - 1] + 1 : 1);
  var xScale = { time: false, range: function () { return [0, endX]; } };

  if (T.length) {
    // Latency: log scale, so p50 through max stay apart; max is thin and dashed so p99 shows.
    var ms = function (u, v) { return fmtMs(v); };
    chart("chart-latency", {
      height: 340,
      scales: { x: xScale, y: { distr: 3, log: 10 } },
      axes: timeAxes("pairing latency", decades(fmtMs)),
      series: [x,
        line("p50", C.p50, 2.5, { value: ms }),
        line("p90", C.p90, 2, { value: ms }),
        line("p99", C.p99, 2.5, { value: ms }),
        line("max", C.max, 1, { value: ms, dash: [6, 4] })],
      plugins: [bands()],
    }, [T, D.latency.p50, D.latency.p90, D.latency.p99, D.latency.max]);

    // Throughput: arrivals as a grey area behind, matched as a bold line on top.
    var th = D.throughput;
    chart("chart-throughput", {
      scales: { x: xScale, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: timeAxes("players / s"),
      series: [x,
        line("arrived", C.grey, 1, { fill: "rgba(140,149,159,0.28)" }),
        line("matched", C.green, 2.5),
        line("timed out", C.red, 2),
        line("searching (gauge)", C.purple, 1, { dash: [4, 3], show: false })],
      plugins: [bands()],
    }, [T, th.arrived_players, th.matched, th.timed_out, th.searching]);

    var cl = D.claims;
    chart("chart-claims", {
      scales: { x: xScale, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: timeAxes("claims / s"),
      series: [x,
        line("succeeded", C.green, 2),
        line("unreachable", C.red, 2),
        line("not ready", C.orange, 1.5),
        line("conflict", C.purple, 1.5),
        line("not found", C.brown, 1.5)],
      plugins: [bands()],
    }, [T, cl.succeeded, cl.unreachable, cl.not_ready, cl.conflict, cl.not_found]);

    chart("chart-errors", {
      scales: { x: xScale, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: timeAxes("players / s"),
      series: [x,
        line("timed out", C.red, 2),
        line("failed", C.orange, 2),
        line("errors", C.purple, 2),
        line("cancelled", C.grey, 1.5)],
      plugins: [bands()],
    }, [T, th.timed_out, th.failed, th.errors, th.cancelled]);

    var limit = T.map(function () { return 50; });
    chart("chart-generator", {
      scales: { x: xScale, y: { range: function (u, min, max) { return [0, Math.max(60, max * 1.1)]; } } },
      axes: timeAxes("start lag", function (u, s) { return s.map(fmtMs); }),
      series: [x,
        line("worst start lag", C.blue, 2, { value: ms }),
        line("saturation limit", C.red, 1, { value: ms, dash: [6, 4] }),
        line("late starts", C.orange, 1.5, { scale: "n" })],
      plugins: [bands()],
    }, [T, D.generator.max_lag_ms, limit, D.generator.lagged_starts]);
  }

  if (D.curve.x.length) {
    chart("chart-curve", {
      scales: { x: { time: false, distr: 3, log: 10 }, y: { distr: 3, log: 10 } },
      axes: [
        { label: "percentile", labelSize: 18, values: decades(function (v) { var p = 100 * (1 - 1 / v); return (p >= 99.9 ? p.toFixed(3) : p >= 99 ? p.toFixed(1) : p.toFixed(0)) + "%"; }) },
        { label: "pairing latency", labelSize: 18, size: 64, values: decades(fmtMs) },
      ],
      series: [
        { label: "percentile", value: function (u, v) { return v == null ? "-" : (100 * (1 - 1 / v)).toFixed(3) + "%"; } },
        line("latency", C.blue, 2.5, { value: function (u, v) { return fmtMs(v); } }),
      ],
    }, [D.curve.x, D.curve.y]);
    chart("chart-histogram", {
      scales: { x: { time: false, distr: 3, log: 10 }, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [
        { label: "pairing latency (bucket upper bound)", labelSize: 18, values: decades(fmtMs) },
        { label: "players", labelSize: 18, size: 64 },
      ],
      series: [
        { label: "up to", value: function (u, v) { return fmtMs(v); } },
        line("players", C.blue, 1.5, { fill: "rgba(9,105,218,0.25)", paths: uPlot.paths.stepped({ align: 1 }) }),
      ],
    }, [D.histogram.x, D.histogram.y]);
  }

  if (D.processes.length) {
    var tables = D.processes.map(function (p) { return [p.t, p.cpu]; });
    var rss = D.processes.map(function (p) { return [p.t, p.rss_mib]; });
    var series = function (unit) {
      return [{ label: "t", value: secs }].concat(D.processes.map(function (p, i) {
        return line(p.role, PALETTE[i % PALETTE.length], 1.5, { spanGaps: true, value: function (u, v) { return v == null ? "-" : v.toFixed(unit === "%" ? 0 : 1) + unit; } });
      }));
    };
    var procX = { time: false };
    chart("chart-cpu", { scales: { x: procX, y: { range: function (u, min, max) { return [0, Math.max(10, max * 1.1)]; } } },
      axes: [{ label: "seconds", labelSize: 18 }, { label: "% of a core", labelSize: 18, size: 60 }],
      series: series("%") }, uPlot.join(tables));
    chart("chart-rss", { scales: { x: procX, y: { range: function (u, min, max) { return [0, Math.max(1, max * 1.1)]; } } },
      axes: [{ label: "seconds", labelSize: 18 }, { label: "MiB", labelSize: 18, size: 60 }],
      series: series(" MiB") }, uPlot.join(rss));
  }

  document.documentElement.setAttribute("data-charts", String(drawn));
})();
