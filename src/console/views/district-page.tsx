import type { DistrictView, SafeguardOverrides } from "../../districts/district-service.ts";
import type { ConnectionDetails } from "../../districts/connection-details.ts";
import type { HealthMark } from "../district-overview.ts";
import { CsrfField, Notice, Page, html, type Viewer } from "./layout.tsx";
import { GuideDownloads, HostKeys } from "./new-district-page.tsx";
import { HealthMarkText } from "./districts-page.tsx";
import { SyncChart, type ChartSync } from "./sync-chart.tsx";
import { StatusWord, When } from "./parts.tsx";
import { RosterSearch } from "./roster-pages.tsx";

const SAFEGUARD_FIELDS: { key: keyof SafeguardOverrides; label: string; unit: string }[] = [
  { key: "deletePercent", label: "Hold when a sync deletes more than (%)", unit: "%" },
  { key: "deleteMinRows", label: "…and at least this many rows (deletes)", unit: "rows" },
  { key: "changePercent", label: "Hold when a sync updates or deletes more than (%)", unit: "%" },
  { key: "changeMinRows", label: "…and at least this many rows (changes)", unit: "rows" },
];

export interface DistrictPageProps {
  viewer: Viewer;
  district: DistrictView;
  health: HealthMark;
  connection: ConnectionDetails;
  /** The server's thresholds, which apply where the district sets none. */
  serverSafeguards: Required<SafeguardOverrides>;
  syncs: ChartSync[];
  notice?: string;
  error?: string;
}

/** `/districts/{slug}`: how the district connects, its settings, and its syncs newest first. */
export function DistrictPage(props: DistrictPageProps): string {
  const d = props.district;
  const base = `/districts/${encodeURIComponent(d.slug)}`;
  return html(
    <Page title={d.name} viewer={props.viewer}>
      {props.notice ? <Notice kind="info" text={props.notice} /> : ""}
      {props.error ? <Notice kind="error" text={props.error} /> : ""}
      <dl class="facts">
        <dt>Slug</dt>
        <dd>
          <code safe>{d.slug}</code>
        </dd>
        <dt>Status</dt>
        <dd safe>{d.status}</dd>
        <dt>Health</dt>
        <dd>
          <HealthMarkText health={props.health} />
        </dd>
        <dt>SFTP username</dt>
        <dd>
          <code safe>{d.sftpUsername}</code>
        </dd>
        <dt>SFTP host</dt>
        <dd>
          <code safe>{`${props.connection.host}:${props.connection.port}`}</code>
        </dd>
      </dl>
      <div class="actions">
        <form method="post" action={`${base}/rotate-password`}>
          <CsrfField token={props.viewer.csrf} />
          <button type="submit" class="secondary">
            Rotate password
          </button>
        </form>
        <form method="post" action={`${base}/new-link`}>
          <CsrfField token={props.viewer.csrf} />
          <button type="submit" class="secondary" aria-describedby="new-link-hint">
            New one-time link
          </button>
        </form>
      </div>
      <p id="new-link-hint" class="hint">
        Each makes a new password, ends the old one and shows a new one-time link once.
      </p>

      <h2>Setup guide</h2>
      <GuideDownloads slug={d.slug} />

      <h2>Host key fingerprints</h2>
      <HostKeys connection={props.connection} />

      <h2 id="syncs">Syncs</h2>
      <SyncChart syncs={props.syncs.slice(0, 30)} />
      {props.syncs.length === 0 ? (
        <p>No sync yet: the first appears once the district's first night is uploaded.</p>
      ) : (
        <table class="syncs">
          <caption class="visually-hidden">The district's syncs, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Sync</th>
              <th scope="col">Status</th>
              <th scope="col">Received</th>
              <th scope="col">Created</th>
              <th scope="col">Updated</th>
              <th scope="col">Deleted</th>
            </tr>
          </thead>
          <tbody>
            {props.syncs.map((s) => (
              <tr>
                <td>
                  <a href={`/syncs/${s.id}`}>Sync {String(s.id)}</a>
                </td>
                <td>
                  <StatusWord status={s.status} />
                </td>
                <td>
                  <When at={s.createdAt} />
                </td>
                <td class="num">{String(s.created)}</td>
                <td class="num">{String(s.updated)}</td>
                <td class="num">{String(s.deleted)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}

      <h2 id="roster">Roster</h2>
      <RosterSearch slug={d.slug} />

      <h2>Allowed addresses</h2>
      <form method="post" action={`${base}/allow-list`} class="stack narrow">
        <CsrfField token={props.viewer.csrf} />
        <label for="allow-ips">Allowed addresses</label>
        <textarea id="allow-ips" name="allowIps" rows="4" aria-describedby="allow-hint" safe>
          {d.allowIps.join("\n")}
        </textarea>
        <p id="allow-hint" class="hint">
          One IP address or CIDR range per line; empty accepts SFTP logins from any address.
        </p>
        <button type="submit">Save allowed addresses</button>
      </form>

      <h2>Safeguards</h2>
      <form method="post" action={`${base}/safeguards`} class="stack narrow">
        <CsrfField token={props.viewer.csrf} />
        <p class="hint">A sync that goes past these is held until an operator approves it. Leave a field empty to follow the server's value.</p>
        {SAFEGUARD_FIELDS.map((f) => (
          <>
            <label for={f.key}>{f.label}</label>
            <input
              id={f.key}
              name={f.key}
              type="number"
              min="0"
              max={f.unit === "%" ? "100" : undefined}
              step="1"
              value={d.safeguards[f.key] === undefined ? "" : String(d.safeguards[f.key])}
              placeholder={`server: ${props.serverSafeguards[f.key]}`}
            />
          </>
        ))}
        <button type="submit">Save safeguards</button>
      </form>
    </Page>,
  );
}
