// The graph page: draws #graph-data with vis-network; clicking a node (on the canvas or in the
// #graph-nodes list) shows its details and only it with its neighbours; #graph-reset shows all.
// #graph-visible always lists the ids drawn, so the state can be read without the canvas.
"use strict";

(function () {
  const dataEl = document.getElementById("graph-data");
  if (!dataEl) return;
  let data;
  try {
    data = JSON.parse(dataEl.textContent);
  } catch (e) {
    window.Racetrack && window.Racetrack.alert("Error: graph data unreadable: " + e.message, false);
    return;
  }
  const nodes = data.nodes || [];
  const edges = data.edges || [];
  const neighbours = data.neighbours || {};
  const byId = new Map(nodes.map(function (n) { return [n.id, n]; }));

  // Shape and colour per kind, so kinds are told apart at a glance (and without colour).
  const STYLES = {
    user: { shape: "triangle", color: "#FFA807" },
    esc: { shape: "box", color: "#97C2FC" },
    family: { shape: "ellipse", color: "#7BE141" },
    fatman: { shape: "diamond", color: "#FB7E81" },
  };

  let visible = new Set(nodes.map(function (n) { return n.id; }));
  const container = document.getElementById("graph");
  const details = document.getElementById("graph-details");
  const visibleEl = document.getElementById("graph-visible");
  let network = null;
  let visNodes = null;

  function tooltip(n) {
    const lines = [n.kind + ": " + n.label];
    Object.keys(n.details || {}).forEach(function (k) { lines.push(k + ": " + n.details[k]); });
    return lines.join("\n");
  }

  if (window.vis && container) {
    visNodes = new window.vis.DataSet(nodes.map(function (n) {
      const style = STYLES[n.kind] || { shape: "dot", color: "#C2FABC" };
      return {
        id: n.id,
        label: n.label,
        title: tooltip(n),
        shape: style.shape,
        color: style.color,
        borderWidth: 2,
        shadow: true,
      };
    }));
    const visEdges = new window.vis.DataSet(edges.map(function (e, i) {
      return {
        id: "e" + i,
        from: e.from,
        to: e.to,
        title: e.kind === "calls" ? "has access to" : e.kind,
        arrows: "to",
        dashes: e.kind !== "calls",
        color: { inherit: "both" },
        smooth: { type: "cubicBezier" },
      };
    }));
    network = new window.vis.Network(container, { nodes: visNodes, edges: visEdges }, {
      physics: { enabled: true },
      interaction: { hover: true, multiselect: true },
    });
    network.on("click", function (params) {
      if (params.nodes.length === 1) {
        select(params.nodes[0]);
      } else if (params.nodes.length > 1) {
        show(new Set(params.nodes));
        clearDetails();
      } else {
        reset();
      }
    });
    const physics = document.getElementById("graph-physics");
    if (physics) {
      physics.addEventListener("change", function () {
        network.setOptions({ physics: { enabled: physics.checked } });
      });
    }
  }

  function show(ids) {
    visible = ids;
    if (visNodes) {
      visNodes.update(nodes.map(function (n) { return { id: n.id, hidden: !ids.has(n.id) }; }));
    }
    document.querySelectorAll("#graph-nodes li[data-node-id]").forEach(function (li) {
      li.classList.toggle("muted", !ids.has(li.getAttribute("data-node-id")));
    });
    if (visibleEl) visibleEl.textContent = Array.from(ids).sort().join("\n");
  }

  function clearDetails() {
    details.replaceChildren();
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No node selected.";
    details.appendChild(p);
  }

  // Text with http(s) URLs turned into links (built as DOM nodes: nothing is parsed as HTML).
  function linkify(parent, text) {
    const re = /https?:\/\/[^\s<>"']+/g;
    let last = 0;
    let m;
    while ((m = re.exec(text)) !== null) {
      parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      const a = document.createElement("a");
      a.href = m[0];
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = m[0];
      parent.appendChild(a);
      last = m.index + m[0].length;
    }
    parent.appendChild(document.createTextNode(text.slice(last)));
  }

  function showDetails(n) {
    details.replaceChildren();
    const h = document.createElement("h2");
    h.textContent = n.label;
    details.appendChild(h);
    const kind = document.createElement("p");
    kind.className = "muted";
    kind.textContent = n.kind + " · " + n.id;
    details.appendChild(kind);
    const keys = Object.keys(n.details || {}).sort();
    if (keys.length) {
      const dl = document.createElement("dl");
      keys.forEach(function (k) {
        const dt = document.createElement("dt");
        dt.textContent = k;
        const dd = document.createElement("dd");
        dd.className = "pre-line";
        linkify(dd, String(n.details[k]));
        dl.appendChild(dt);
        dl.appendChild(dd);
      });
      details.appendChild(dl);
    }
  }

  function select(id) {
    const n = byId.get(id);
    if (!n) return;
    const ids = new Set(neighbours[id] || []);
    ids.add(id);
    show(ids);
    showDetails(n);
    if (network) network.selectNodes([id]);
  }

  function reset() {
    show(new Set(nodes.map(function (n) { return n.id; })));
    clearDetails();
    if (network) {
      network.unselectAll();
      network.fit();
    }
  }

  const list = document.getElementById("graph-nodes");
  if (list) {
    list.addEventListener("click", function (ev) {
      const li = ev.target.closest("li[data-node-id]");
      if (li) select(li.getAttribute("data-node-id"));
    });
    list.addEventListener("keydown", function (ev) {
      if (ev.key !== "Enter" && ev.key !== " ") return;
      const li = ev.target.closest("li[data-node-id]");
      if (!li) return;
      ev.preventDefault();
      select(li.getAttribute("data-node-id"));
    });
  }
  const resetBtn = document.getElementById("graph-reset");
  if (resetBtn) resetBtn.addEventListener("click", reset);

  show(visible);
})();
