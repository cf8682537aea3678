// The administration pages; see app.js for what every page shares (confirmations, script
// actions). Rows whose fatman was deleted by a script action go away.
"use strict";

(function () {
  document.addEventListener("racetrack:done", function (ev) {
    if (!ev.target.matches("button.delete")) return;
    const row = ev.target.closest("tr.lost-fatman, tr.fatman-row");
    if (row) row.remove();
  });

  // Select a shown-once token on click, so it is easy to copy.
  document.addEventListener("click", function (ev) {
    const code = ev.target.closest("#new-esc-token");
    if (!code) return;
    const range = document.createRange();
    range.selectNodeContents(code);
    const sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
  });
})();
