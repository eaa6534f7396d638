// Rosterdock console: the one script. Every page works without it; it only keeps a sync page
// current while the sync waits, runs or is being approved, and reloads it once the sync is done.
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
      const elapsed = p.elapsedSeconds === null ? "" : `, for ${p.elapsedSeconds} s`;
      progress.textContent = p.approvalQueued ? `Approval queued: waiting for the worker${elapsed}.` : `The sync is ${p.statusText}${elapsed}.`;
      setTimeout(poll, 1500);
    } catch {
      setTimeout(poll, 5000);
    }
  };
  setTimeout(poll, 1000);
})();
