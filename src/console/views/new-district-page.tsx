import type { ConnectionDetails } from "../../districts/connection-details.ts";
import { CsrfField, Notice, Page, html, type Viewer } from "./layout.tsx";

export interface NewDistrictInput {
  name: string;
  slug: string;
  allowIps: string;
}

/** "New district": name, slug and an optional allow-list, created as `rosterdock district create` does. */
export function NewDistrictPage(props: { viewer: Viewer; input?: NewDistrictInput; error?: string }): string {
  const input = props.input ?? { name: "", slug: "", allowIps: "" };
  return html(
    <Page title="New district" viewer={props.viewer}>
      {props.error ? <Notice kind="error" text={props.error} /> : ""}
      <form method="post" action="/districts" class="stack narrow">
        <CsrfField token={props.viewer.csrf} />
        <label for="name">Name</label>
        <input id="name" name="name" required value={input.name} />
        <label for="slug">Slug</label>
        <input id="slug" name="slug" required pattern="[a-z][a-z0-9\-]{1,39}" aria-describedby="slug-hint" value={input.slug} />
        <p id="slug-hint" class="hint">
          2–40 lowercase letters, digits and single hyphens, starting with a letter. It is also the SFTP username.
        </p>
        <label for="allow-ips">Allowed addresses (optional)</label>
        <textarea id="allow-ips" name="allowIps" rows="3" aria-describedby="allow-hint" safe>
          {input.allowIps}
        </textarea>
        <p id="allow-hint" class="hint">
          One IP address or CIDR range per line; empty accepts SFTP logins from any address.
        </p>
        <button type="submit">Create district</button>
      </form>
    </Page>,
  );
}

export interface IssuedCredentials {
  slug: string;
  name: string;
  username: string;
  /** The one-time link to the credentials, when the server makes one; else the password is shown here once. */
  credentialsLink?: string;
  password: string;
  connection: ConnectionDetails;
}

/** After "New district" or "Rotate password": how the district connects, its secret shown this once. */
export function CredentialsPage(props: { viewer: Viewer; title: string; lead: string; credentials: IssuedCredentials }): string {
  const c = props.credentials;
  return html(
    <Page title={props.title} viewer={props.viewer}>
      <Notice kind="info" text={props.lead} />
      <dl class="facts">
        <dt>District</dt>
        <dd>
          <a href={`/districts/${encodeURIComponent(c.slug)}`} safe>
            {c.name}
          </a>
        </dd>
        <dt>SFTP host</dt>
        <dd>
          <code safe>{`${c.connection.host}:${c.connection.port}`}</code>
        </dd>
        <dt>SFTP username</dt>
        <dd>
          <code safe>{c.username}</code>
        </dd>
        {c.credentialsLink ? (
          <>
            <dt>One-time link</dt>
            <dd>
              <a href={c.credentialsLink} safe>
                {c.credentialsLink}
              </a>
              <p class="hint">Send this link to the district's admin: it shows the password once, then stops working.</p>
            </dd>
          </>
        ) : (
          <>
            <dt>Password</dt>
            <dd>
              <code class="secret" safe>
                {c.password}
              </code>
              <p class="hint">
                Shown only now. Hand it over securely; once one-time credential links are enabled, the link appears here instead.
              </p>
            </dd>
          </>
        )}
      </dl>
      <h2>Setup guide</h2>
      <p>The district's admin sets up PowerSchool's exports with this guide; it never contains the password.</p>
      <GuideDownloads slug={c.slug} />
      <h2>Host key fingerprints</h2>
      <HostKeys connection={c.connection} />
    </Page>,
  );
}

export function HostKeys(props: { connection: ConnectionDetails }): JSX.Element {
  return (
    <table>
      <caption class="visually-hidden">What PowerSchool shows at "Yes, Accept Host Key"</caption>
      <thead>
        <tr>
          <th scope="col">Algorithm</th>
          <th scope="col">SHA256</th>
          <th scope="col">MD5</th>
        </tr>
      </thead>
      <tbody>
        {props.connection.hostKeys.map((k) => (
          <tr>
            <td safe>{k.algorithm}</td>
            <td>
              <code safe>{k.sha256}</code>
            </td>
            <td>
              <code safe>{k.md5}</code>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Links to the district's setup guide, as a web page and as a PDF. */
export function GuideDownloads(props: { slug: string }): JSX.Element {
  const base = `/districts/${encodeURIComponent(props.slug)}/guide`;
  return (
    <ul class="downloads">
      <li>
        <a href={`${base}.html`} download="">
          Setup guide (HTML)
        </a>
      </li>
      <li>
        <a href={`${base}.pdf`} download="">
          Setup guide (PDF)
        </a>
      </li>
    </ul>
  );
}
