// What every dashboard page shares: confirmations, actions posted by script, alerts.
// No inline script anywhere (the CSP forbids it): pages mark elements with data-* attributes.
"use strict";

window.Racetrack = (function () {
  function csrf() {
    const m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function alert(text, ok) {
    const box = document.getElementById("alerts");
    if (!box) return;
    const div = document.createElement("div");
    div.className = "alert " + (ok ? "success" : "error");
    div.setAttribute("role", ok ? "status" : "alert");
    div.textContent = text;
    box.appendChild(div);
  }

  // POSTs to `url` with the CSRF header; resolves to the parsed JSON body (or null).
  async function post(url, body) {
    const init = {
      method: "POST",
      headers: { "X-CSRF-Token": csrf() },
      credentials: "same-origin",
    };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    const resp = await fetch(url, init);
    let data = null;
    try { data = await resp.json(); } catch (_) { data = null; }
    if (!resp.ok) {
      throw new Error((data && data.error) || resp.status + " " + resp.statusText);
    }
    return data;
  }

  function confirmed(el) {
    const text = el.getAttribute("data-confirm");
    return !text || window.confirm(text);
  }

  document.addEventListener("submit", function (ev) {
    const form = ev.target;
    if (form.matches("form[data-confirm]") && !confirmed(form)) ev.preventDefault();
  });

  // <button data-action-url="..." data-action-name="Delete" data-confirm="...">
  document.addEventListener("click", async function (ev) {
    const btn = ev.target.closest("button[data-action-url]");
    if (!btn) return;
    ev.preventDefault();
    if (!confirmed(btn)) return;
    const name = btn.getAttribute("data-action-name") || "Action";
    const what = btn.getAttribute("data-action-target") || "";
    btn.disabled = true;
    const label = btn.textContent;
    btn.textContent = "…";
    try {
      const data = await post(btn.getAttribute("data-action-url"));
      alert("Success: " + name + " " + what, true);
      btn.dispatchEvent(new CustomEvent("racetrack:done", { bubbles: true, detail: data }));
    } catch (e) {
      alert("Error: " + name + " " + what + ": " + e.message, false);
    } finally {
      btn.disabled = false;
      btn.textContent = label;
    }
  });

  return { csrf: csrf, alert: alert, post: post };
})();
