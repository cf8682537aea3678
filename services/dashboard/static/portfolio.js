// The portfolio page; see app.js for what every page shares. Filtering, sorting and paging are
// done by the server (form#portfolio-filter); this adds column visibility (kept in
// localStorage), shorter filter URLs and removal of deleted rows.
"use strict";

(function () {
  const KEY = "racetrack.portfolio.hiddenColumns";

  function hiddenColumns() {
    try {
      const v = JSON.parse(window.localStorage.getItem(KEY) || "[]");
      return new Set(Array.isArray(v) ? v.map(String) : []);
    } catch (_) {
      return new Set();
    }
  }

  function saveHidden(set) {
    try { window.localStorage.setItem(KEY, JSON.stringify(Array.from(set))); } catch (_) { /* private mode */ }
  }

  function apply(set) {
    document.querySelectorAll("#portfolio [data-col]").forEach(function (cell) {
      cell.hidden = set.has(cell.getAttribute("data-col"));
    });
    document.querySelectorAll("#portfolio-columns input[data-column]").forEach(function (box) {
      box.checked = !set.has(box.getAttribute("data-column"));
    });
  }

  const hidden = hiddenColumns();
  apply(hidden);
  const columns = document.getElementById("portfolio-columns");
  if (columns) {
    columns.addEventListener("change", function (ev) {
      const box = ev.target.closest("input[data-column]");
      if (!box) return;
      const col = box.getAttribute("data-column");
      if (box.checked) hidden.delete(col); else hidden.add(col);
      saveHidden(hidden);
      apply(hidden);
    });
  }

  // Blank filter boxes are left out of the query string.
  const form = document.getElementById("portfolio-filter");
  if (form) {
    form.addEventListener("submit", function () {
      form.querySelectorAll("input[name^='f']").forEach(function (input) {
        if (input.value.trim() === "") input.disabled = true;
      });
    });
    window.addEventListener("pageshow", function () {
      form.querySelectorAll("input[name^='f']").forEach(function (input) { input.disabled = false; });
    });
  }

  document.addEventListener("racetrack:done", function (ev) {
    const row = ev.target.closest("tr.portfolio-row");
    if (!row || !ev.target.matches("button.delete")) return;
    row.remove();
    const count = document.getElementById("portfolio-count");
    if (count) {
      const n = parseInt(count.textContent, 10);
      if (n > 0) count.textContent = String(n - 1);
    }
  });
})();
