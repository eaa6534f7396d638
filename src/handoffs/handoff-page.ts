import { createHash } from "node:crypto";
import type { HostKeyView } from "../districts/connection-details.ts";
import type { HandoffVisit } from "./handoff-service.ts";

/** What the page shows besides the credentials: where to connect, and the keys to compare. */
export interface HandoffConnection {
  host: string;
  port: number;
  hostKeys: readonly HostKeyView[];
}

const STYLE = `
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f6f7f9;margin:0}
main{max-width:46rem;margin:2rem auto;background:#fff;border:1px solid #d8dce1;border-radius:8px;padding:1.5rem 2rem}
h1{font-size:1.4rem;margin:0 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e3e6ea;vertical-align:top}
tr{break-inside:avoid}
code{font:15px/1.4 ui-monospace,"SFMono-Regular",Menlo,Consolas,monospace;white-space:nowrap}
.fingerprints{overflow-x:auto}
.secret{font-size:1.15rem;background:#fff7d6;padding:.1rem .3rem;border-radius:4px;user-select:all}
.note{background:#eef4ff;border-left:4px solid #3b6fd8;padding:.6rem .9rem}
.warn{background:#fff4e5;border-left:4px solid #d98b1b;padding:.6rem .9rem}
button{font:inherit;font-weight:600;color:#fff;background:#2457c5;border:0;border-radius:6px;padding:.6rem 1.2rem;cursor:pointer}
footer{color:#5b636d;font-size:.85rem;margin-top:1.5rem}
@media print{body{background:#fff}main{border:0;margin:0;max-width:none}form,footer{display:none}}
`;

/** The page's only style block, allowed by its hash: the page runs no script and loads nothing. */
export const HANDOFF_PAGE_CSP = [
  "default-src 'none'",
  `style-src 'sha256-${createHash("sha256").update(STYLE).digest("base64")}'`,
  "form-action 'self'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join("; ");

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** `2026-03-02 08:00 UTC`: a moment as a district's admin and an operator read it. */
export function minuteUtc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

function page(title: string, body: string): string {
  return (
    `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width,initial-scale=1"><meta name="robots" content="noindex,nofollow">` +
    `<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>` +
    `<body><main>${body}<footer>Rosterdock: roster intake for your district's PowerSchool exports.</footer></main></body></html>`
  );
}

const ASK_AGAIN = "If you still need the credentials, ask your vendor for a new link: it comes with a new password.";
const RCM_PATH = "System &gt; System Settings &gt; Plugin Management Configuration &gt; Remote Connection Manager";

function fingerprintTable(keys: readonly HostKeyView[]): string {
  const rows = keys.map((k) => `<tr><td><code>${escapeHtml(k.algorithm)}</code></td><td><code>${escapeHtml(k.sha256)}</code><br><code>${escapeHtml(k.md5)}</code></td></tr>`).join("");
  return `<div class="fingerprints"><table><thead><tr><th>Key type</th><th>Fingerprint (SHA256 and MD5)</th></tr></thead><tbody>${rows}</tbody></table></div>`;
}

/** The HTML page for a visit to a credentials link, and its HTTP status. Every value is escaped. */
export function renderHandoffPage(visit: HandoffVisit, connection: HandoffConnection): { status: number; html: string } {
  switch (visit.state) {
    case "ready": {
      const name = escapeHtml(visit.district.name);
      return {
        status: 200,
        html: page(
          `SFTP credentials for ${visit.district.name}`,
          `<h1>SFTP credentials for ${name}</h1>` +
            `<p>This link shows, <strong>once</strong>, the password of ${name}'s SFTP account for PowerSchool's Remote Connection Manager, ` +
            `with the host, port, username and the server's host-key fingerprints.</p>` +
            `<p class="warn">Reveal it when you are ready to enter it in PowerSchool (${RCM_PATH}). After that, this link only says when it was used.</p>` +
            `<form method="post"><button type="submit">Reveal the credentials</button></form>` +
            `<p>The link works until ${minuteUtc(visit.expiresAt)}.</p>`,
        ),
      };
    }
    case "revealed": {
      const name = escapeHtml(visit.district.name);
      return {
        status: 200,
        html: page(
          `SFTP credentials for ${visit.district.name}`,
          `<h1>SFTP credentials for ${name}</h1>` +
            `<p class="warn"><strong>This page is shown only now.</strong> Enter these values in PowerSchool's Remote Connection Manager ` +
            `(${RCM_PATH}) or store the password somewhere safe before you leave it: reloading will not show the password again.</p>` +
            `<table><tbody>` +
            `<tr><th>Protocol</th><td>SFTP</td></tr>` +
            `<tr><th>Host</th><td><code>${escapeHtml(connection.host)}</code></td></tr>` +
            `<tr><th>Port</th><td><code>${connection.port}</code></td></tr>` +
            `<tr><th>Username</th><td><code>${escapeHtml(visit.username)}</code></td></tr>` +
            `<tr><th>Password</th><td><code class="secret">${escapeHtml(visit.password)}</code></td></tr>` +
            `</tbody></table>` +
            `<h2>Host-key fingerprints</h2>` +
            `<p class="note">When PowerSchool's Test Connection asks you to accept the server's host key, compare the fingerprint it shows ` +
            `with one of these before you press "Yes, Accept Host Key". If none matches, do not accept it: tell your vendor.</p>` +
            fingerprintTable(connection.hostKeys),
        ),
      };
    }
    case "used":
      return gone(`This link was already used`, `<p>It was used on ${minuteUtc(visit.at)}, and it does not show the password again.</p><p>${ASK_AGAIN}</p>`);
    case "expired":
      return gone(`This link has expired`, `<p>It expired on ${minuteUtc(visit.at)} without being used, and its password was deleted.</p><p>${ASK_AGAIN}</p>`);
    case "revoked":
      return gone(`This link was revoked`, `<p>Your vendor revoked it on ${minuteUtc(visit.at)}.</p><p>${ASK_AGAIN}</p>`);
    case "replaced":
      return gone(`This link was replaced`, `<p>A newer link (with a new password) replaced it on ${minuteUtc(visit.at)}: use the newest link your vendor sent.</p><p>${ASK_AGAIN}</p>`);
    case "unknown":
      return { status: 404, html: page("Unknown link", `<h1>This link is not valid</h1><p>Check that the whole link was copied. ${ASK_AGAIN}</p>`) };
  }
}

function gone(title: string, body: string): { status: number; html: string } {
  return { status: 410, html: page(title, `<h1>${escapeHtml(title)}</h1>${body}`) };
}

/** A page for a refusal that is not about the link: too many tries from one address, or an error. */
export function renderHandoffProblem(status: number, message: string): string {
  return page("Credentials link", `<h1>${status === 429 ? "Too many tries" : "Something went wrong"}</h1><p>${escapeHtml(message)}</p>`);
}
