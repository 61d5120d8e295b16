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

  // Catalogue: lineage (dataset or field level; sides of the root and the impact of changing it
  // coloured) and the data map. A node with a link opens it when tapped (or Enter on the list).
  var SIDES = { root: "#0550ae", up: "#6e7781", down: "#1a7f37" };
  var IMPACT = "#cf222e";
  var REPORTED = "#8250df";

  function heads(data) { // nodes nothing flows into: the left of a lineage graph
    var targets = {};
    data.edges.forEach(function (e) { targets[e.to] = true; });
    var ids = data.nodes.filter(function (n) { return !targets[n.id]; }).map(function (n) { return n.id; });
    return ids.length ? ids : undefined;
  }

  function drawCatalogGraph(el, data, kind) {
    var elements = data.nodes.map(function (n) {
      return { data: { id: n.id, label: n.label, side: n.side || "down", impacted: n.impacted ? "yes" : "no",
        href: n.href || (n.dataset ? "/console/catalog/dataset?urn=" + encodeURIComponent(n.dataset) : "") } };
    }).concat(data.edges.map(function (e, i) {
      return { data: { id: "e" + i, source: e.from, target: e.to, label: e.label || "",
        reported: e.reported ? "yes" : "no" } };
    }));
    var cy = cytoscape({
      container: el,
      elements: elements,
      wheelSensitivity: 0.3,
      maxZoom: 1.6,
      layout: kind === "lineage"
        ? { name: "breadthfirst", directed: true, spacingFactor: 1.2, roots: heads(data) }
        : { name: "cose", animate: false, nodeRepulsion: 8000, idealEdgeLength: 120 },
      style: [
        { selector: "node", style: {
          "label": "data(label)", "color": "#1b1f24", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "text-wrap": "wrap", "text-max-width": 200, "width": 24, "height": 24,
          "background-color": function (n) { return SIDES[n.data("side")] || "#444"; } } },
        { selector: "node[side = 'root']", style: { "width": 34, "height": 34, "shape": "round-rectangle" } },
        { selector: "node[impacted = 'yes']", style: { "border-width": 4, "border-color": IMPACT } },
        { selector: "edge", style: {
          "curve-style": "bezier", "target-arrow-shape": "triangle", "width": 1.5, "line-color": "#8c959f",
          "target-arrow-color": "#8c959f", "label": "data(label)", "font-size": 9, "color": "#57606a" } },
        { selector: "edge.impact", style: { "line-color": IMPACT, "target-arrow-color": IMPACT, "width": 2.5 } },
        // lineage reported from outside (POST /lineage/edges, OpenLineage): dashed, violet
        { selector: "edge[reported = 'yes']", style: { "line-style": "dashed", "line-color": REPORTED,
          "target-arrow-color": REPORTED } }
      ]
    });
    cy.edges().forEach(function (e) {
      if (e.target().data("impacted") === "yes") e.addClass("impact");
    });
    cy.on("tap", "node", function (evt) {
      var href = evt.target.data("href");
      if (href) window.location.href = href;
    });
    el.dataset.nodes = String(cy.nodes().length);
    el.dataset.edges = String(cy.edges().length);
    el.dataset.impacted = String(cy.nodes("[impacted = 'yes']").length);
    el.dataset.reported = String(cy.edges("[reported = 'yes']").length);
    el.dataset.ready = "true";
  }

  // A bar (or, with data-type="line", line) chart of numbers the server rendered into the page
  // (asset totals per system, a data service's calls and latency per period).
  function staticChart(el) {
    var data = JSON.parse(document.getElementById(el.dataset.from).textContent);
    var names = JSON.parse(el.dataset.names || "{}");
    var chart = echarts.init(el, null, { renderer: "canvas" });
    chart.setOption({
      tooltip: { trigger: "axis" },
      legend: { bottom: 0 },
      grid: { left: 50, right: 20, top: 20, bottom: 70, containLabel: true },
      xAxis: { type: "category", data: data.categories, axisLabel: { rotate: 20 } },
      yAxis: { type: "value" },
      series: Object.keys(data.series).map(function (k) {
        return { name: names[k] || k, type: el.dataset.type === "line" ? "line" : "bar", data: data.series[k] };
      })
    });
    el.dataset.series = String(Object.keys(data.series).length);
    el.dataset.categories = String(data.categories.length);
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".chart[data-src]").forEach(pollChart);
    document.querySelectorAll(".chart[data-from]").forEach(staticChart);
    ["lineage", "map"].forEach(function (kind) {
      var el = document.getElementById(kind + "-graph");
      var src = document.getElementById(kind + "-graph-data");
      if (el && src) drawCatalogGraph(el, JSON.parse(src.textContent), kind);
    });
    var graph = document.getElementById("pipeline-graph");
    var data = document.getElementById("pipeline-graph-data");
    if (graph && data) drawGraph(graph, JSON.parse(data.textContent));
  });
})();
