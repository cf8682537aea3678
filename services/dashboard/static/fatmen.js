// Behaviour of the fatmen page and the log-follow page; see app.js for what every page shares
// (confirmations, button[data-action-url] posts, alerts).
"use strict";

(function () {
  // --- the fatmen page ---------------------------------------------------------------------

  function statusClass(status) {
    return status === "running" || status === "error" ? status : "other";
  }

  function fatmanElement(name, version) {
    return document.getElementById("fatman-" + name + "-" + version);
  }

  function setStatus(el, status) {
    const badge = el.querySelector("span.badge.status");
    if (badge) {
      badge.textContent = status.toUpperCase();
      badge.className = "badge status " + statusClass(status);
    }
    // Only a running fatman can be opened.
    const slot = el.querySelector(".open-slot");
    if (!slot) return;
    const link = slot.querySelector("a.open-fatman");
    if (status === "running" && !link) {
      const a = document.createElement("a");
      a.className = "open-fatman";
      a.href = el.getAttribute("data-open-url");
      a.target = "_blank";
      a.rel = "noopener noreferrer";
      a.textContent = "Open";
      slot.replaceChildren(a);
    } else if (status !== "running" && link) {
      const span = document.createElement("span");
      span.className = "open-disabled muted";
      span.title = "Job isn't healthy";
      span.textContent = "Open";
      slot.replaceChildren(span);
    }
  }

  function setError(el, error) {
    const box = el.querySelector(".fatman-error");
    if (!box) return;
    box.textContent = error || "";
    box.hidden = !error;
  }

  function adjustCount(delta) {
    const count = document.getElementById("fatmen-count");
    if (!count) return;
    const n = parseInt(count.textContent, 10);
    if (!isNaN(n)) count.textContent = String(Math.max(0, n + delta));
  }

  function removeFatman(el) {
    const family = el.closest(".family");
    el.remove();
    adjustCount(-1);
    if (family && !family.querySelector(".fatman")) family.remove();
  }

  const announced = new Set();

  function noteAdded(rows) {
    const fresh = rows.filter(function (r) {
      const key = r.name + " v" + r.version;
      if (fatmanElement(r.name, r.version) || announced.has(key)) return false;
      announced.add(key);
      return true;
    });
    if (!fresh.length) return;
    const note = document.getElementById("live-note");
    const text = document.getElementById("live-note-text");
    if (!note || !text) return;
    text.textContent = "New fatmen: " + Array.from(announced).join(", ") + ".";
    note.hidden = false;
  }

  function showDeployment(el, dep) {
    let span = el.querySelector("span.deployment-status");
    if (!span) {
      span = document.createElement("span");
      span.className = "deployment-status";
      (el.querySelector(".fatman-actions") || el).appendChild(span);
    }
    span.setAttribute("data-deployment-id", dep.id);
    let text = dep.status;
    if (dep.phase) text += " (" + dep.phase + ")";
    if (dep.error) text += ": " + dep.error;
    span.textContent = text;
    span.classList.toggle("final", !!dep.final);
  }

  // Polls a deployment every second until its status is final; a newer deployment of the same
  // fatman takes over its status element and this poll stops.
  function pollDeployment(el, id, failures) {
    window.setTimeout(async function () {
      const span = el.querySelector("span.deployment-status");
      if (!el.isConnected || !span || span.getAttribute("data-deployment-id") !== id) return;
      try {
        const resp = await fetch("/dashboard/api/deployment/" + encodeURIComponent(id), {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        let data = null;
        try { data = await resp.json(); } catch (_) { data = null; }
        if (!resp.ok || !data || !data.deployment) {
          throw new Error((data && data.error) || resp.status + " " + resp.statusText);
        }
        showDeployment(el, data.deployment);
        if (!data.deployment.final) pollDeployment(el, id, 0);
      } catch (e) {
        if (failures < 5) {
          pollDeployment(el, id, failures + 1);
        } else {
          span.textContent += " — status unavailable: " + e.message;
        }
      }
    }, 1000);
  }

  document.addEventListener("racetrack:done", function (ev) {
    const btn = ev.target;
    const el = btn.closest ? btn.closest("div.fatman") : null;
    if (!el) return;
    if (btn.matches("button.delete")) {
      removeFatman(el);
    } else if (btn.matches("button.redeploy, button.reprovision")) {
      const dep = ev.detail && ev.detail.deployment;
      if (!dep) return;
      showDeployment(el, dep);
      if (!dep.final) pollDeployment(el, dep.id, 0);
    }
  });

  function followStatuses() {
    if (!document.getElementById("fatmen") || !window.EventSource) return;
    const source = new EventSource("/dashboard/api/events");
    source.addEventListener("fatmen", function (ev) {
      let d;
      try { d = JSON.parse(ev.data); } catch (_) { return; }
      (d.changed || []).forEach(function (row) {
        const el = fatmanElement(row.name, row.version);
        if (!el) return;
        setStatus(el, row.status);
        setError(el, row.error);
      });
      (d.removed || []).forEach(function (row) {
        const el = fatmanElement(row.name, row.version);
        if (el) removeFatman(el);
      });
      noteAdded(d.added || []);
    });
    source.addEventListener("failure", function (ev) {
      source.close();
      let text = ev.data;
      try { text = JSON.parse(ev.data); } catch (_) { /* keep the raw text */ }
      window.Racetrack.alert("Live statuses stopped: " + text, false);
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  // --- the log-follow page -----------------------------------------------------------------

  const MAX_LOG_CHUNKS = 5000;

  function followLogs() {
    const pre = document.getElementById("log-lines");
    const url = pre && pre.getAttribute("data-stream-url");
    if (!url || !window.EventSource) return;
    const status = document.getElementById("log-status");
    const failure = document.getElementById("log-failure");
    function say(text) { if (status) status.textContent = text; }
    const source = new EventSource(url);
    source.onopen = function () { say("following"); };
    source.addEventListener("lines", function (ev) {
      let text;
      try { text = JSON.parse(ev.data); } catch (_) { return; }
      const nearBottom = pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
      pre.appendChild(document.createTextNode(text));
      while (pre.childNodes.length > MAX_LOG_CHUNKS) pre.removeChild(pre.firstChild);
      if (nearBottom) pre.scrollTop = pre.scrollHeight;
    });
    source.addEventListener("failure", function (ev) {
      source.close();
      let text = ev.data;
      try { text = JSON.parse(ev.data); } catch (_) { /* keep the raw text */ }
      if (failure) {
        failure.textContent = text;
        failure.hidden = false;
      }
      say("stopped");
    });
    source.addEventListener("end", function () {
      source.close();
      say("the log ended (the fatman's container is gone)");
    });
    // Reconnecting would send the last lines again: stop and let the user reload instead.
    source.onerror = function () {
      if (source.readyState !== EventSource.CLOSED) source.close();
      if (failure && failure.hidden) say("disconnected: reload the page to follow again");
    };
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function start() {
    followStatuses();
    followLogs();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
