import { CsrfField, Notice, Page, html } from "./layout.tsx";

/** The sign-in form: inputs labelled "Email" and "Password", a button named "Sign in". */
export function SignInPage(props: { csrf: string; email?: string; error?: string }): string {
  return html(
    <Page title="Sign in">
      {props.error ? <Notice kind="error" text={props.error} /> : ""}
      <form method="post" action="/sign-in" class="stack narrow">
        <CsrfField token={props.csrf} />
        <label for="email">Email</label>
        <input id="email" name="email" type="email" autocomplete="username" required value={props.email ?? ""} />
        <label for="password">Password</label>
        <input id="password" name="password" type="password" autocomplete="current-password" required />
        <button type="submit">Sign in</button>
      </form>
      <p class="hint">
        Operators are created on the server with <code>rosterdock operator create EMAIL</code>. Apps use the{" "}
        <a href="/api/v1/docs">API</a>.
      </p>
    </Page>
  );
}
