// Draws a comparison's charts with uPlot from the JSON in #report-data.
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = 0;
  function fmtMs(v) {
    if (v == null) return "-";
    if (v >= 10000) return (v / 1000).toFixed(1) + "s";
    if (v >= 1000) return (v / 1000).toFixed(2) + "s";
    if (v >= 10) return v.toFixed(0) + "ms";
    return v.toFixed(1) + "ms";
  }
  function chart(id, opts, data) {
    var el = document.getElementById(id);
    if (!el) return;
    opts.width = Math.max(300, el.clientWidth - 4);
    opts.height = 280;
    new uPlot(opts, data, el);
    drawn++;
  }
  var ms = function (u, v) { return fmtMs(v); };
  function decade(v) { var l = Math.log10(v); return Math.abs(l - Math.round(l)) < 1e-6; }
  function decades(fmt) { return function (u, s) { return s.map(function (v) { return decade(v) ? fmt(v) : ""; }); }; }
  var yMs = { label: "pairing latency", labelSize: 18, size: 64, values: decades(fmtMs) };
  if (D.base.t.length || D.new.t.length) {
    chart("chart-p99", {
      scales: { x: { time: false }, y: { distr: 3, log: 10 } },
      axes: [{ label: "seconds since arrivals started", labelSize: 18 }, yMs],
      series: [{ label: "t" },
        { label: "base p99", stroke: "#8c959f", width: 2, value: ms },
        { label: "new p99", stroke: "#cf222e", width: 2.5, value: ms }],
    }, uPlot.join([[D.base.t, D.base.latency.p99], [D.new.t, D.new.latency.p99]]));
  }
  if (D.base.curve.x.length || D.new.curve.x.length) {
    chart("chart-curve", {
      scales: { x: { time: false, distr: 3, log: 10 }, y: { distr: 3, log: 10 } },
      axes: [{ label: "percentile", labelSize: 18, values: decades(function (v) { var p = 100 * (1 - 1 / v); return (p >= 99.9 ? p.toFixed(3) : p >= 99 ? p.toFixed(1) : p.toFixed(0)) + "%"; }) }, yMs],
      series: [{ label: "percentile", value: function (u, v) { return v == null ? "-" : (100 * (1 - 1 / v)).toFixed(3) + "%"; } },
        { label: "base", stroke: "#8c959f", width: 2, value: ms, spanGaps: true },
        { label: "new", stroke: "#cf222e", width: 2.5, value: ms, spanGaps: true }],
    }, uPlot.join([[D.base.curve.x, D.base.curve.y], [D.new.curve.x, D.new.curve.y]]));
  }
  document.documentElement.setAttribute("data-charts", String(drawn));
})();
