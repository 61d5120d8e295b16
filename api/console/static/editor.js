/* The pipeline graph editor: the draft document drawn with cytoscape.js as
   source -> transforms (in order) -> rules (in order) -> sink.
   Drag a transform or rule from the palette onto the graph to add it; drag transform or rule nodes
   left or right to reorder them (the order is read from their positions); select a node to edit
   its settings in a form built from its component's JSON schema. Saving posts the whole draft with
   the version it was based on; the server (the API) validates it and refuses a stale base. */
(function () {
  "use strict";
  if (typeof cytoscape === "undefined") { return; }
  drawVersions();
  var root = document.getElementById("pipeline-editor");
  if (!root) { return; }
  function json(id) { return JSON.parse(document.getElementById(id).textContent); }
  var draft = json("editor-draft");
  var components = json("editor-components"); // {transform: {kind: schema}, rule: {kind: schema}}
  var words = root.dataset;
  var selected = null; // {group: "transform"|"rule"|"source"|"sink", index}
  var STEP = 150;

  function items(group) { return group === "transform" ? draft.transforms : draft.rules; }
  function label(group, item) {
    return group === "rule" ? (item.id || item.kind) : item.kind;
  }

  function elements() {
    var nodes = [{ data: { id: "source", label: draft.source.kind, type: "source" }, position: { x: 0, y: 0 } }];
    var x = STEP, last = "source", edges = [];
    ["transform", "rule"].forEach(function (group) {
      items(group).forEach(function (item, i) {
        var id = group + ":" + i;
        nodes.push({ data: { id: id, label: label(group, item), type: group, group: group, index: i },
                     position: { x: x, y: group === "rule" ? 60 : 0 } });
        edges.push({ data: { id: "e" + edges.length, source: last, target: id } });
        last = id; x += STEP;
      });
    });
    nodes.push({ data: { id: "sink", label: draft.sink.kind, type: "sink" }, position: { x: x, y: 0 } });
    edges.push({ data: { id: "e" + edges.length, source: last, target: "sink" } });
    return nodes.concat(edges);
  }

  var COLOURS = { source: "#2f6f4f", transform: "#5b4a8a", rule: "#9a5b00", sink: "#1f4f7a" };
  var cy = cytoscape({
    container: document.getElementById("editor-graph"),
    elements: elements(),
    layout: { name: "preset" },
    style: [
      { selector: "node", style: { label: "data(label)", "text-valign": "bottom", "font-size": 12, color: "#222",
          "background-color": function (n) { return COLOURS[n.data("type")] || "#444"; } } },
      { selector: "node:selected", style: { "border-width": 4, "border-color": "#d33" } },
      { selector: "edge", style: { width: 2, "curve-style": "bezier", "target-arrow-shape": "triangle" } }
    ]
  });
  root.dataset.ready = "true";

  function redraw() {
    cy.elements().remove();
    cy.add(elements());
    cy.fit(undefined, 30);
    document.getElementById("editor-count").textContent = String(draft.transforms.length + draft.rules.length);
    document.getElementById("editor-document").value = JSON.stringify(draft);
    var at = {}; // where each node is drawn (for keyboard-free checks and tests of dragging)
    cy.nodes().forEach(function (n) { var p = n.renderedPosition(); at[n.id()] = [Math.round(p.x), Math.round(p.y)]; });
    root.dataset.positions = JSON.stringify(at);
    if (selected) {
      var node = cy.getElementById(selected.group === "source" || selected.group === "sink"
        ? selected.group : selected.group + ":" + selected.index);
      if (node.nonempty()) { node.select(); }
    }
  }

  // Reorder: after a drag, the transforms (and rules) take the order of their nodes from left to right.
  cy.on("dragfree", "node", function (evt) {
    var group = evt.target.data("group");
    if (!group) { redraw(); return; }
    var nodes = cy.nodes().filter(function (n) { return n.data("group") === group; }).toArray();
    nodes.sort(function (a, b) { return a.position("x") - b.position("x"); });
    var list = items(group);
    var order = nodes.map(function (n) { return n.data("index"); });
    var reordered = order.map(function (i) { return list[i]; });
    list.splice.apply(list, [0, list.length].concat(reordered));
    selected = { group: group, index: nodes.map(function (n) { return n.id(); }).indexOf(evt.target.id()) };
    if (order.some(function (i, at) { return i !== at; })) { root.dataset.dirty = "true"; }
    redraw();
  });

  cy.on("tap", "node", function (evt) {
    var d = evt.target.data();
    selected = d.group ? { group: d.group, index: d.index } : { group: d.type };
    showForm();
  });

  // Palette: HTML5 drag and drop onto the graph adds the component at the end of its group.
  document.querySelectorAll("[data-component]").forEach(function (el) {
    el.addEventListener("dragstart", function (e) {
      e.dataTransfer.effectAllowed = "copy";
      e.dataTransfer.setData("text/plain", el.dataset.group + " " + el.dataset.component);
    });
    el.addEventListener("keydown", function (e) { // keyboard: Enter adds it too
      if (e.key === "Enter") { add(el.dataset.group, el.dataset.component); }
    });
  });
  // Listened to while capturing: cytoscape's canvases inside the area would otherwise see them first.
  var area = document.getElementById("editor-graph");
  ["dragenter", "dragover"].forEach(function (type) {
    area.addEventListener(type, function (e) { e.preventDefault(); e.dataTransfer.dropEffect = "copy"; }, true);
  });
  area.addEventListener("drop", function (e) {
    e.preventDefault();
    e.stopPropagation();
    var parts = (e.dataTransfer.getData("text/plain") || "").split(" ");
    if (parts.length === 2 && components[parts[0]] && components[parts[0]][parts[1]]) { add(parts[0], parts[1]); }
  }, true);

  function defaults(schema) {
    var out = {};
    Object.keys(schema.properties || {}).forEach(function (key) {
      var p = schema.properties[key];
      if (key !== "kind" && p["default"] !== undefined && p["default"] !== null) { out[key] = p["default"]; }
    });
    return out;
  }

  function add(group, kind) {
    var item = Object.assign({ kind: kind }, defaults(components[group][kind]));
    if (group === "rule") { item.id = kind + "_" + (draft.rules.length + 1); }
    items(group).push(item);
    selected = { group: group, index: items(group).length - 1 };
    root.dataset.dirty = "true";
    redraw();
    showForm();
  }

  // The node form: one input per schema property (text, number, checkbox, choice); lists and
  // objects as JSON. Applying it replaces the node's settings in the draft.
  var form = document.getElementById("node-form");
  var fields = document.getElementById("node-fields");
  function typeOf(p) {
    if (p["enum"]) { return "enum"; }
    if (p.type) { return p.type; }
    var any = (p.anyOf || []).map(function (a) { return a.type; }).filter(function (t) { return t && t !== "null"; });
    return any.length === 1 ? any[0] : "json";
  }
  function field(key, p, value) {
    var id = "nf-" + key, wrap = document.createElement("div"), kind = typeOf(p), input;
    wrap.className = "field";
    var lab = document.createElement("label");
    lab.htmlFor = id; lab.textContent = key;
    if (kind === "enum") {
      input = document.createElement("select");
      p["enum"].forEach(function (v) { var o = document.createElement("option"); o.value = v; o.textContent = v; input.appendChild(o); });
      if (value !== undefined) { input.value = value; }
    } else if (kind === "boolean") {
      input = document.createElement("input"); input.type = "checkbox"; input.checked = value === true;
    } else if (kind === "string" || kind === "integer" || kind === "number") {
      input = document.createElement("input");
      if (kind !== "string") { input.inputMode = "decimal"; }
      input.value = value === undefined || value === null ? "" : String(value);
    } else {
      input = document.createElement("textarea"); input.rows = 3;
      input.value = value === undefined ? "" : JSON.stringify(value);
    }
    input.id = id; input.name = key; input.dataset.kind = kind;
    if (p.description) { input.title = p.description; }
    wrap.appendChild(lab); wrap.appendChild(input);
    return wrap;
  }
  function current() {
    if (selected.group === "source" || selected.group === "sink") { return draft[selected.group]; }
    return items(selected.group)[selected.index];
  }
  function showForm() {
    fields.innerHTML = "";
    document.getElementById("node-error").textContent = "";
    var item = current();
    // the group's name in the page's language (data-group-* of the page, from the catalogue)
    var group = words["group" + selected.group.charAt(0).toUpperCase() + selected.group.slice(1)] || selected.group;
    document.getElementById("node-title").textContent = group + ": " + (item.kind || "");
    if (selected.group === "source" || selected.group === "sink") {
      fields.appendChild(field("config", { type: "object" }, item.config || {}));
    } else {
      var schema = (components[selected.group] || {})[item.kind] || { properties: {} };
      Object.keys(schema.properties || {}).forEach(function (key) {
        if (key !== "kind") { fields.appendChild(field(key, schema.properties[key], item[key])); }
      });
    }
    document.getElementById("node-remove").hidden = !(selected.group === "transform" || selected.group === "rule");
    form.hidden = false;
    var first = fields.querySelector("input, select, textarea");
    if (first) { first.focus(); }
  }
  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var item = current(), next = {}, bad = null;
    fields.querySelectorAll("input, select, textarea").forEach(function (input) {
      var k = input.dataset.kind, v = input.value;
      if (k === "boolean") { next[input.name] = input.checked; return; }
      if (v === "") { return; }
      if (k === "integer" || k === "number") {
        if (isNaN(Number(v))) { bad = input.name; return; }
        next[input.name] = Number(v);
      } else if (k === "json" || k === "object" || k === "array") {
        try { next[input.name] = JSON.parse(v); } catch (err) { bad = input.name; }
      } else { next[input.name] = v; }
    });
    if (bad) { document.getElementById("node-error").textContent = words.invalid + " " + bad; return; }
    if (selected.group === "source" || selected.group === "sink") {
      item.config = next.config || {};
    } else {
      var kept = { kind: item.kind };
      items(selected.group)[selected.index] = Object.assign(kept, next);
    }
    root.dataset.dirty = "true";
    redraw();
  });
  document.getElementById("node-remove").addEventListener("click", function () {
    items(selected.group).splice(selected.index, 1);
    selected = null; form.hidden = true; root.dataset.dirty = "true";
    redraw();
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Delete" && selected && (selected.group === "transform" || selected.group === "rule")
        && document.activeElement === document.body) {
      document.getElementById("node-remove").click();
    }
  });
  redraw();

  // The versions page: the newer version's graph, each step marked added / changed (the removed
  // ones are in the list beside it, as they are not in this version).
  function drawVersions() {
    var el = document.getElementById("versions-graph");
    var src = document.getElementById("versions-graph-data");
    if (!el || !src) { return; }
    var data = JSON.parse(src.textContent);
    var MARKS = { added: "#1a7f37", changed: "#bf8700", removed: "#cf222e" };
    var cy = cytoscape({
      container: el,
      elements: data.nodes.map(function (n) {
        return { data: { id: n.id, label: n.label || n.id, mark: n.mark || "none" } };
      }).concat(data.edges.map(function (e, i) { return { data: { id: "e" + i, source: e.from, target: e.to } }; })),
      layout: { name: "breadthfirst", directed: true, spacingFactor: 1.4, roots: ["source"] },
      style: [
        { selector: "node", style: { label: "data(label)", "font-size": 11, "text-valign": "bottom", width: 24, height: 24,
            "background-color": "#8c959f" } },
        { selector: "node[mark != 'none']", style: { "border-width": 5,
            "border-color": function (n) { return MARKS[n.data("mark")] || "#444"; } } },
        { selector: "edge", style: { width: 1.5, "curve-style": "bezier", "target-arrow-shape": "triangle" } }
      ]
    });
    el.dataset.marked = String(cy.nodes("[mark != 'none']").length);
    el.dataset.ready = "true";
  }
})();
