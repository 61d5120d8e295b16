/* Huiliu console glue: feeds the vendored libraries (ECharts, cytoscape.js) with data the server
   renders or serves as JSON. No drawing code of its own; no inline scripts (the CSP forbids them). */
(function () {
  "use strict";
  var WINDOW_MS = 60 * 60 * 1000; // keep the last hour of samples

  function pollChart(el) {
    var chart = echarts.init(el, null, { renderer: "canvas" });
    var kind = el.dataset.kind;
    var every = parseInt(el.dataset.every || "5000", 10);
    var previous = null;
    var first = null; // the axis runs from the first sample (at most an hour back) to now
    var series = {}; // name -> [[time, value], ...]
    chart.setOption({ title: { text: el.dataset.empty, left: "center", top: "middle", textStyle: { fontSize: 14, color: "#555" } } });

    function rates(sample) {
      if (first === null) first = sample.ts * 1000;
      if (previous) {
        var dt = sample.ts - previous.ts;
        Object.keys(sample.stages).forEach(function (name) {
          if (!(name in previous.stages) || dt <= 0) return;
          var rate = Math.max(0, (sample.stages[name] - previous.stages[name]) / dt);
          (series[name] = series[name] || []).push([sample.ts * 1000, Math.round(rate * 100) / 100]);
        });
      }
      previous = sample;
      var cut = Date.now() - WINDOW_MS;
      var names = Object.keys(series);
      names.forEach(function (n) { series[n] = series[n].filter(function (p) { return p[0] >= cut; }); });
      if (!names.length) return;
      chart.setOption({
        title: { show: false },
        tooltip: { trigger: "axis" },
        legend: { type: "scroll", bottom: 0 },
        grid: { left: 50, right: 20, top: 20, bottom: 60 },
        xAxis: { type: "time", min: Math.max(first, cut), max: sample.ts * 1000 },
        yAxis: { type: "value", name: "/s" },
        series: names.map(function (n) {
          return { name: n, type: "line", showSymbol: series[n].length < 60, data: series[n] };
        })
      }, { replaceMerge: ["series"] });
    }

    function lag(sample) {
      var groups = Object.keys(sample.lag).sort();
      if (!groups.length) return;
      chart.setOption({
        title: { show: false },
        tooltip: { trigger: "axis" },
        grid: { left: 50, right: 20, top: 20, bottom: 80, containLabel: true },
        xAxis: { type: "category", data: groups, axisLabel: { rotate: 30 } },
        yAxis: { type: "value" },
        series: [{ type: "bar", data: groups.map(function (g) { return sample.lag[g]; }) }]
      });
    }

    function tick() {
      fetch(el.dataset.src, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) {
          if (r.status === 401 || r.redirected) { window.location.reload(); throw new Error("signed out"); }
          return r.json();
        })
        .then(function (sample) {
          if (sample.error) return;
          (kind === "lag" ? lag : rates)(sample);
          el.dataset.samples = String(parseInt(el.dataset.samples || "0", 10) + 1);
        })
        .catch(function () {});
    }
    tick();
    window.setInterval(tick, every);
    window.addEventListener("resize", function () { chart.resize(); });
  }

  var COLOURS = { source: "#1f6feb", topic: "#6e7781", transform: "#8250df", rule: "#bf3989", sink: "#1a7f37" };

  function drawGraph(el, data) {
    var elements = data.nodes.map(function (n) {
      var role = n.role ? " (" + n.role + ")" : "";
      return { data: { id: n.id, label: (n.label || n.id) + role, type: n.type } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.from, target: e.to, label: e.label || "" } };
    }));
    var cy = cytoscape({
      container: el,
      elements: elements,
      layout: { name: "breadthfirst", directed: true, spacingFactor: 1.5, roots: ["source"] },
      style: [
        { selector: "node", style: {
          "label": "data(label)", "color": "#1b1f24", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "text-wrap": "wrap", "text-max-width": 180, "width": 26, "height": 26,
          "background-color": function (n) { return COLOURS[n.data("type")] || "#444"; } } },
        { selector: "node[type = 'topic']", style: { "shape": "round-rectangle", "width": 34 } },
        { selector: "node[type = 'rule']", style: { "shape": "diamond" } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5, "line-color": "#8c959f",
          "target-arrow-color": "#8c959f", "label": "data(label)", "font-size": 9, "color": "#57606a" } }
      ]
    });
    el.dataset.nodes = String(cy.nodes().length);
    el.dataset.edges = String(cy.edges().length);
    if (el.dataset.counts) pollCounts(el, cy);
  }

  // Per-stage counts on the nodes while the pipeline runs (the label gains "· n").
  function pollCounts(el, cy) {
    cy.nodes().forEach(function (n) { n.data("base", n.data("label")); });
    function tick() {
      fetch(el.dataset.counts, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.json(); })
        .then(function (body) {
          if (!body.counts) return;
          cy.nodes().forEach(function (n) {
            var count = body.counts[n.id()];
            n.data("label", count === undefined ? n.data("base") : n.data("base") + " · " + count);
          });
          el.dataset.countsSeen = JSON.stringify(body.counts);
        })
        .catch(function () {});
    }
    tick();
    window.setInterval(tick, parseInt(el.dataset.every || "5000", 10));
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-src]").forEach(pollChart);
    var graph = document.getElementById("pipeline-graph");
    var data = document.getElementById("pipeline-graph-data");
    if (graph && data) drawGraph(graph, JSON.parse(data.textContent));
  });
})();
