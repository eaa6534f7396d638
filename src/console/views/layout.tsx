import type { PropsWithChildren } from "@kitajs/html";

/** Who is signed in, and the token their forms carry. */
export interface Viewer {
  email: string;
  csrf: string;
}

export interface PageProps {
  /** What the page shows; the browser's title reads "<title> · Rosterdock". */
  title: string;
  viewer?: Viewer;
  /** The page's first heading, when it differs from the title. */
  heading?: string;
}

/** A rendered template: every component here renders synchronously to a string. */
export function html(element: JSX.Element): string {
  if (typeof element !== "string") throw new TypeError("console templates render synchronously");
  return element;
}

/** A hidden field with the form's CSRF token: every console form posts one. */
export function CsrfField(props: { token: string }): JSX.Element {
  return <input type="hidden" name="_csrf" value={props.token} />;
}

/** The page around every console view: a header with the product name and "Sign out", and the main landmark. */
export function Page(props: PropsWithChildren<PageProps>): string {
  return (
    "<!doctype html>" +
    html(
      <html lang="en">
        <head>
          <meta charset="utf-8" />
          <meta name="viewport" content="width=device-width, initial-scale=1" />
          <title safe>{`${props.title} · Rosterdock`}</title>
          <link rel="stylesheet" href="/assets/console.css" />
          <script src="/assets/console.js" defer></script>
        </head>
        <body>
          <a class="skip" href="#main">
            Skip to the content
          </a>
          <header class="top">
            <a class="brand" href="/">
              Rosterdock
            </a>
            {props.viewer ? (
              <nav aria-label="Account" class="account">
                <a href="/">Districts</a>
                <span class="who" safe>
                  {props.viewer.email}
                </span>
                <form method="post" action="/sign-out">
                  <CsrfField token={props.viewer.csrf} />
                  <button type="submit" class="secondary">
                    Sign out
                  </button>
                </form>
              </nav>
            ) : (
              ""
            )}
          </header>
          <main id="main" tabindex="-1">
            <h1 safe>{props.heading ?? props.title}</h1>
            {props.children}
          </main>
        </body>
      </html>,
    )
  );
}

/** A message at the top of a page: `role=alert` for errors, `status` for news. */
export function Notice(props: { kind: "error" | "info"; text: string }): JSX.Element {
  return (
    <p class={`notice ${props.kind}`} role={props.kind === "error" ? "alert" : "status"} safe>
      {props.text}
    </p>
  );
}

/** The page shown when a console request fails (not found, refused, invalid input). */
export function ErrorPage(props: { title: string; message: string; viewer?: Viewer }): string {
  return html(
    <Page title={props.title} {...(props.viewer ? { viewer: props.viewer } : {})}>
      <Notice kind="error" text={props.message} />
      <p>
        <a href="/">Back to the districts</a>
      </p>
    </Page>
  );
}
