// Rosterdock console: the one script. Every page works without it; it only keeps a sync page
// current while the sync waits, runs or is being approved (stage, rows, elapsed time), and reloads
// it once the sync is done.
(() => {
  "use strict";
  const progress = document.querySelector("[data-progress-url]");
  if (!progress) return;
  const url = progress.getAttribute("data-progress-url");
  const started = progress.getAttribute("data-status");
  const poll = async () => {
    try {
      const response = await fetch(url, { headers: { accept: "application/json" }, credentials: "same-origin" });
      if (!response.ok) return setTimeout(poll, 5000);
      const p = await response.json();
      if (p.status !== started || (started === "held" && !p.approvalQueued)) {
        window.location.reload();
        return;
      }
      // Stage, rows read and time taken, in the server's words.
      progress.textContent = p.text;
      if (p.stage) progress.setAttribute("data-stage", p.stage);
      setTimeout(poll, 1000);
    } catch {
      setTimeout(poll, 5000);
    }
  };
  setTimeout(poll, 1000);
})();
