import type { SyncDetail, SyncIssueView } from "../../sync/sync-service.ts";
import type { FileSummary } from "../../sync/process-sync.ts";
import type { EntitySample, SampleValues } from "../../sync/diff-sample.ts";
import { rosterTable } from "../../sync/roster-tables.ts";
import type { HeaderStyle } from "../../intake/header-style.ts";
import { Notice, Page, html, type Viewer } from "./layout.tsx";
import { STATUS_WORDS, StatusWord, When, formatSize } from "./parts.tsx";

export const ISSUES_PER_PAGE = 100;
const SEVERITIES = ["error", "warning", "info"] as const;

export interface IssuesView {
  issues: SyncIssueView[];
  matching: number;
  files: string[];
  severity: SyncIssueView["severity"] | undefined;
  file: string | undefined;
  page: number;
}

export type SyncAction = "approve" | "discard" | "rollback";

export const ACTION_TEXT: Record<SyncAction, { button: string; confirm: string; done: string }> = {
  approve: {
    button: "Approve",
    confirm: "Apply this held sync to the roster? It is planned again against the roster as it is now.",
    done: "Approval queued: the sync is applied in the background; this page shows it when it is done.",
  },
  discard: { button: "Discard", confirm: "Drop this held sync? The roster never sees it; the district's next night is read as usual.", done: "The sync was discarded." },
  rollback: { button: "Roll back", confirm: "Restore the roster as it was before this sync? Apps see the changes undone.", done: "The sync was rolled back." },
};

export interface SyncPageProps {
  viewer: Viewer;
  sync: SyncDetail;
  districtName: string;
  /** Whether this is the district's latest applied sync (the one a rollback can undo). */
  latestApplied: boolean;
  /** An approval is queued and not yet run. */
  approvalQueued: boolean;
  /** Where a sync under way is, in words (stage, rows, elapsed); the page's script keeps it current. */
  progress: string;
  issues: IssuesView;
  notice?: string;
}

function issuesUrl(syncId: number, v: IssuesView, page: number): string {
  const params = new URLSearchParams();
  if (v.severity) params.set("severity", v.severity);
  if (v.file !== undefined) params.set("file", v.file);
  if (page > 1) params.set("page", String(page));
  const query = params.toString();
  return `/syncs/${syncId}${query ? `?${query}` : ""}#issues`;
}

function ActionButton(props: { syncId: number; action: SyncAction }): JSX.Element {
  // A GET to the confirmation page: the change itself is the "Confirm" button's POST there.
  return (
    <form method="get" action={`/syncs/${props.syncId}/${props.action}`}>
      <button type="submit" class={props.action === "approve" ? "" : "secondary"}>
        {ACTION_TEXT[props.action].button}
      </button>
    </form>
  );
}

/** `/syncs/{id}`: a sync's status in words, why it was held, its files, counts and issues, and what can be done with it. */
export function SyncPage(props: SyncPageProps): string {
  const s = props.sync;
  const summary = s.summary;
  // A zip's entries are read as files of their own (`roster.zip/students.csv`): one row each, beside the zip's size and hash.
  const fileRows: { f: SyncDetail["files"][number]; name: string; detected: FileSummary | undefined }[] = s.files.flatMap((f) => {
    const entries = (summary.files ?? []).filter((d) => d.name === f.name || d.name.startsWith(`${f.name}/`));
    return entries.length > 0 ? entries.map((detected) => ({ f, name: detected.name, detected: detected as FileSummary | undefined })) : [{ f, name: f.name, detected: undefined }];
  });
  const watching = s.status === "waiting" || s.status === "processing" || props.approvalQueued;
  const v = props.issues;
  const pages = Math.max(1, Math.ceil(v.matching / ISSUES_PER_PAGE));
  return html(
    <Page title={`Sync ${s.id}`} heading={`Sync ${s.id} of ${props.districtName}`} viewer={props.viewer}>
      {props.notice ? <Notice kind="info" text={props.notice} /> : ""}
      <dl class="facts">
        <dt>Status</dt>
        <dd id="sync-status">
          <StatusWord status={s.status} />
        </dd>
        <dt>District</dt>
        <dd>
          <a href={`/districts/${encodeURIComponent(s.district)}`} safe>
            {props.districtName}
          </a>
        </dd>
        <dt>Received</dt>
        <dd>
          <When at={s.createdAt} /> {s.source === "sftp" ? "over SFTP" : "by `rosterdock ingest`"}
        </dd>
        <dt>Last change</dt>
        <dd>
          <When at={s.updatedAt} />
        </dd>
        {summary.approvedBy ? (
          <>
            <dt>Approved by</dt>
            <dd safe>{summary.approvedBy}</dd>
          </>
        ) : (
          ""
        )}
        {summary.discardedBy ? (
          <>
            <dt>Discarded by</dt>
            <dd safe>{summary.discardedBy}</dd>
          </>
        ) : (
          ""
        )}
        {summary.rolledBackBy ? (
          <>
            <dt>Rolled back by</dt>
            <dd safe>{summary.rolledBackBy}</dd>
          </>
        ) : (
          ""
        )}
      </dl>
      {watching ? (
        <p class="progress" role="status" aria-live="polite" data-progress-url={`/syncs/${s.id}/progress.json`} data-status={s.status} safe>
          {props.progress}
        </p>
      ) : (
        ""
      )}
      {summary.error ? <Notice kind="error" text={`Why it failed: ${summary.error}`} /> : ""}
      {s.status === "held" && (summary.holdReasons ?? []).length > 0 ? (
        <section aria-labelledby="held-why">
          <h2 id="held-why">Why it was held</h2>
          <ul>
            {(summary.holdReasons ?? []).map((r) => (
              <li safe>{r.message}</li>
            ))}
          </ul>
        </section>
      ) : (
        ""
      )}
      <div class="actions">
        {s.status === "held" && !props.approvalQueued ? (
          <>
            <ActionButton syncId={s.id} action="approve" />
            <ActionButton syncId={s.id} action="discard" />
          </>
        ) : (
          ""
        )}
        {s.status === "applied" && props.latestApplied ? <ActionButton syncId={s.id} action="rollback" /> : ""}
      </div>
      {s.status === "held" ? <DiffPreview samples={summary.preview} counts={s.counts} /> : ""}

      <h2>Files</h2>
      <table class="files">
        <caption class="visually-hidden">The sync's files and what was detected in them</caption>
        <thead>
          <tr>
            <th scope="col">File</th>
            <th scope="col">Size</th>
            <th scope="col">SHA-256</th>
            <th scope="col">Format</th>
            <th scope="col">Entity</th>
            <th scope="col">Rows</th>
            <th scope="col">Encoding</th>
            <th scope="col">Delimiter</th>
            <th scope="col">Header</th>
          </tr>
        </thead>
        <tbody>
          {fileRows.map(({ f, name, detected }) => {
            return (
              <tr>
                <td safe>{name}</td>
                <td class="num">{formatSize(f.size)}</td>
                <td>
                  <code class="hash" safe>
                    {f.sha256}
                  </code>
                </td>
                <td safe>{formatText(name, detected)}</td>
                <td safe>{detected?.entity ?? "—"}</td>
                <td class="num">{detected ? String(detected.rows) : "—"}</td>
                <td safe>{detected?.encoding ?? "—"}</td>
                <td safe>{delimiterText(detected?.delimiter ?? null)}</td>
                <td safe>{detected?.headerStyle ? HEADER_STYLE_TEXT[detected.headerStyle] : "—"}</td>
              </tr>
            );
          })}
        </tbody>
      </table>

      <h2>Counts</h2>
      {Object.keys(s.counts).length === 0 ? (
        <p>No counts yet.</p>
      ) : (
        <table>
          <caption class="visually-hidden">Rows per entity</caption>
          <thead>
            <tr>
              <th scope="col">Entity</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
              <th scope="col">Deleted</th>
              <th scope="col">Unchanged</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(s.counts).map(([entity, c]) => (
              <tr>
                <td safe>{entity}</td>
                <td class="num">{String(c.created)}</td>
                <td class="num">{String(c.updated)}</td>
                <td class="num">{String(c.deleted)}</td>
                <td class="num">{String(c.unchanged)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2 id="issues">Issues</h2>
      <p>
        {`${s.issueTotals.error} errors, ${s.issueTotals.warning} warnings, ${s.issueTotals.info} notes found; ${s.issueTotals.stored} stored (the first 100 per file and code).`}{" "}
        <a href={`/syncs/${s.id}/issues.csv`}>Download the issues as CSV</a>
      </p>
      <form method="get" action={`/syncs/${s.id}#issues`} class="inline">
        <label for="severity">Severity</label>
        <select id="severity" name="severity">
          <option value="" selected={v.severity === undefined}>
            any
          </option>
          {SEVERITIES.map((sev) => (
            <option value={sev} selected={v.severity === sev}>
              {sev}
            </option>
          ))}
        </select>
        <label for="file">File</label>
        <select id="file" name="file">
          <option value="" selected={v.file === undefined}>
            any
          </option>
          {v.files.map((f) => (
            <option value={f} selected={v.file === f} safe>
              {f}
            </option>
          ))}
        </select>
        <button type="submit" class="secondary">
          Filter
        </button>
      </form>
      {v.issues.length === 0 ? (
        <p>No issue matches.</p>
      ) : (
        <>
          <table>
            <caption class="visually-hidden">Issues, errors first</caption>
            <thead>
              <tr>
                <th scope="col">Severity</th>
                <th scope="col">File</th>
                <th scope="col">Row</th>
                <th scope="col">Column</th>
                <th scope="col">Value</th>
                <th scope="col">Code</th>
                <th scope="col">Message</th>
              </tr>
            </thead>
            <tbody>
              {v.issues.map((i) => (
                <tr>
                  <td class={`severity-${i.severity}`} safe>
                    {i.severity}
                  </td>
                  <td safe>{i.file}</td>
                  <td class="num">{i.row === null ? "" : String(i.row)}</td>
                  <td safe>{i.column ?? ""}</td>
                  <td safe>{i.value ?? ""}</td>
                  <td>
                    <code safe>{i.code}</code>
                  </td>
                  <td safe>{i.message}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <nav aria-label="Issue pages" class="pager">
            {v.page > 1 ? <a href={issuesUrl(s.id, v, v.page - 1)}>Previous page</a> : ""}
            <span>{`Page ${v.page} of ${pages} (${v.matching} issues)`}</span>
            {v.page < pages ? <a href={issuesUrl(s.id, v, v.page + 1)}>Next page</a> : ""}
          </nav>
        </>
      )}
    </Page>,
  );
}

/** The confirmation before approving, discarding or rolling back: a button named "Confirm". */
export function ConfirmPage(props: { viewer: Viewer; syncId: number; action: SyncAction }): string {
  const text = ACTION_TEXT[props.action];
  return html(
    <Page title={`${text.button} sync ${props.syncId}`} viewer={props.viewer}>
      <p safe>{text.confirm}</p>
      <div class="actions">
        <form method="post" action={`/syncs/${props.syncId}/${props.action}`}>
          <input type="hidden" name="_csrf" value={props.viewer.csrf} />
          <button type="submit">Confirm</button>
        </form>
        <a class="button secondary" href={`/syncs/${props.syncId}`}>
          Cancel
        </a>
      </div>
    </Page>,
  );
}

const HEADER_STYLE_TEXT: Record<HeaderStyle, string> = {
  autosend: "AutoSend [NN]Field labels",
  "table-field": "Table.Field labels",
  rosterdock: "Rosterdock column names",
  powerschool: "PowerSchool field names",
  none: "none read",
};

const DELIMITER_NAMES: Record<string, string> = { "\t": "tab", ",": "comma (,)", ";": "semicolon (;)", "|": "pipe (|)" };

function delimiterText(delimiter: string | null): string {
  return delimiter === null ? "—" : (DELIMITER_NAMES[delimiter] ?? delimiter);
}

/** The export a file was recognised as, as delimited text, and whether it came in a zip. */
function formatText(name: string, detected: FileSummary | undefined): string {
  if (!detected) return "—";
  const kind = detected.delimiter === "\t" ? "tab-separated" : detected.delimiter === null ? "unread" : "delimited text";
  const zipped = /\.zip\//i.test(name) ? ", from a zip" : "";
  return detected.stem ? `${detected.stem} export, ${kind}${zipped}` : `${kind}${zipped}`;
}

function valueText(value: string | number | null): string {
  return value === null || value === "" ? "(empty)" : String(value);
}

/** A record in a few words: its key, then its other values that are set. */
function recordText(values: SampleValues, key: readonly string[]): { key: string; rest: string } {
  return {
    key: key.map((c) => valueText(values[c] ?? null)).join(" / "),
    rest: Object.entries(values)
      .filter(([c, v]) => !key.includes(c) && v !== null && v !== "")
      .map(([c, v]) => `${c}: ${String(v)}`)
      .join("; "),
  };
}

/** For a held sync: a few rows per entity it would delete, update and create, taken when it was held. */
function DiffPreview(props: { samples: EntitySample[] | undefined; counts: SyncDetail["counts"] }): JSX.Element {
  if (!props.samples) {
    return <p class="hint">This sync was held before samples of its changes were kept; the counts below are what it would change.</p>;
  }
  return (
    <section aria-labelledby="preview">
      <h2 id="preview">What it would change</h2>
      <p class="hint">A sample of the rows per entity, taken when the sync was held; approving plans it again against the roster as it is then.</p>
      {props.samples.length === 0 ? <p>No row would change.</p> : ""}
      {props.samples.map((sample) => {
        const key = rosterTable(sample.entity).key;
        const c = props.counts[sample.entity];
        const kinds: { kind: "deleted" | "updated" | "created"; word: string; count: number | undefined }[] = [
          { kind: "deleted", word: "Delete", count: c?.deleted },
          { kind: "updated", word: "Update", count: c?.updated },
          { kind: "created", word: "Create", count: c?.created },
        ];
        return (
          <table class="preview">
            <caption safe>{`${sample.entity}: ${c?.deleted ?? 0} deleted, ${c?.updated ?? 0} updated, ${c?.created ?? 0} created`}</caption>
            <thead>
              <tr>
                <th scope="col">Change</th>
                <th scope="col">Record</th>
                <th scope="col">Values</th>
              </tr>
            </thead>
            <tbody>
              {kinds.flatMap(({ kind, word }) =>
                kind === "updated"
                  ? sample.updated.map((u) => (
                      <tr>
                        <td class={`change-${kind}`}>{word}</td>
                        <td>
                          <code safe>{key.map((k) => valueText(u.key[k] ?? null)).join(" / ")}</code>
                        </td>
                        <td safe>{u.changes.map((ch) => `${ch.column}: ${valueText(ch.before)} → ${valueText(ch.after)}`).join("; ")}</td>
                      </tr>
                    ))
                  : sample[kind].map((values) => {
                      const r = recordText(values, key);
                      return (
                        <tr>
                          <td class={`change-${kind}`}>{word}</td>
                          <td>
                            <code safe>{r.key}</code>
                          </td>
                          <td safe>{r.rest}</td>
                        </tr>
                      );
                    }),
              )}
            </tbody>
          </table>
        );
      })}
    </section>
  );
}
